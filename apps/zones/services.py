"""Zone-side workflows: zones, time-of-use periods, external inputs and EBMS reductions.

Every configuration write is validated, atomic and logged; a write that
changes nothing writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.devicelog.models import EventCategory, EventLevel
from apps.devicelog.services import (
    configuration_deleted_log,
    configuration_save_logged,
    configuration_saved_entry,
    device_log_write,
    fields_assign,
    settings_only,
)
from apps.meters.modbus.client import MeterError
from apps.meters.services import meter_connection, poll_session
from apps.siteconfig.models import SiteSettings
from apps.zones.models import (
    EbmsReduction,
    ExternalInput,
    InputKind,
    TouPeriod,
    TouSlot,
    ValidityMode,
    Zone,
)
from apps.zones.signals import zone_limits_changed
from evce_site.hotstate import key, redis_client

logger = logging.getLogger(__name__)


def external_input_apply(entry: ExternalInput, active: bool, *, source: str, user=None) -> bool:
    """Record an input's state; on a change log it and ask for a re-allocation.

    The update is conditional so two pollers never log the same change twice.
    """
    changed = ExternalInput.objects.filter(pk=entry.pk).exclude(active=active).update(active=active)
    if not changed:
        return False
    entry.active = active
    state = "active" if active else "inactive"
    device_log_write(
        category=EventCategory.LOAD_MANAGEMENT,
        level=EventLevel.WARNING if active else EventLevel.INFO,
        event="input_active" if active else "input_inactive",
        message=f"External input {entry.number} ({entry.name}) {state} ({source}): "
        f"zones capped at {entry.percent} %."
        if active
        else f"External input {entry.number} ({entry.name}) {state} ({source}).",
        user=user,
        data={"input": entry.number, "percent": entry.percent, "active": active},
    )
    transaction.on_commit(lambda: zone_limits_changed.send(sender=Zone, reason="input"))
    return True


# Consecutive failed reads of each Modbus input (hash: input pk → count).
INPUT_FAILURES_KEY = ("inputs", "failures")
# Failed reads before an input counts as active when the site settings give none.
INPUT_UNREADABLE_AFTER_READS = 3


def external_inputs_poll(*, unreadable_after: int | None = None) -> dict[int, bool | str]:
    """Read every enabled Modbus input and record its state.

    Fails closed: an input whose device cannot be read keeps its last state
    for ``unreadable_after`` - 1 failed reads (a single lost frame must not
    cut charging), then counts as *active* until its first good read — an
    inactive "stop" relay that nobody can read may have opened. The count
    defaults to the site's meter-lost setting (a meter and an input device
    are lost alike). Returns each input's state, or the read error.
    """
    entries = list(
        ExternalInput.objects.filter(enabled=True)
        .exclude(kind=InputKind.API)
        .select_related("device")
    )
    if not entries:
        return {}
    if unreadable_after is None:
        unreadable_after = (
            SiteSettings.load().meter_lost_after_polls or INPUT_UNREADABLE_AFTER_READS
        )
    client = redis_client()
    failures_key = key(*INPUT_FAILURES_KEY)
    results: dict[int, bool | str] = {}
    for entry in entries:
        try:
            bit = poll_session().read_bit(
                meter_connection(entry.device),
                entry.address,
                entry.kind,
                timeout_s=entry.device.timeout_ms / 1000,
            )
        except MeterError as exc:
            failed_reads = int(client.hincrby(failures_key, entry.pk, 1))
            logger.warning(
                "External input %s could not be read (%d): %s", entry.number, failed_reads, exc
            )
            results[entry.number] = str(exc)
            if failed_reads == unreadable_after:
                _log_input_readable(entry, readable=False, failed_reads=failed_reads, error=exc)
            if failed_reads >= unreadable_after:
                external_input_apply(entry, True, source="unreadable")
            continue
        failed_reads = int(client.hget(failures_key, entry.pk) or 0)
        if failed_reads:
            client.hdel(failures_key, entry.pk)
        if failed_reads >= unreadable_after:
            _log_input_readable(entry, readable=True, failed_reads=failed_reads)
        active = bit != entry.active_when_off
        external_input_apply(entry, active, source="Modbus")
        results[entry.number] = active
    return results


def _log_input_readable(
    entry: ExternalInput, *, readable: bool, failed_reads: int, error: Exception | None = None
) -> None:
    if readable:
        device_log_write(
            category=EventCategory.COMMUNICATION,
            event="input_readable",
            message=f"External input {entry.number} ({entry.name}) can be read again.",
            data={"input": entry.number},
        )
        return
    device_log_write(
        category=EventCategory.COMMUNICATION,
        level=EventLevel.ERROR,
        event="input_unreadable",
        message=f"External input {entry.number} ({entry.name}) cannot be read "
        f"({failed_reads} failed reads): counted as active until it can. {error}",
        data={"input": entry.number, "failed_reads": failed_reads, "error": str(error)},
    )


@transaction.atomic
def zone_reduction_set(
    *,
    zone: Zone,
    valid_until: datetime | None = None,
    duration_s: int | None = None,
    validity_mode: str | None = None,
    percent: Decimal | None = None,
    current_a: Decimal | None = None,
    description: str = "",
    user=None,
) -> EbmsReduction:
    """Set a building-management limit on a zone, replacing the previous one.

    ``validity_mode`` (SPEC §9): ``absolute`` until ``valid_until``,
    ``duration`` for ``duration_s`` from now, ``none`` until cleared. Left
    out, it follows from what is given (``valid_until``, else ``duration_s``,
    else none). Bad values raise ``ValidationError`` and change nothing.
    """
    now = timezone.now()
    if validity_mode is None:
        validity_mode = (
            ValidityMode.ABSOLUTE
            if valid_until is not None
            else ValidityMode.DURATION
            if duration_s is not None
            else ValidityMode.NONE
        )
    if validity_mode not in ValidityMode.values:
        raise ValidationError({"validity_mode": _("Unknown validity mode.")})
    if validity_mode == ValidityMode.DURATION:
        if valid_until is not None:
            raise ValidationError({"valid_until": _("A duration gives the end time itself.")})
        if duration_s is not None and duration_s > 0:
            valid_until = now + timedelta(seconds=duration_s)
    elif duration_s is not None:
        raise ValidationError({"duration_s": _("Only a reduction for a duration has one.")})
    reduction = EbmsReduction(
        zone=zone,
        percent=percent,
        current_a=current_a,
        description=description,
        validity_mode=validity_mode,
        duration_s=duration_s,
        created_at=now,
        valid_until=valid_until,
        created_by=user if getattr(user, "pk", None) else None,
    )
    reduction.full_clean()
    EbmsReduction.objects.filter(zone=zone).in_force(now).update(cleared_at=now)
    reduction.save()
    device_log_write(
        category=EventCategory.LOAD_MANAGEMENT,
        event="reduction_set",
        message=f"Zone {zone.name} reduced to {reduction} by the building management system.",
        zone_name=zone.name,
        user=user,
        data={
            "percent": str(percent) if percent is not None else None,
            "current_a": str(current_a) if current_a is not None else None,
            "validity_mode": validity_mode,
            "valid_until": valid_until.isoformat() if valid_until else None,
            "description": description,
        },
    )
    transaction.on_commit(lambda: zone_limits_changed.send(sender=Zone, reason="reduction"))
    return reduction


@transaction.atomic
def zone_reduction_clear(*, zone: Zone, user=None) -> int:
    """Clear the zone's reduction in force; returns how many were cleared (0 or 1)."""
    now = timezone.now()
    cleared = EbmsReduction.objects.filter(zone=zone).in_force(now).update(cleared_at=now)
    if cleared:
        device_log_write(
            category=EventCategory.LOAD_MANAGEMENT,
            event="reduction_cleared",
            message=f"Reduction of zone {zone.name} cleared.",
            zone_name=zone.name,
            user=user,
        )
        transaction.on_commit(lambda: zone_limits_changed.send(sender=Zone, reason="reduction"))
    return cleared


