"""Charging data records as the sessions list and the CDR export read them (SPEC §2.4).

Both walk the transactions by *keyset* on ``(time, id)`` — ``time`` being
:func:`~apps.stations.models.transaction_time`, indexed with ``id`` overall,
per station and per id tag — so a page or an export batch costs the same on
the first day and after a million sessions: no ``OFFSET``, no ``COUNT(*)``.
"""

from __future__ import annotations

import csv
import heapq
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal

from django.db.models import BigIntegerField, ExpressionWrapper, F, Q, QuerySet
from django.utils import timezone

from apps.stations.models import Station, Transaction, TransactionStatus, transaction_time
from apps.stations.services import NO_PERIOD
from apps.zones.models import TouPeriod, Zone

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PAGE_SIZE = 50
# Up to this many stations, a page is merged from one indexed read per station.
MERGE_MAX_STATIONS = 64
EXPORT_BATCH = 2000
STATUS_LABELS = dict(TransactionStatus.choices)


@dataclass(frozen=True, slots=True)
class Cursor:
    """A place in the (time, id) order: the key of the last row a page showed."""

    at: datetime
    id: int

    def encode(self) -> str:
        return f"{(self.at - EPOCH) // timedelta(microseconds=1)}_{self.id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor of :meth:`encode`; ``ValueError`` for anything else."""
        micros, _, pk = text.partition("_")
        at = EPOCH + timedelta(microseconds=int(micros))
        return cls(at=at, id=int(pk))


@dataclass(frozen=True, slots=True)
class CdrFilter:
    """Which sessions to show: ``since`` inclusive, ``until`` exclusive (aware datetimes)."""

    ongoing: bool = False
    since: datetime | None = None
    until: datetime | None = None
    station_ids: frozenset[int] | None = None
    id_tag: str = ""


@dataclass(frozen=True, slots=True)
class CdrRow:
    """One session of the list, with the comment of its card when the card still exists."""

    id: int
    at: datetime
    station_id: int | None
    station_identity: str
    station_name: str
    connector_id: int
    id_tag: str
    card_comment: str
    status: str
    started_at: datetime | None
    stopped_at: datetime | None
    energy_wh: int
    charging_duration_s: int
    stop_reason: str
    phases_used: int | None
    setpoint_a: Decimal | None
    consumption_a: Decimal | None
    forced_stop: bool

    @property
    def ongoing(self) -> bool:
        return self.stopped_at is None

    @property
    def energy_kwh(self) -> float:
        return self.energy_wh / 1000

    @property
    def status_label(self) -> str:
        return str(STATUS_LABELS.get(self.status, self.status))

    @property
    def duration_s(self) -> int | None:
        """From start to stop, or to now while it runs; None without a start."""
        if self.started_at is None:
            return None
        end = self.stopped_at or timezone.now()
        return max(0, int((end - self.started_at).total_seconds()))


@dataclass(frozen=True, slots=True)
class CdrPage:
    """A page of sessions, newest first, and the cursors of its neighbours (None: no more)."""

    rows: list[CdrRow]
    older: Cursor | None
    newer: Cursor | None


ROW_FIELDS = (
    "id",
    "at",
    "station_id",
    "station_identity",
    "station_name",
    "connector_id",
    "id_tag",
    "card__comment",
    "status",
    "started_at",
    "stopped_at",
    "energy_wh",
    "charging_duration_s",
    "stop_reason",
    "phases_used",
    "setpoint_a",
    "consumption_a",
    "forced_stop",
)


def zone_station_ids(zone_id: int) -> frozenset[int]:
    """The stations of a zone and of all its sub-zones."""
    children: dict[int | None, list[int]] = {}
    for pk, parent_id in Zone.objects.values_list("id", "parent_id"):
        children.setdefault(parent_id, []).append(pk)
    zone_ids, todo = set(), [zone_id]
    while todo:
        current = todo.pop()
        zone_ids.add(current)
        todo.extend(children.get(current, ()))
    return frozenset(Station.objects.filter(zone_id__in=zone_ids).values_list("id", flat=True))


