"""The connection records of the stations in the hot state: their names, and raw reads.

The OCPP transport (:mod:`apps.central_system.hotstate`) writes a record per
open socket and refreshes its last-message time; the stations' selectors read
them here, without the transport, and apply the one online rule
(:meth:`apps.stations.selectors.StationPresence.is_online`).
"""

from __future__ import annotations

import re

import redis
from django.conf import settings

PREFIX = "evce:cs:"
ONLINE_SET = f"{PREFIX}online"

_UNSAFE = re.compile(r"[^a-z0-9\-.]")


def station_key(identity: str) -> str:
    """A channel-layer-safe, case-insensitive name for a box identity.

    Channel names allow only ``a-z A-Z 0-9 - _ .``; identities also use
    ``* = + | @``: those (and ``_``) are escaped as ``_xx`` hex, so distinct
    identities never share a key.
    """
    return _UNSAFE.sub(lambda m: f"_{ord(m.group()):02x}", identity.lower())


def connection_key(identity: str) -> str:
    """The hash of a station's open connection (channel, times, remote address)."""
    return f"{PREFIX}conn:{station_key(identity)}"


_sync_client: redis.Redis | None = None


def sync_client() -> redis.Redis:
    global _sync_client
    if _sync_client is None:
        _sync_client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    return _sync_client


def connection_info(identity: str) -> dict[str, str] | None:
    """The connection record of a station (sync, for views, selectors and tasks)."""
    record = sync_client().hgetall(connection_key(identity))
    return record or None


def last_seen_many(identities: list[str]) -> dict[str, float]:
    """Last message time of each connected station among ``identities`` (one round trip)."""
    pipe = sync_client().pipeline(transaction=False)
    for identity in identities:
        pipe.hget(connection_key(identity), "last_seen")
    return {
        identity: float(value)
        for identity, value in zip(identities, pipe.execute(), strict=True)
        if value
    }


def connected_stations() -> dict[str, float]:
    """Every station with an open socket: identity -> last time it spoke (epoch seconds)."""
    keys = sorted(sync_client().smembers(ONLINE_SET))
    if not keys:
        return {}
    pipe = sync_client().pipeline(transaction=False)
    for key in keys:
        pipe.hmget(f"{PREFIX}conn:{key}", "identity", "last_seen")
    return {
        identity: float(last_seen)
        for identity, last_seen in pipe.execute()
        if identity and last_seen
    }
