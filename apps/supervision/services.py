"""Supervision workflows: every write validated first, atomic, logged, announced.

The admin, the site file (and later the API and UI) all write through these
functions. A refused value raises ``ValidationError`` and changes nothing.
Passwords never reach the device log or the application log: only the fact
that one was set.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.devicelog.models import EventCategory
from apps.devicelog.services import device_log_write, fields_assign
from apps.rfid.models import AuthGroup
from apps.siteconfig.models import SiteSettings, SupervisionMode
from apps.stations.models import Station
from apps.supervision.models import (
    AuthMode,
    GroupSupervision,
    OutboxAction,
    OutboxMessage,
    OutboxState,
    StationCpoPassword,
    Supervision,
    password_bytes,
)
from apps.supervision.secrets import secret_encrypt
from apps.supervision.signals import supervision_changed

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)

SETTINGS = (
    "name",
    "url",
    "ping_interval_s",
    "message_timeout_s",
    "forward_security_events",
    "auth",
    "ca_certificate",
    "max_attempts",
)


def _unique_mode() -> bool:
    return SiteSettings.load().supervision_mode == SupervisionMode.UNIQUE


def _announce(supervision_ids: Iterable[int]) -> None:
    ids = frozenset(supervision_ids)
    if not ids:
        return

    def send() -> None:
        for receiver, result in supervision_changed.send_robust(
            sender=Supervision, supervision_ids=ids
        ):
            if isinstance(result, Exception):
                logger.error("Receiver %r failed on %s", receiver, ids, exc_info=result)

    transaction.on_commit(send)


def _log(*, event: str, message: str, user, data: dict, station_identity: str = "") -> None:
    device_log_write(
        category=EventCategory.CONFIGURATION,
        event=event,
        message=message,
        user=user,
        data=data,
        station_identity=station_identity,
    )


def _groups_assign(supervision: Supervision, groups: Iterable[AuthGroup]) -> list[str]:
    """Make ``groups`` exactly the groups this supervision supervises; return their names.

    A group taken from another supervision leaves it: that one is announced too.
    """
    wanted = {group.pk: group for group in groups}
    _announce(
        GroupSupervision.objects.filter(group_id__in=wanted)
        .exclude(supervision=supervision)
        .values_list("supervision_id", flat=True)
    )
    GroupSupervision.objects.filter(supervision=supervision).exclude(group_id__in=wanted).delete()
    for group_id in wanted:
        GroupSupervision.objects.update_or_create(
            group_id=group_id, defaults={"supervision": supervision}
        )
    return sorted(group.name for group in wanted.values())


@transaction.atomic
def supervision_save(
    supervision: Supervision | None,
    *,
    password: str | None = None,
    password_hex: str | None = None,
    groups: Iterable[AuthGroup] | None = None,
    user: AbstractBaseUser | None,
    **values: Any,
) -> tuple[Supervision, bool]:
    """Create (``supervision`` None) or update a supervision; return it and whether it is new.

    ``values`` are fields of :data:`SETTINGS`; those not given keep their value.
    A password (ASCII ``password`` or ``password_hex``) replaces the stored
    one; leaving the authentication ``shared`` without a new password keeps
    the old one, and any other mode forgets it. ``groups``, when given, are
    the groups it supervises from now on (taken from any other supervision).
    """
    unknown = set(values) - set(SETTINGS)
    if unknown:
        raise TypeError(f"not supervision settings: {', '.join(sorted(unknown))}")
    created = supervision is None
    if created and _unique_mode() and Supervision.objects.exists():
        raise ValidationError(
            {"name": _("One CPO for all stations allows one supervision: change the mode first.")}
        )
    current = (
        Supervision() if created else Supervision.objects.select_for_update().get(pk=supervision.pk)
    )
    changes = fields_assign(current, values)
    new_password = None
    if password is not None or password_hex is not None:
        new_password = password_bytes(password=password, password_hex=password_hex)
        if current.auth != AuthMode.SHARED:
            raise ValidationError(
                {"password": _("Only shared authentication takes a supervision password.")}
            )
        current.password_encrypted = secret_encrypt(new_password)
        changes["password"] = ["…", "…"]  # that it changed, never the value
    elif current.auth != AuthMode.SHARED and current.password_encrypted:
        current.password_encrypted = ""
        changes["password"] = ["…", ""]
    if created or changes:
        current.full_clean()
        current.save()
    group_names = None
    if groups is not None:
        before = sorted(
            GroupSupervision.objects.filter(supervision=current).values_list(
                "group__name", flat=True
            )
        )
        group_names = _groups_assign(current, groups)
        if group_names != before:
            changes["groups"] = [before, group_names]
    if created or changes:
        _log(
            event="supervision_created" if created else "supervision_updated",
            message=(
                _("Supervision %(name)s created.")
                if created
                else _("Supervision %(name)s changed.")
            )
            % {"name": current.name},
            user=user,
            data={"name": current.name, "changes": changes},
        )
        _announce([current.pk])
    return current, created


@transaction.atomic
def supervision_delete(supervision: Supervision, *, user: AbstractBaseUser | None) -> None:
    """Delete a supervision no group names any more (else ``ValidationError``)."""
    current = Supervision.objects.select_for_update().get(pk=supervision.pk)
    groups = sorted(current.assignments.values_list("group__name", flat=True))
    if groups:
        raise ValidationError(
            _("Supervision %(name)s still supervises the groups %(groups)s: assign them first.")
            % {"name": current.name, "groups": ", ".join(groups)}
        )
    if _unique_mode():
        raise ValidationError(
            _("One CPO for all stations needs its supervision: change the mode first.")
        )
    pk, name = current.pk, current.name
    current.delete()
    _log(
        event="supervision_deleted",
        message=_("Supervision %(name)s deleted.") % {"name": name},
        user=user,
        data={"name": name},
    )
    _announce([pk])


@transaction.atomic
def group_supervision_set(
    *, group: AuthGroup, supervision: Supervision | None, user: AbstractBaseUser | None
) -> bool:
    """Name the CPO of a group's stations (``None``: the group stays local); True if changed."""
    current = GroupSupervision.objects.select_for_update().filter(group=group).first()
    old = current.supervision if current else None
    if old == supervision:
        return False
    if supervision is None:
        current.delete()
    else:
        GroupSupervision.objects.update_or_create(
            group=group, defaults={"supervision": supervision}
        )
    _log(
        event="group_supervision_set",
        message=_("Group %(group)s: supervision %(old)s → %(new)s.")
        % {
            "group": group.name,
            "old": old.name if old else _("none"),
            "new": supervision.name if supervision else _("none"),
        },
        user=user,
        data={
            "group": group.name,
            "supervision": [old.name if old else None, supervision.name if supervision else None],
        },
    )
    _announce([s.pk for s in (old, supervision) if s is not None])
    return True