# --- configuration: zones, time-of-use periods, external inputs ------------------------

ZONE_SETTINGS = (
    "name",
    "parent",
    "max_current_a",
    "meter",
    "degraded_current_a",
    "production_meter",
    "meter_net_of_production",
    "phase_imbalance_limit_a",
)
TOU_PERIOD_SETTINGS = ("name", "enabled", "days", "max_percent")
EXTERNAL_INPUT_SETTINGS = (
    "number",
    "name",
    "enabled",
    "percent",
    "kind",
    "device",
    "address",
    "active_when_off",
)


def _zone_save_logged(zone: Zone, changes: dict, *, created: bool, user) -> None:
    # The allocator hears of the change through the model signals of
    # apps.energy.receivers (a re-allocation after commit).
    configuration_save_logged(
        zone,
        changes,
        created=created,
        kind="zone",
        label=f"Zone {zone.name}",
        user=user,
        zone_name=zone.name,
    )


@transaction.atomic
def zone_create(*, user=None, **values: Any) -> Zone:
    """Create a zone; ``ValidationError`` (nothing saved) when it breaks an electrical rule."""
    settings_only(values, ZONE_SETTINGS, what="zone settings")
    zone = Zone()
    changes = fields_assign(zone, values)
    _zone_save_logged(zone, changes, created=True, user=user)
    return zone


