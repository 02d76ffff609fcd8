"""Zone-side workflows: external inputs (read or set) and EBMS reductions."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from apps.devicelog.models import EventCategory, EventLevel
from apps.devicelog.services import device_log_write
from apps.meters.modbus.client import MeterError
from apps.meters.services import meter_connection, poll_session
from apps.siteconfig.models import SiteSettings
from apps.zones.models import EbmsReduction, ExternalInput, InputKind, Zone
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
    valid_until: datetime,
    percent: Decimal | None = None,
    current_a: Decimal | None = None,
    description: str = "",
    user=None,
) -> EbmsReduction:
    """Set a building-management limit on a zone (replaces the previous one)."""
    now = timezone.now()
    EbmsReduction.objects.filter(zone=zone, cleared_at=None, valid_until__gt=now).update(
        cleared_at=now
    )
    reduction = EbmsReduction(
        zone=zone,
        percent=percent,
        current_a=current_a,
        description=description,
        created_at=now,
        valid_until=valid_until,
        created_by=user if getattr(user, "pk", None) else None,
    )
    reduction.full_clean()
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
            "valid_until": valid_until.isoformat(),
        },
    )
    transaction.on_commit(lambda: zone_limits_changed.send(sender=Zone, reason="reduction"))
    return reduction


@transaction.atomic
def zone_reduction_clear(*, zone: Zone, user=None) -> int:
    now = timezone.now()
    cleared = EbmsReduction.objects.filter(zone=zone, cleared_at=None, valid_until__gt=now).update(
        cleared_at=now
    )
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
