"""Reads of the device log: the API's list and its CSV."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime

from django.db.models import QuerySet

from apps.devicelog.models import DeviceLogEntry

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
) -> QuerySet[DeviceLogEntry]:
    """Entries newest first (by id: the order they were written), filtered."""
    entries = DeviceLogEntry.objects.order_by("-id")
    if since is not None:
        entries = entries.filter(at__gte=since)
    if category:
        entries = entries.filter(category=category)
    if station_identity:
        entries = entries.filter(station_identity=station_identity)
    if zone_name:
        entries = entries.filter(zone_name=zone_name)
    return entries


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
