"""Charging data records as CSV (SPEC §2.4), streamed: constant memory for any range.

Columns: transaction id, station name, connector, id tag, card comment,
start, stop, duration, charging duration, energy kWh, stop reason, box
identity, ``NoPeriod`` kWh, then one column per TOU period (kWh inside it).
Times are ISO 8601 UTC; durations in seconds; energies in kWh with three
decimals (Wh precision).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.db.models import QuerySet

from apps.stations.models import Transaction
from apps.zones.models import TouPeriod

NO_PERIOD = "NoPeriod"
HEADER = [
    "transaction_id",
    "station_name",
    "connector_id",
    "id_tag",
    "card_comment",
    "started_at",
    "stopped_at",
    "duration_s",
    "charging_duration_s",
    "energy_kwh",
    "stop_reason",
    "box_identity",
    f"{NO_PERIOD}_kwh",
]
CHUNK = 2000


class _Line:
    """A file-like object whose ``write`` returns the line: ``csv.writer`` as a formatter."""

    def write(self, value: str) -> str:
        return value


def _kwh(energy_wh: int | float | None) -> str:
    return "" if energy_wh is None else f"{energy_wh / 1000:.3f}"


def _when(value) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else ""


def transactions_csv_export(records: QuerySet[Transaction]) -> Iterator[str]:
    """Yield the header, then one line per record of ``records`` (as ordered)."""
    periods = list(TouPeriod.objects.order_by("name").values_list("name", flat=True))
    writer = csv.writer(_Line())
    yield writer.writerow([*HEADER, *(f"{name}_kwh" for name in periods)])
    rows = records.values_list(
        "pk",
        "station_name",
        "connector_id",
        "id_tag",
        "card__comment",
        "started_at",
        "stopped_at",
        "charging_duration_s",
        "energy_wh",
        "stop_reason",
        "station_identity",
        "tou_energy_wh",
    )
    for (
        pk,
        station_name,
        connector_id,
        id_tag,
        comment,
        started_at,
        stopped_at,
        charging_s,
        energy_wh,
        stop_reason,
        identity,
        tou,
    ) in rows.iterator(chunk_size=CHUNK):
        duration = (
            int((stopped_at - started_at).total_seconds()) if started_at and stopped_at else ""
        )
        tou = tou or {}
        yield writer.writerow(
            [
                pk,
                station_name,
                connector_id,
                id_tag,
                comment or "",
                _when(started_at),
                _when(stopped_at),
                duration,
                charging_s,
                _kwh(energy_wh),
                stop_reason,
                identity,
                _kwh(tou.get(NO_PERIOD, 0)),
                *(_kwh(tou.get(name, 0)) for name in periods),
            ]
        )
