"""Writing the device log, and the changes worth logging."""

from __future__ import annotations

from collections.abc import Collection, Mapping
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


def device_log_trim(*, max_entries: int, batch_size: int = 10_000) -> int:
    """Delete the oldest entries beyond the newest ``max_entries``; return how many went.

    Keeps the log from filling the disk whatever the rate of events. Entries
    are deleted in id batches so a long backlog never holds a single long
    write lock (SQLite lets one writer in at a time).
    """
    if max_entries < 0:
        raise ValueError("max_entries must not be negative")
    newest = DeviceLogEntry.objects.order_by("-id").values_list("id", flat=True)
    kept_last = next(iter(newest[max_entries - 1 : max_entries]), None) if max_entries else None
    if max_entries and kept_last is None:
        return 0  # fewer entries than the cap
    older = DeviceLogEntry.objects.all()
    if kept_last is not None:
        older = older.filter(id__lt=kept_last)
    deleted = 0
    while True:
        batch = list(older.order_by("id").values_list("id", flat=True)[:batch_size])
        if not batch:
            return deleted
        deleted += DeviceLogEntry.objects.filter(id__gte=batch[0], id__lte=batch[-1]).delete()[0]


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


def settings_only(values: Mapping[str, Any], allowed: Collection[str], *, what: str) -> None:
    """Refuse with ``TypeError`` any name a writer does not set (a programming error)."""
    unknown = set(values) - set(allowed)
    if unknown:
        raise TypeError(f"not {what}: {', '.join(sorted(unknown))}")


def object_save_logged(obj, changes: Mapping[str, Any], *, created: bool = False, **entry) -> bool:
    """Validate and save ``obj`` when it is new or has ``changes``, and log it once.

    ``entry`` holds the arguments of :func:`device_log_write`. An object that
    is neither new nor changed is left alone (no query, no entry); ``False``
    then. ``ValidationError`` from ``full_clean`` saves and logs nothing.
    """
    if not (created or changes):
        return False
    obj.full_clean()
    obj.save()
    device_log_write(**entry)
    return True


def configuration_saved_entry(
    *, kind: str, label: str, changes: Mapping[str, Any], created: bool, user=None
) -> dict[str, Any]:
    """The device-log entry of a created or changed configuration object.

    The event is ``<kind>_created`` or ``<kind>_updated``; the message names
    ``label`` and the fields that changed, the data holds them as ``[old, new]``.
    """
    return {
        "category": EventCategory.CONFIGURATION,
        "event": f"{kind}_{'created' if created else 'updated'}",
        "message": f"{label} {'created' if created else 'changed: ' + ', '.join(changes)}.",
        "user": user,
        "data": {"changes": changes},
    }


def configuration_save_logged(
    obj, changes: Mapping[str, Any], *, created: bool, kind: str, label: str, user=None, **entry
) -> bool:
    """:func:`object_save_logged` with the entry of :func:`configuration_saved_entry`."""
    saved = configuration_saved_entry(
        kind=kind, label=label, changes=changes, created=created, user=user
    )
    return object_save_logged(obj, changes, created=created, **saved, **entry)


def configuration_deleted_log(*, kind: str, label: str, user=None, **entry) -> None:
    """The entry of a deleted configuration object: event ``<kind>_deleted``."""
    device_log_write(
        category=EventCategory.CONFIGURATION,
        event=f"{kind}_deleted",
        message=f"{label} deleted.",
        user=user,
        **entry,
    )


def _loggable(value: Any) -> Any:
    """A value as the device log's JSON can hold it (names for objects, text for decimals)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_loggable(v) for v in value]
    return str(value)