def _filtered(filters: CdrFilter) -> QuerySet[Transaction]:
    sessions = Transaction.objects.annotate(at=transaction_time())
    if filters.ongoing:
        sessions = sessions.filter(stopped_at__isnull=True)
    if filters.since is not None:
        sessions = sessions.filter(at__gte=filters.since)
    if filters.until is not None:
        sessions = sessions.filter(at__lt=filters.until)
    if filters.station_ids is not None:
        ids = sorted(filters.station_ids)
        if len(ids) == 1:
            sessions = sessions.filter(station_id=ids[0])
        else:
            # Among several stations, walk the (time, id) index and check the
            # station on the way: through the station index instead, the database
            # would gather and sort every session of those stations (a written
            # expression keeps it off that index, on SQLite and PostgreSQL alike).
            sessions = sessions.alias(
                station_key=ExpressionWrapper(F("station_id") + 0, output_field=BigIntegerField())
            ).filter(station_key__in=ids)
    if filters.id_tag:
        sessions = sessions.filter(id_tag=filters.id_tag)
    return sessions


def _before(sessions: QuerySet[Transaction], cursor: Cursor) -> QuerySet[Transaction]:
    # The plain bound on ``at`` lets the database start the index scan at the cursor.
    return sessions.filter(at__lte=cursor.at).filter(
        Q(at__lt=cursor.at) | Q(at=cursor.at, id__lt=cursor.id)
    )


def _after(sessions: QuerySet[Transaction], cursor: Cursor) -> QuerySet[Transaction]:
    return sessions.filter(at__gte=cursor.at).filter(
        Q(at__gt=cursor.at) | Q(at=cursor.at, id__gt=cursor.id)
    )


def _rows(sessions: QuerySet[Transaction]) -> list[CdrRow]:
    return [
        CdrRow(**{("card_comment" if k == "card__comment" else k): v for k, v in row.items()})
        for row in sessions.values(*ROW_FIELDS)
    ]


def transactions_page(
    filters: CdrFilter,
    *,
    older_than: Cursor | None = None,
    newer_than: Cursor | None = None,
    size: int = PAGE_SIZE,
) -> CdrPage:
    """One page of sessions, newest first: the first page, or the one beside a cursor.

    ``older_than`` pages towards the past, ``newer_than`` back towards the
    present. Indexed range scans of ``size + 1`` rows either way.
    """
    found = _fetch(filters, older_than=older_than, newer_than=newer_than, limit=size + 1)
    if newer_than is not None:
        rows = list(reversed(found[:size]))
        return CdrPage(
            rows=rows,
            older=_key(rows[-1]) if rows else None,
            newer=_key(rows[0]) if rows and len(found) > size else None,
        )
    rows = found[:size]
    return CdrPage(
        rows=rows,
        older=_key(rows[-1]) if len(found) > size else None,
        newer=_key(rows[0]) if rows and older_than is not None else None,
    )


def _fetch(
    filters: CdrFilter, *, older_than: Cursor | None, newer_than: Cursor | None, limit: int
) -> list[CdrRow]:
    """Up to ``limit`` rows past the cursor, in walking order (newest first, or oldest first
    towards ``newer_than``).

    The sessions of a few stations (a small zone) are read station by station,
    each on its (station, time, id) index, and merged: walking the whole
    history for a zone that rarely charges would cost a scan of everything.
    """
    ids = filters.station_ids
    if ids is not None and 1 < len(ids) <= MERGE_MAX_STATIONS:
        parts = [
            _fetch(
                replace(filters, station_ids=frozenset({pk})),
                older_than=older_than,
                newer_than=newer_than,
                limit=limit,
            )
            for pk in sorted(ids)
        ]
        merged = heapq.merge(*parts, key=_sort_key, reverse=newer_than is None)
        return list(itertools.islice(merged, limit))
    sessions = _filtered(filters)
    if newer_than is not None:
        return _rows(_after(sessions, newer_than).order_by("at", "id")[:limit])
    if older_than is not None:
        sessions = _before(sessions, older_than)
    return _rows(sessions.order_by("-at", "-id")[:limit])