@transaction.atomic
def zone_update(zone: Zone, *, user=None, **values: Any) -> Zone:
    """Change a zone's settings; only what really changes is saved and logged."""
    settings_only(values, ZONE_SETTINGS, what="zone settings")
    current = Zone.objects.select_for_update().get(pk=zone.pk)
    changes = fields_assign(current, values)
    _zone_save_logged(current, changes, created=False, user=user)
    return current


@transaction.atomic
def zone_delete(zone: Zone, *, user=None) -> None:
    """Delete a zone that holds no station and no sub-zone (they would be left without limits)."""
    current = Zone.objects.select_for_update().get(pk=zone.pk)
    if current.stations.exists():
        raise ValidationError(
            _("Zone %(name)s holds stations: move or delete them first.") % {"name": current.name}
        )
    if Zone.objects.filter(parent=current).exists():
        raise ValidationError(
            _("Zone %(name)s has sub-zones: move or delete them first.") % {"name": current.name}
        )
    current.delete()
    configuration_deleted_log(
        kind="zone", label=f"Zone {current.name}", user=user, zone_name=current.name
    )


@transaction.atomic
def tou_period_save(
    period: TouPeriod | None,
    *,
    slots: Sequence[tuple[time, time]] | None = None,
    zones: Iterable[Zone] | None = None,
    user=None,
    **values: Any,
) -> tuple[TouPeriod, bool]:
    """Create (``period`` None) or change a time-of-use period, its slots and its zones.

    ``slots`` and ``zones`` replace the period's when given. Returns the
    period and whether it was created.
    """
    settings_only(values, TOU_PERIOD_SETTINGS, what="time-of-use period settings")
    created = period is None
    current = TouPeriod() if created else TouPeriod.objects.select_for_update().get(pk=period.pk)
    changes = fields_assign(current, values)
    old_slots = [] if created else [(s.start, s.end) for s in current.slots.order_by("start")]
    if slots is not None and sorted(slots) != old_slots:
        changes["slots"] = [[f"{s:%H:%M}-{e:%H:%M}" for s, e in v] for v in (old_slots, slots)]
    old_zones = set() if created else set(current.zones.all())
    if zones is not None and set(zones) != old_zones:
        changes["zones"] = [sorted(z.name for z in v) for v in (old_zones, set(zones))]
    if created or set(changes) - {"slots", "zones"}:
        current.full_clean()
        current.save()
    if "slots" in changes:
        current.slots.all().delete()
        for start, end in slots or ():
            slot = TouSlot(period=current, start=start, end=end)
            slot.full_clean()
            slot.save()
    if "zones" in changes:
        current.zones.set(list(zones or ()))
    if created or changes:
        device_log_write(
            **configuration_saved_entry(
                kind="tou_period",
                label=f"Time-of-use period {current.name}",
                changes=changes,
                created=created,
                user=user,
            )
        )
    return current, created


@transaction.atomic
def tou_period_delete(period: TouPeriod, *, user=None) -> None:
    name = period.name
    TouPeriod.objects.filter(pk=period.pk).delete()
    configuration_deleted_log(kind="tou_period", label=f"Time-of-use period {name}", user=user)


@transaction.atomic
def external_input_save(
    entry: ExternalInput | None, *, user=None, **values: Any
) -> tuple[ExternalInput, bool]:
    """Create (``entry`` None) or change an external input's configuration (not its state)."""
    settings_only(values, EXTERNAL_INPUT_SETTINGS, what="external input settings")
    created = entry is None
    current = (
        ExternalInput() if created else ExternalInput.objects.select_for_update().get(pk=entry.pk)
    )
    changes = fields_assign(current, values)
    configuration_save_logged(
        current,
        changes,
        created=created,
        kind="external_input",
        label=f"External input {current.number} ({current.name})",
        user=user,
    )
    return current, created


@transaction.atomic
def external_input_delete(entry: ExternalInput, *, user=None) -> None:
    label = f"External input {entry.number} ({entry.name})"
    ExternalInput.objects.filter(pk=entry.pk).delete()
    configuration_deleted_log(kind="external_input", label=label, user=user)
