"""Writing the device log."""

from __future__ import annotations

from typing import Any

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
