"""Remote actions from the station view (SPEC §7): the form that checks them, and what runs.

Commands go through the central system's command service
(:func:`apps.central_system.services.command_request`): a worker sends them
and keeps the station's answer on a ``CommandResult``, which the live feed
brings to the page. A force stop closes the session without the station,
through the stations' service.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from ocpp.v16.enums import AvailabilityType, ResetType

from apps.central_system import commands
from apps.central_system.models import CommandResult
from apps.central_system.services import command_request
from apps.rfid.models import Card
from apps.stations.models import Station, Transaction
from apps.stations.selectors import transaction_ongoing
from apps.stations.services import transaction_force_stop

#: How long the worker waits for the station's answer to a remote action.
ACTION_TIMEOUT_S = 30.0


class RemoteAction(StrEnum):
    START = "start"
    STOP = "stop"
    FORCE_STOP = "force_stop"
    SOFT_RESET = "soft_reset"
    HARD_RESET = "hard_reset"
    UNLOCK = "unlock"
    AVAILABILITY = "availability"
    DIAGNOSTICS = "diagnostics"


ACTION_LABELS = {
    RemoteAction.START: gettext_lazy("Start a charge"),
    RemoteAction.STOP: gettext_lazy("Stop the charge"),
    RemoteAction.FORCE_STOP: gettext_lazy("Force stop"),
    RemoteAction.SOFT_RESET: gettext_lazy("Reboot (soft reset)"),
    RemoteAction.HARD_RESET: gettext_lazy("Reset (hard)"),
    RemoteAction.UNLOCK: gettext_lazy("Unlock the connector"),
    RemoteAction.AVAILABILITY: gettext_lazy("Change availability"),
    RemoteAction.DIAGNOSTICS: gettext_lazy("Request diagnostics"),
}

_WITH_CONNECTOR = {
    RemoteAction.START,
    RemoteAction.STOP,
    RemoteAction.FORCE_STOP,
    RemoteAction.UNLOCK,
    RemoteAction.AVAILABILITY,
}


class RemoteActionForm(forms.Form):
    """One remote action on one station; ``clean`` refuses what the station cannot do."""

    action = forms.ChoiceField(choices=[(a.value, ACTION_LABELS[a]) for a in RemoteAction])
    connector_id = forms.IntegerField(
        label=gettext_lazy("Connector"), required=False, min_value=0, max_value=255
    )
    id_tag = forms.CharField(label=gettext_lazy("Card"), required=False, max_length=20)
    availability = forms.ChoiceField(
        label=gettext_lazy("Availability"),
        required=False,
        choices=[
            (AvailabilityType.operative.value, gettext_lazy("Operative")),
            (AvailabilityType.inoperative.value, gettext_lazy("Inoperative")),
        ],
    )
    location = forms.URLField(
        label=gettext_lazy("Upload to"),
        required=False,
        max_length=512,
        assume_scheme="https",
        help_text=gettext_lazy("Where the station uploads its diagnostics file (FTP or HTTP URL)."),
    )
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, station: Station, **kwargs):
        super().__init__(*args, **kwargs)
        self.station = station
        self.session: Transaction | None = None

    def clean(self):
        data = super().clean()
        if "action" not in data:
            return data
        action = RemoteAction(data["action"])
        connector_id = data.get("connector_id")
        if action in _WITH_CONNECTOR:
            known = set(self.station.connectors.values_list("connector_id", flat=True))
            allowed = known | {0} if action == RemoteAction.AVAILABILITY else known
            if connector_id is None:
                self.add_error("connector_id", _("Choose a connector."))
            elif connector_id not in allowed:
                self.add_error("connector_id", _("This station has no such connector."))
        if action in (RemoteAction.STOP, RemoteAction.FORCE_STOP) and connector_id is not None:
            self.session = transaction_ongoing(self.station.identity, connector_id)
            if self.session is None:
                self.add_error("connector_id", _("No session is ongoing on this connector."))
        if action == RemoteAction.START:
            id_tag = (data.get("id_tag") or "").strip()
            card = Card.objects.filter(id_tag__iexact=id_tag).first() if id_tag else None
            if not id_tag:
                self.add_error("id_tag", _("Choose the card to charge with."))
            elif card is None:
                self.add_error("id_tag", _("No card has this id tag."))
            else:
                data["id_tag"] = card.id_tag  # as the card is written, whatever was typed
        if action == RemoteAction.AVAILABILITY and not data.get("availability"):
            self.add_error("availability", _("Choose operative or inoperative."))
        if action == RemoteAction.DIAGNOSTICS and not data.get("location"):
            self.add_error("location", _("Give the address the station uploads to."))
        return data

    @property
    def chosen(self) -> RemoteAction:
        return RemoteAction(self.cleaned_data["action"])

    def confirmation(self) -> str | None:
        """The question to ask before acting (None: the action interrupts nothing)."""
        action, data = self.chosen, self.cleaned_data
        connector = data.get("connector_id")
        if action == RemoteAction.STOP:
            return _("Stop the charge on connector %(c)s?") % {"c": connector}
        if action == RemoteAction.FORCE_STOP:
            return _(
                "Close the session on connector %(c)s without the station? Its energy "
                "stays what the meter values showed so far."
            ) % {"c": connector}
        if action in (RemoteAction.SOFT_RESET, RemoteAction.HARD_RESET):
            return _("Restart the station? Ongoing charges are interrupted.")
        if action == RemoteAction.UNLOCK:
            return _("Unlock connector %(c)s? A charge on it stops.") % {"c": connector}
        if (
            action == RemoteAction.AVAILABILITY
            and data.get("availability") == AvailabilityType.inoperative
        ):
            return _("Make connector %(c)s inoperative? A charge on it stops.") % {"c": connector}
        return None


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What the page says at once: a command queued (its answer comes later) or a done deed."""

    command: CommandResult | None
    message: str