@transaction.atomic
def station_cpo_password_set(
    *,
    station: Station,
    password: str | None = None,
    password_hex: str | None = None,
    user: AbstractBaseUser | None,
) -> StationCpoPassword:
    """Set a station's own password towards its CPO (ASCII or hex), stored encrypted."""
    value = password_bytes(password=password, password_hex=password_hex)
    stored, _created = StationCpoPassword.objects.update_or_create(
        station=station, defaults={"password_encrypted": secret_encrypt(value)}
    )
    _log(
        event="station_cpo_password_set",
        message=_("Station %(identity)s: CPO password set.") % {"identity": station.identity},
        user=user,
        data={"identity": station.identity},
        station_identity=station.identity,
    )
    _announce(Supervision.objects.values_list("pk", flat=True))
    return stored


@transaction.atomic
def station_cpo_password_clear(*, station: Station, user: AbstractBaseUser | None) -> bool:
    """Forget a station's CPO password; True if it had one."""
    deleted, _counts = StationCpoPassword.objects.filter(station=station).delete()
    if not deleted:
        return False
    _log(
        event="station_cpo_password_cleared",
        message=_("Station %(identity)s: CPO password removed.") % {"identity": station.identity},
        user=user,
        data={"identity": station.identity},
        station_identity=station.identity,
    )
    _announce(Supervision.objects.values_list("pk", flat=True))
    return True


