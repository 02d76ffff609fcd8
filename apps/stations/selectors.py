"""Reads about stations and sessions that need more than one query or Redis."""

from __future__ import annotations

import time

from django.db.models import QuerySet

from apps.siteconfig.models import SiteSettings
from apps.stations import presence
from apps.stations.models import Station, Transaction


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


def _online_window_s() -> float:
    # SPEC §2.1: online while the socket is open and the last message is
    # younger than twice the heartbeat interval.
    return 2 * SiteSettings.load().heartbeat_interval_s


def station_is_online(identity: str, *, now: float | None = None) -> bool:
    record = presence.connection_info(identity)
    if not record:
        return False
    last_seen = float(record.get("last_seen") or 0)
    return (now or time.time()) - last_seen <= _online_window_s()


def stations_online(*, now: float | None = None) -> dict[str, float]:
    """Stations online now: box identity -> last time it spoke (epoch seconds)."""
    window_s = _online_window_s()
    now = now or time.time()
    return {
        identity: seen
        for identity, seen in presence.connected_stations().items()
        if now - seen <= window_s
    }