def _command(form: RemoteActionForm) -> commands.Command:
    data, action = form.cleaned_data, form.chosen
    if action == RemoteAction.START:
        return commands.remote_start(data["id_tag"], connector_id=data["connector_id"])
    if action == RemoteAction.STOP:
        assert form.session is not None
        return commands.remote_stop(form.session.pk)
    if action == RemoteAction.SOFT_RESET:
        return commands.reset(ResetType.soft)
    if action == RemoteAction.HARD_RESET:
        return commands.reset(ResetType.hard)
    if action == RemoteAction.UNLOCK:
        return commands.unlock_connector(data["connector_id"])
    if action == RemoteAction.AVAILABILITY:
        return commands.change_availability(data["connector_id"], data["availability"])
    if action == RemoteAction.DIAGNOSTICS:
        return commands.get_diagnostics(data["location"])
    raise ValueError(action)


def remote_action_run(form: RemoteActionForm, *, user) -> ActionOutcome:
    """Run a valid, confirmed action; raises ``ValidationError`` when a service refuses it."""
    if form.chosen == RemoteAction.FORCE_STOP:
        assert form.session is not None
        session = transaction_force_stop(form.session, user=user)
        return ActionOutcome(
            command=None, message=_("Session %(id)s force-stopped.") % {"id": session.pk}
        )
    command = _command(form)
    try:  # what the station would refuse as malformed is refused here, before queueing
        payload = commands.checked_payload(command.action, command.payload)
    except commands.InvalidCommand as exc:
        raise ValidationError(
            _("The station cannot accept this: %(detail)s") % {"detail": exc}
        ) from None
    result = command_request(
        identity=form.station.identity,
        action=command.action,
        payload=payload,
        user=user,
        timeout_s=ACTION_TIMEOUT_S,
    )
    return ActionOutcome(
        command=result,
        message=_("%(action)s sent to the station: its answer appears below.")
        % {"action": ACTION_LABELS[form.chosen]},
    )
