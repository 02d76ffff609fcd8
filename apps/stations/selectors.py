"""Reads about stations and sessions that need more than one query or Redis.

The online state of stations is decided here only (:meth:`StationPresence.is_online`):
the load manager, the authentication sync and the admin all ask these functions.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from ocpp.v16.enums import Action

from apps.siteconfig.models import SiteSettings
from apps.stations import presence
from apps.stations.models import Connector, OcppMessage, Station, StationState, Transaction


def station_by_identity(identity: str) -> Station | None:
    """Box identities are compared case-insensitively (as the site file does)."""
    return Station.objects.filter(identity__iexact=identity).first()


def transaction_ongoing(station_identity: str, connector_id: int) -> Transaction | None:
    return (
        Transaction.objects.filter(
            station_identity=station_identity, connector_id=connector_id, stopped_at__isnull=True
        )
        .order_by("-started_at", "-id")
        .first()
    )


def transactions_ongoing(*, station: Station | None = None) -> QuerySet[Transaction]:
    sessions = Transaction.objects.filter(stopped_at__isnull=True).select_related("station")
    if station is not None:
        sessions = sessions.filter(station=station)
    return sessions


def online_window_s(heartbeat_interval_s: float) -> float:
    """How long after its last message a connected station still counts as online."""
    return 2 * heartbeat_interval_s


@dataclass(frozen=True, slots=True)
class StationPresence:
    """A station's connection as the web processes record it in Redis.

    ``connected``: a socket of the station is open on some web process;
    ``last_seen_s``: when it last sent a message (epoch seconds).
    """

    identity: str
    connected: bool
    last_seen_s: float | None = None
    connected_at_s: float | None = None
    remote_addr: str = ""

    def is_online(
        self, now_s: float | None = None, *, heartbeat_interval_s: float | None = None
    ) -> bool:
        """The one online rule (SPEC §2.1).

        Online while the socket is open and the last message is at most twice
        the heartbeat interval old (the boundary included): a socket that stays
        open while the station says nothing (a half-open TCP connection) does
        not count for long. Defaults: now, and the site's heartbeat interval.
        """
        if not self.connected or self.last_seen_s is None:
            return False
        if now_s is None:
            now_s = time.time()
        if heartbeat_interval_s is None:
            heartbeat_interval_s = _heartbeat_interval_s()
        return now_s - self.last_seen_s <= online_window_s(heartbeat_interval_s)


def _heartbeat_interval_s() -> float:
    return float(SiteSettings.load().heartbeat_interval_s)


def _float_or_none(value: str | None) -> float | None:
    return float(value) if value else None


def station_presence(identity: str) -> StationPresence:
    """The connection record of one station (not connected when there is none)."""
    record = presence.connection_info(identity)
    if not record:
        return StationPresence(identity=identity, connected=False)
    return StationPresence(
        identity=record.get("identity") or identity,
        connected=True,
        last_seen_s=_float_or_none(record.get("last_seen")),
        connected_at_s=_float_or_none(record.get("connected_at")),
        remote_addr=record.get("remote_addr") or "",
    )


def station_is_online(identity: str, *, now: float | None = None) -> bool:
    return station_presence(identity).is_online(now)


def online_identities(identities: Iterable[str], *, now: float | None = None) -> set[str]:
    """The subset of ``identities`` (as given) that are online now, in one round trip."""
    wanted = list(dict.fromkeys(identities))
    if not wanted:
        return set()
    now_s = time.time() if now is None else now
    heartbeat_s = _heartbeat_interval_s()
    seen = presence.last_seen_many(wanted)
    return {
        identity
        for identity in wanted
        if StationPresence(
            identity, connected=identity in seen, last_seen_s=seen.get(identity)
        ).is_online(now_s, heartbeat_interval_s=heartbeat_s)
    }


def stations_online(*, now: float | None = None) -> dict[str, float]:
    """Stations online now: box identity -> last time it spoke (epoch seconds)."""
    now_s = time.time() if now is None else now
    heartbeat_s = _heartbeat_interval_s()
    return {
        identity: seen
        for identity, seen in presence.connected_stations().items()
        if StationPresence(identity, connected=True, last_seen_s=seen).is_online(
            now_s, heartbeat_interval_s=heartbeat_s
        )
    }


FAULTED = "Faulted"


@dataclass(frozen=True, slots=True)
class StationCounts:
    """The installed stations split as the status bar shows them (SPEC §7).

    ``online`` + ``offline`` = ``total``; ``faulted`` counts the online
    stations that report Faulted for the station or any connector (what an
    offline station last said is stale, so it counts as offline only).
    """

    total: int
    online: int
    offline: int
    faulted: int


def station_counts(*, now: float | None = None) -> StationCounts:
    """Online, offline and faulted installed stations, by the one online rule."""
    installed = dict(
        Station.objects.filter(state=StationState.INSTALLED).values_list("identity", "status")
    )
    online = set(stations_online(now=now)) & set(installed)
    faulted_connectors = set(
        Connector.objects.filter(station__identity__in=online, status=FAULTED).values_list(
            "station__identity", flat=True
        )
    )
    faulted = {
        identity
        for identity in online
        if installed[identity] == FAULTED or identity in faulted_connectors
    }
    return StationCounts(
        total=len(installed),
        online=len(online),
        offline=len(installed) - len(online),
        faulted=len(faulted),
    )


def transactions_filtered(
    *,
    started_from: datetime | None = None,
    started_before: datetime | None = None,
    station_identity: str | None = None,
    id_tag: str | None = None,
    ongoing: bool | None = None,
) -> QuerySet[Transaction]:
    """Charging data records, newest first, filtered as the API and the export ask.

    Every filter runs on an indexed column (start time, box identity through
    the station, id tag, the partial index of ongoing sessions), so a page of
    a million records costs a few index reads.
    """
    records = Transaction.objects.select_related("card").order_by("-id")
    if started_from is not None:
        records = records.filter(started_at__gte=started_from)
    if started_before is not None:
        records = records.filter(started_at__lt=started_before)
    if station_identity:
        # The identity as the station spells it (identities compare case-insensitively),
        # matched exactly so the index on it serves.
        station = station_by_identity(station_identity)
        records = records.filter(station_identity=station.identity if station else station_identity)
    if id_tag:
        records = records.filter(id_tag=id_tag)
    if ongoing is not None:
        records = records.filter(stopped_at__isnull=ongoing)
    return records


def transaction_by_id(transaction_id: int) -> Transaction | None:
    return Transaction.objects.select_related("card").filter(pk=transaction_id).first()


# --- the OCPP message log -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OcppLogFilter:
    """Which frames of a station's log to show: all by default, newest first."""

    action: str = ""
    direction: str = ""
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class LogCursor:
    """Where a page of the log ends: the last row's time and id (keyset pagination)."""

    at: datetime
    id: int

    def token(self) -> str:
        return f"{self.at.isoformat()}~{self.id}"

    @classmethod
    def parse(cls, token: str) -> LogCursor:
        """Raises ``ValueError`` on a token this class did not write."""
        at, _sep, pk = token.partition("~")
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError("a cursor time carries its offset")
        return cls(at=parsed, id=int(pk))


