"""Writing the device log, and the changes worth logging."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone

from apps.devicelog.models import DeviceLogEntry, EventCategory, EventLevel


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
