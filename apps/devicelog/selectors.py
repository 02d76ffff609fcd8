"""Reads of the device log: the API's list, the maintenance page and their CSV."""

from __future__ import annotations

import csv
import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from apps.devicelog.models import DeviceLogEntry, EventLevel

#: Levels from the mildest: a level filter keeps that level and the worse ones.
LEVEL_ORDER = [EventLevel.INFO, EventLevel.WARNING, EventLevel.ERROR]
PAGE_SIZE = 50

CSV_HEADER = [
    "at",
    "category",
    "level",
    "event",
    "message",
    "station_identity",
    "zone_name",
    "username",
    "remote_addr",
    "data",
]


def device_log_filtered(
    *,
    since: datetime | None = None,
    category: str | None = None,
    station_identity: str | None = None,
    zone_name: str | None = None,
    until: datetime | None = None,
    min_level: str | None = None,
    zone_names: Collection[str] | None = None,
    zone_station_identities: Collection[str] = (),
    username: str | None = None,
    text: str | None = None,
) -> QuerySet[DeviceLogEntry]:
    """Entries newest first (by id: the order they were written), filtered.

    ``since`` is inclusive, ``until`` exclusive. ``min_level`` keeps that level
    and the worse ones. ``zone_names`` keeps the entries naming one of those
    zones or one of ``zone_station_identities`` (a zone's events are mostly its
    stations' events). ``text`` is searched in the message and the event code.
    """
    entries = DeviceLogEntry.objects.order_by("-id")
    if since is not None:
        entries = entries.filter(at__gte=since)
    if until is not None:
        entries = entries.filter(at__lt=until)
    if category:
        entries = entries.filter(category=category)
    if min_level:
        levels = LEVEL_ORDER[[str(v) for v in LEVEL_ORDER].index(min_level) :]
        entries = entries.filter(level__in=levels)
    if station_identity:
        entries = entries.filter(station_identity=station_identity)
    if zone_name:
        entries = entries.filter(zone_name=zone_name)
    if zone_names is not None:
        entries = entries.filter(
            Q(zone_name__in=list(zone_names))
            | Q(station_identity__in=[i for i in zone_station_identities if i])
        )
    if username:
        entries = entries.filter(username=username)
    if text:
        entries = entries.filter(Q(message__icontains=text) | Q(event__icontains=text))
    return entries


@dataclass(frozen=True, slots=True)
class DeviceLogPage:
    """One page of entries, newest first, and the ids to page from (``None``: no such page)."""

    rows: list[DeviceLogEntry]
    older: int | None
    newer: int | None


def device_log_page(
    entries: QuerySet[DeviceLogEntry],
    *,
    older_than: int | None = None,
    newer_than: int | None = None,
    size: int = PAGE_SIZE,
) -> DeviceLogPage:
    """A page of ``entries`` (from :func:`device_log_filtered`) beside an id, or the newest.

    Keyset paging on the id: each page is an index range however deep it lies,
    and entries written meanwhile never shift a page the user is reading.
    """
    if newer_than is not None:
        found = list(entries.filter(id__gt=newer_than).order_by("id")[: size + 1])
        rows = list(reversed(found[:size]))
        return DeviceLogPage(
            rows=rows,
            older=rows[-1].pk if rows else None,
            newer=rows[0].pk if rows and len(found) > size else None,
        )
    if older_than is not None:
        entries = entries.filter(id__lt=older_than)
    found = list(entries[: size + 1])
    rows = found[:size]
    return DeviceLogPage(
        rows=rows,
        older=rows[-1].pk if len(found) > size else None,
        newer=rows[0].pk if rows and older_than is not None else None,
    )


def device_log_recent(*, limit: int) -> QuerySet[DeviceLogEntry]:
    """The last ``limit`` entries, newest first."""
    return DeviceLogEntry.objects.order_by("-id")[:limit]


class _Line:
    def write(self, value: str) -> str:
        return value


def device_log_csv(entries: QuerySet[DeviceLogEntry]) -> Iterator[str]:
    """The header, then one line per entry; a database iterator, so it streams."""
    writer = csv.writer(_Line())
    yield writer.writerow(CSV_HEADER)
    rows = entries.values_list(*CSV_HEADER)
    for at, *fields, remote_addr, data in rows.iterator(chunk_size=2000):
        when = at.isoformat().replace("+00:00", "Z")
        yield writer.writerow([when, *fields, remote_addr or "", json.dumps(data or {})])