def _sort_key(row: CdrRow) -> tuple[datetime, int]:
    return (row.at, row.id)


def _key(row: CdrRow) -> Cursor:
    return Cursor(at=row.at, id=row.id)


# --- CSV export --------------------------------------------------------------

EXPORT_COLUMNS = (
    "transaction_id",
    "station_name",
    "connector",
    "id_tag",
    "card_comment",
    "start",
    "stop",
    "duration_s",
    "charging_duration_s",
    "energy_kwh",
    "stop_reason",
    "box_identity",
    NO_PERIOD,
)
EXPORT_FIELDS = (
    "id",
    "at",
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
SEPARATOR = ";"


class _Line:
    """A file-like object whose ``write`` hands back the text, to stream csv rows."""

    def write(self, text: str) -> str:
        return text


def tou_period_names() -> list[str]:
    """The TOU periods configured now, by name: one export column each."""
    return list(TouPeriod.objects.order_by("name").values_list("name", flat=True))


def _kwh(energy_wh: int | float | None) -> str:
    return f"{(energy_wh or 0) / 1000:.3f}"


def _local(moment: datetime | None, zone: tzinfo) -> str:
    return moment.astimezone(zone).isoformat(timespec="seconds") if moment else ""


def cdr_export_batches(filters: CdrFilter, *, batch_size: int = EXPORT_BATCH) -> Iterator[str]:
    """The CDR file of SPEC §2.4, in chunks of text: the header, then ``batch_size`` CDRs each.

    The finished sessions that ``filters`` select (``ongoing`` aside), oldest first.
    Each chunk is one keyset query read to the end before it is yielded, so
    no database cursor stays open between chunks and memory stays flat
    whatever the range. Columns: those of SPEC §2.4 (durations in seconds,
    energies in kWh, times in the site's time zone), then one per TOU period
    configured now (energy recorded under a period since deleted is in no
    column).
    """
    periods = tou_period_names()
    zone = timezone.get_current_timezone()  # looked up once: per row it costs a third
    writer = csv.writer(_Line(), delimiter=SEPARATOR, lineterminator="\r\n")
    yield writer.writerow([*EXPORT_COLUMNS, *periods])
    sessions = _filtered(replace(filters, ongoing=False)).filter(stopped_at__isnull=False)
    cursor: Cursor | None = None
    while True:
        batch = sessions if cursor is None else _after(sessions, cursor)
        rows = list(batch.order_by("at", "id").values_list(*EXPORT_FIELDS)[:batch_size])
        if not rows:
            return
        yield "".join(_export_lines(writer, rows, periods, zone))
        last = rows[-1]
        cursor = Cursor(at=last[1], id=last[0])
        if len(rows) < batch_size:
            return


def _export_lines(writer, rows: Iterable[tuple], periods: list[str], zone: tzinfo) -> Iterator[str]:
    for (
        pk,
        _at,
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
    ) in rows:
        tou = tou or {}
        duration = (
            str(int((stopped_at - started_at).total_seconds()))
            if started_at is not None and stopped_at is not None
            else ""
        )
        yield writer.writerow(
            [
                pk,
                station_name,
                connector_id,
                id_tag,
                comment or "",
                _local(started_at, zone),
                _local(stopped_at, zone),
                duration,
                charging_s,
                _kwh(energy_wh),
                stop_reason,
                identity,
                _kwh(tou.get(NO_PERIOD)),
                *(_kwh(tou.get(name)) for name in periods),
            ]
        )
