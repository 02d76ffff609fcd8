"""Forms of the sessions, cards and groups pages: they parse and word errors; services decide."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.forms.utils import flatatt
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.rfid.models import AuthGroup, Card, OfflineStrategy, OnlineMode
from apps.rfid.selectors import CardState
from apps.stations.cdrs import CdrFilter, Cursor, zone_station_ids
from apps.stations.models import Station
from apps.zones.models import Zone

# A card file is a few hundred bytes per hundred cards: this is far beyond any site.
MAX_CARD_FILE_BYTES = 5 * 1024 * 1024


def _day_start(day: date) -> datetime:
    """Midnight starting ``day`` in the site's time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


class DateRangeForm(forms.Form):
    """``from`` / ``to`` (the URL's names): whole days in the site's time zone, both included."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        date_input = {"type": "date"}
        self.fields["from"] = forms.DateField(
            label=gettext_lazy("From"),
            required=False,
            widget=forms.DateInput(attrs=date_input, format="%Y-%m-%d"),
        )
        self.fields["to"] = forms.DateField(
            label=gettext_lazy("To"),
            required=False,
            widget=forms.DateInput(attrs=date_input, format="%Y-%m-%d"),
        )

    def clean(self):
        data = super().clean()
        first, last = data.get("from"), data.get("to")
        if first and last and first > last:
            self.add_error("to", _("The end date is before the start date."))
        return data

    def since(self) -> datetime | None:
        first = self.cleaned_data.get("from")
        return _day_start(first) if first else None

    def until(self) -> datetime | None:
        last = self.cleaned_data.get("to")
        return _day_start(last + timedelta(days=1)) if last else None


class PlainSelect(forms.Select):
    """A select rendered in Python: a thousand stations are a thousand options.

    Django renders every option through its own template, which costs tens of
    milliseconds per page for a large fleet; this builds the same markup directly.
    """

    def render(self, name, value, attrs=None, renderer=None):
        attrs = self.build_attrs(self.attrs, {**(attrs or {}), "name": name})
        selected = "" if value is None else str(value)
        options = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            (
                (key, mark_safe(" selected") if str(key) == selected else "", label)
                for key, label in self.choices
            ),
        )
        return format_html("<select{}>{}</select>", flatatt(attrs), options)


class TransactionFilterForm(DateRangeForm):
    """The filters of ``/transactions/`` and the page cursor."""

    ONGOING = "ongoing"
    ALL = "all"

    show = forms.ChoiceField(
        label=gettext_lazy("Show"),
        required=False,
        choices=[(ONGOING, gettext_lazy("Ongoing")), (ALL, gettext_lazy("All"))],
    )
    station = forms.ModelChoiceField(
        label=gettext_lazy("Station"),
        required=False,
        queryset=Station.objects.order_by("identity"),
        empty_label=gettext_lazy("all stations"),
        widget=PlainSelect,
    )
    zone = forms.ModelChoiceField(
        label=gettext_lazy("Zone"),
        required=False,
        queryset=Zone.objects.order_by("name"),
        empty_label=gettext_lazy("all zones"),
    )
    card = forms.CharField(label=gettext_lazy("Card (id tag)"), required=False, max_length=20)
    older = forms.CharField(required=False, widget=forms.HiddenInput)
    newer = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.order_fields(["show", "from", "to", "station", "zone", "card"])

    def _clean_cursor(self, name: str) -> Cursor | None:
        text = self.cleaned_data.get(name)
        if not text:
            return None
        try:
            return Cursor.decode(text)
        except (ValueError, OverflowError):
            raise ValidationError(
                _("This page link is not valid: start again from the first page.")
            ) from None

    def clean_older(self) -> Cursor | None:
        return self._clean_cursor("older")

    def clean_newer(self) -> Cursor | None:
        return self._clean_cursor("newer")

    def cdr_filter(self) -> CdrFilter:
        data = self.cleaned_data
        station_ids = None
        if data.get("station") is not None:
            station_ids = frozenset({data["station"].pk})
        if data.get("zone") is not None:
            in_zone = zone_station_ids(data["zone"].pk)
            station_ids = in_zone if station_ids is None else station_ids & in_zone
        return CdrFilter(
            ongoing=data.get("show") == self.ONGOING,
            since=self.since(),
            until=self.until(),
            station_ids=station_ids,
            id_tag=data.get("card", "").strip(),
        )


# --- cards -------------------------------------------------------------------


class GroupsField(forms.ModelMultipleChoiceField):
    def __init__(self, **kwargs):
        super().__init__(
            queryset=AuthGroup.objects.order_by("name"),
            required=False,
            widget=forms.CheckboxSelectMultiple,
            label=gettext_lazy("Groups"),
            **kwargs,
        )


class CardForm(forms.Form):
    """A card's attributes; a new card has no *authorised* box: it starts blocked."""

    id_tag = forms.CharField(label=gettext_lazy("Id tag"), max_length=20)
    authorized = forms.BooleanField(label=gettext_lazy("Authorised"), required=False)
    vip = forms.BooleanField(label=gettext_lazy("VIP"), required=False)
    comment = forms.CharField(label=gettext_lazy("Comment"), max_length=50, required=False)
    groups = GroupsField()

    def __init__(self, *args, creating: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if creating:
            del self.fields["authorized"]


class CardSearchForm(forms.Form):
    q = forms.CharField(label=gettext_lazy("Search"), required=False, max_length=50)
    group = forms.ModelChoiceField(
        label=gettext_lazy("Group"),
        required=False,
        queryset=AuthGroup.objects.order_by("name"),
        empty_label=gettext_lazy("all groups"),
    )
    state = forms.ChoiceField(
        label=gettext_lazy("State"),
        required=False,
        choices=[
            ("", gettext_lazy("all cards")),
            (CardState.AUTHORIZED, gettext_lazy("authorised")),
            (CardState.BLOCKED, gettext_lazy("blocked")),
        ],
    )


class BulkAction:
    AUTHORIZE = "authorize"
    BLOCK = "block"
    VIP_ON = "vip_on"
    VIP_OFF = "vip_off"
    MOVE = "move"
    ADD = "add"
    REMOVE = "remove"
    DELETE = "delete"
    NEEDS_GROUP = frozenset({MOVE, ADD, REMOVE})


class CardBulkForm(forms.Form):
    cards = forms.ModelMultipleChoiceField(
        queryset=Card.objects.all(),
        error_messages={"required": gettext_lazy("Select at least one card.")},
    )
    action = forms.ChoiceField(
        label=gettext_lazy("Action"),
        choices=[
            (BulkAction.AUTHORIZE, gettext_lazy("Authorise")),
            (BulkAction.BLOCK, gettext_lazy("Block")),
            (BulkAction.VIP_ON, gettext_lazy("Set VIP")),
            (BulkAction.VIP_OFF, gettext_lazy("Remove VIP")),
            (BulkAction.MOVE, gettext_lazy("Move to group")),
            (BulkAction.ADD, gettext_lazy("Add to group")),
            (BulkAction.REMOVE, gettext_lazy("Remove from group")),
            (BulkAction.DELETE, gettext_lazy("Delete")),
        ],
    )
    group = forms.ModelChoiceField(
        label=gettext_lazy("Group"),
        required=False,
        queryset=AuthGroup.objects.order_by("name"),
        empty_label=gettext_lazy("(choose a group)"),
    )
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        if data.get("action") in BulkAction.NEEDS_GROUP and data.get("group") is None:
            self.add_error("group", _("Choose the group."))
        return data


class CardImportForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Card file (CSV)"),
        help_text=gettext_lazy(
            "One card a line, ;-separated, with the header id_tag;is_blocked;vip_level;comments;"
        ),
    )
    group = forms.ModelChoiceField(
        label=gettext_lazy("Also add every card of the file to group"),
        required=False,
        queryset=AuthGroup.objects.order_by("name"),
        empty_label=gettext_lazy("(no group)"),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_CARD_FILE_BYTES:
            raise ValidationError(
                _("The file is too large (at most %(mb)d MB).")
                % {"mb": MAX_CARD_FILE_BYTES // (1024 * 1024)}
            )
        return upload


class GroupForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=64)
    online_mode = forms.ChoiceField(label=gettext_lazy("Online mode"), choices=OnlineMode.choices)
    offline_strategy = forms.ChoiceField(
        label=gettext_lazy("Offline strategy"), choices=OfflineStrategy.choices
    )
    plug_and_charge_id_tag = forms.CharField(
        label=gettext_lazy("Id tag for plug-in starts"),
        max_length=20,
        required=False,
        help_text=gettext_lazy("Used to start sessions when the reader is disabled."),
    )


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a service's ``ValidationError`` on the form: on its field when the form has it."""
    if hasattr(error, "error_dict"):
        for field, messages in error.message_dict.items():
            form.add_error(field if field in form.fields else None, messages)
    else:
        form.add_error(None, error.messages)