# --- the outbox of transaction messages -------------------------------------------


@transaction.atomic
def outbox_enqueue(
    *,
    station: Station,
    action: OutboxAction | str,
    payload: dict[str, Any],
    transaction_id: int | None = None,
) -> OutboxMessage:
    """Queue a transaction message for the station's CPO, after every one queued before.

    The station's row is locked while the next sequence number is taken, so
    two writers for one station cannot share or swap numbers.
    """
    if action not in OutboxAction.values:
        raise ValidationError({"action": _("Not a transaction message: %(a)s.") % {"a": action}})
    Station.objects.select_for_update().filter(pk=station.pk).first()
    last = OutboxMessage.objects.filter(station=station).aggregate(last=Max("sequence"))["last"]
    return OutboxMessage.objects.create(
        station=station,
        sequence=(last or 0) + 1,
        action=action,
        payload=payload,
        transaction_id=transaction_id,
        created_at=timezone.now(),
    )


def outbox_next(*, station: Station) -> OutboxMessage | None:
    """The station's first message still to deliver (flagged ones wait for a retry)."""
    return (
        OutboxMessage.objects.filter(station=station, state=OutboxState.PENDING)
        .order_by("sequence")
        .first()
    )


def outbox_delivered(*, message: OutboxMessage) -> bool:
    """Mark a message delivered (the CPO answered it); False if it was not pending."""
    now = timezone.now()
    changed = OutboxMessage.objects.filter(pk=message.pk, state=OutboxState.PENDING).update(
        state=OutboxState.DELIVERED,
        attempts=message.attempts + 1,
        last_attempt_at=now,
        sent_at=now,
        last_error="",
    )
    return changed == 1


@transaction.atomic
def outbox_attempt_failed(
    *, message: OutboxMessage, error: str, max_attempts: int
) -> OutboxMessage:
    """Count a failed delivery; at ``max_attempts`` the message is flagged, never deleted."""
    current = OutboxMessage.objects.select_for_update().get(pk=message.pk)
    if current.state != OutboxState.PENDING:
        return current
    current.attempts += 1
    current.last_attempt_at = timezone.now()
    current.last_error = error[:200]
    if current.attempts >= max_attempts:
        current.state = OutboxState.FLAGGED
        device_log_write(
            category=EventCategory.COMMUNICATION,
            level="warning",
            event="cpo_message_flagged",
            message=_(
                "%(action)s #%(sequence)d of %(identity)s not delivered to the CPO after "
                "%(attempts)d attempts: kept, flagged."
            )
            % {
                "action": current.action,
                "sequence": current.sequence,
                "identity": current.station.identity,
                "attempts": current.attempts,
            },
            station_identity=current.station.identity,
            data={"sequence": current.sequence, "action": current.action, "error": error[:200]},
        )
    current.save()
    return current


@transaction.atomic
def outbox_retry(*, messages: Iterable[OutboxMessage], user: AbstractBaseUser | None) -> int:
    """Put flagged messages back in the queue with their attempts reset; the number put back."""
    ids = [m.pk for m in messages]
    flagged = OutboxMessage.objects.select_for_update().filter(
        pk__in=ids, state=OutboxState.FLAGGED
    )
    rows = list(flagged.select_related("station"))
    if not rows:
        return 0
    OutboxMessage.objects.filter(pk__in=[m.pk for m in rows]).update(
        state=OutboxState.PENDING, attempts=0, last_error=""
    )
    _log(
        event="cpo_messages_retried",
        message=_("%(count)d flagged message(s) to the CPO queued again.") % {"count": len(rows)},
        user=user,
        data={"messages": [[m.station.identity, m.sequence, m.action] for m in rows]},
    )
    return len(rows)