@dataclass(frozen=True, slots=True)
class OcppLogPage:
    rows: list[OcppMessage]
    next_cursor: LogCursor | None


def _ocpp_log(identity: str, log_filter: OcppLogFilter) -> QuerySet[OcppMessage]:
    rows = OcppMessage.objects.filter(station_identity=identity)
    if log_filter.action:
        rows = rows.filter(action=log_filter.action)
    if log_filter.direction:
        rows = rows.filter(direction=log_filter.direction)
    if log_filter.since is not None:
        rows = rows.filter(at__gte=log_filter.since)
    if log_filter.until is not None:
        rows = rows.filter(at__lt=log_filter.until)
    return rows.order_by("-at", "-id")


def _after(rows: QuerySet[OcppMessage], after: LogCursor | None) -> QuerySet[OcppMessage]:
    if after is None:
        return rows
    return rows.filter(Q(at__lt=after.at) | Q(at=after.at, id__lt=after.id))


def ocpp_log_page(
    identity: str,
    log_filter: OcppLogFilter,
    *,
    after: LogCursor | None = None,
    size: int = 50,
) -> OcppLogPage:
    """One page of a station's log, newest first, continuing after ``after``.

    Keyset pagination on (time, id) along the (identity, time) index: a page
    deep in millions of rows costs what the first one does.
    """
    page = list(_after(_ocpp_log(identity, log_filter), after)[: size + 1])
    more = len(page) > size
    page = page[:size]
    return OcppLogPage(
        rows=page,
        next_cursor=LogCursor(at=page[-1].at, id=page[-1].pk) if more and page else None,
    )


#: The columns of :func:`ocpp_log_chunk`'s rows.
OCPP_LOG_FIELDS = ("at", "id", "direction", "message_type", "unique_id", "action", "payload")


def ocpp_log_chunk(
    identity: str, log_filter: OcppLogFilter, *, after: LogCursor | None, size: int
) -> tuple[list[tuple], LogCursor | None]:
    """:func:`ocpp_log_page` as plain tuples (``OCPP_LOG_FIELDS``), for exports: no models."""
    rows = list(
        _after(_ocpp_log(identity, log_filter), after).values_list(*OCPP_LOG_FIELDS)[: size + 1]
    )
    more = len(rows) > size
    rows = rows[:size]
    return rows, (LogCursor(at=rows[-1][0], id=rows[-1][1]) if more and rows else None)


def ocpp_log_actions() -> list[str]:
    """The actions the log filter offers: every action of OCPP 1.6 (security extension too)."""
    return sorted({str(action.value) for action in Action})
