"""Writing the device log and pruning old records."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone

from apps.maintenance.models import DeviceLogEntry, EventCategory, EventLevel


def device_log_write(
    *,
    category: EventCategory | str,
    event: str,
    message: str,
    level: EventLevel | str = EventLevel.INFO,
    station_identity: str = "",
    zone_name: str = "",
    user=None,
    remote_addr: str | None = None,
    data: dict[str, Any] | None = None,
) -> DeviceLogEntry:
    """Append one event to the device log (the only way entries are written)."""
    return DeviceLogEntry.objects.create(
        at=timezone.now(),
        category=category,
        level=level,
        event=event,
        message=message,
        station_identity=station_identity,
        zone_name=zone_name,
        user=user if user is not None and getattr(user, "pk", None) else None,
        username=getattr(user, "username", "") or "",
        remote_addr=remote_addr,
        data=data or {},
    )


def fields_assign(obj, values: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Set ``values`` on ``obj``; return each field that really changed as ``[old, new]``.

    Writers use it to save (and log) only what changed: a write that changes
    nothing leaves no row touched and no entry in the device log.
    """
    changes: dict[str, list[Any]] = {}
    for name, value in values.items():
        try:
            old = getattr(obj, name)
        except ObjectDoesNotExist:  # a required relation not set yet on a new object
            old = None
        if old != value:
            changes[name] = [_loggable(old), _loggable(value)]
            setattr(obj, name, value)
    return changes


def _loggable(value: Any) -> Any:
    """A value as the device log's JSON can hold it (names for objects, text for decimals)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_loggable(v) for v in value]
    return str(value)


def purge_expired_records(*, now=None) -> dict[str, int]:
    """Delete raw records older than their retention (CDRs are kept forever)."""
    from apps.siteconfig.models import SiteSettings
    from apps.stations.models import MeterSample, OcppMessage

    now = now or timezone.now()
    site = SiteSettings.load()
    ocpp_cutoff = now - timedelta(days=site.ocpp_log_retention_days)
    sample_cutoff = now - timedelta(days=site.meter_sample_retention_days)
    ocpp_deleted, _ = OcppMessage.objects.filter(at__lt=ocpp_cutoff).delete()
    samples_deleted, _ = MeterSample.objects.filter(sampled_at__lt=sample_cutoff).delete()
    return {"ocpp_messages": ocpp_deleted, "meter_samples": samples_deleted}
