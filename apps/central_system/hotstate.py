"""Hot connection state of stations, kept in Redis and shared by every process.

Which channel (consumer, on whichever web process) holds a station's socket,
when the station last spoke, and the answers already given to its recent
CALLs (so a repeated message is processed once). The database keeps only
what must survive Redis (last boot, a throttled last-seen time). This module
writes the connection records; :mod:`apps.stations.presence` names and reads them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import types
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings

from apps.stations.presence import ONLINE_SET, PREFIX, connection_key, station_key, sync_client

# A repeated CALL (same id, action and payload) arriving within this window
# gets the first answer again; later repeats rely on the services' own
# idempotency (unique transaction start, stop of a stopped transaction).
DEDUP_TTL_S = 15 * 60
CONNECTION_TTL_S = 24 * 3600
ASYNC_POOL_SIZE = 256
ASYNC_POOL_WAIT_S = 20.0


def station_group(identity: str) -> str:
    return f"station.{station_key(identity)}"


def _dedup_key(identity: str, unique_id: str, action: str, payload: dict[str, Any]) -> str:
    digest = hashlib.blake2b(
        json.dumps(payload, sort_keys=True, separators=(",", ":")).encode(), digest_size=12
    ).hexdigest()
    return f"{PREFIX}dedup:{station_key(identity)}:{action}:{unique_id}:{digest}"


# Delete the connection record only if it still names this channel: a newer
# connection of the same station (maybe on another process) has replaced it.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'channel') == ARGV[1] then
    redis.call('DEL', KEYS[1])
    redis.call('SREM', KEYS[2], ARGV[2])
    return 1
end
return 0
"""

# A web process proves it is alive by refreshing its key; a connection record
# naming a dead process is stale (the process crashed without cleaning up).
PROCESS_TTL_S = 30
PROCESS_REFRESH_S = 10.0

# The channel of the station's consumer, only if the process holding it is alive.
_LIVE_CHANNEL = """
local channel = redis.call('HGET', KEYS[1], 'channel')
if not channel then return false end
local process = string.match(channel, '^[^.]*%.([^!]*)!')
if process and redis.call('EXISTS', ARGV[1] .. process) == 0 then return false end
return channel
"""

_async_clients: dict[asyncio.AbstractEventLoop, aioredis.Redis] = {}


def async_client() -> aioredis.Redis:
    """One client per event loop (daphne has one; each ``async_to_sync`` call makes one)."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        # A blocking pool: a burst (a thousand stations reconnecting, the load
        # manager's concurrent commands) waits for a connection instead of failing.
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            decode_responses=True,
            max_connections=ASYNC_POOL_SIZE,
            timeout=ASYNC_POOL_WAIT_S,
        )
        client = aioredis.Redis(connection_pool=pool)
        _async_clients[loop] = client
        _close_with_loop(loop, client)
    return client


def _close_with_loop(loop: asyncio.AbstractEventLoop, client: aioredis.Redis) -> None:
    original_close = loop.close

    def close(self) -> None:
        if _async_clients.get(self) is client:
            del _async_clients[self]
            if not self.is_running():
                self.run_until_complete(client.aclose(close_connection_pool=True))
        original_close()

    loop.close = types.MethodType(close, loop)


async def close_async_client() -> None:
    """Close this event loop's client now (short-lived loops in tasks)."""
    client = _async_clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose(close_connection_pool=True)


async def connection_open(identity: str, channel: str, *, remote_addr: str | None) -> None:
    now = time.time()
    key = connection_key(identity)
    pipe = async_client().pipeline(transaction=True)
    pipe.delete(key)
    pipe.hset(
        key,
        mapping={
            "identity": identity,
            "channel": channel,
            "connected_at": now,
            "last_seen": now,
            "remote_addr": remote_addr or "",
        },
    )
    pipe.expire(key, CONNECTION_TTL_S)
    pipe.sadd(ONLINE_SET, station_key(identity))
    await pipe.execute()


async def connection_refresh(identity: str) -> None:
    await async_client().expire(connection_key(identity), CONNECTION_TTL_S)


async def connection_close(identity: str, channel: str) -> bool:
    client = async_client()
    released = await client.eval(
        _RELEASE, 2, connection_key(identity), ONLINE_SET, channel, station_key(identity)
    )
    return bool(released)


async def connection_channel(identity: str) -> str | None:
    """The channel of the consumer holding the station's socket, if its process is alive."""
    return await async_client().eval(
        _LIVE_CHANNEL, 1, connection_key(identity), f"{PREFIX}process:"
    )


def process_of(channel: str) -> str:
    """The process part of a channel name (``specific.<process>!<consumer>``)."""
    return channel.partition(".")[2].partition("!")[0]


async def connection_channels(identities: list[str]) -> dict[str, str | None]:
    """:func:`connection_channel` of many stations in one round trip."""
    pipe = async_client().pipeline(transaction=False)
    for identity in identities:
        pipe.eval(_LIVE_CHANNEL, 1, connection_key(identity), f"{PREFIX}process:")
    return dict(zip(identities, await pipe.execute(), strict=True))


async def process_alive(process: str) -> None:
    await async_client().set(f"{PREFIX}process:{process}", 1, ex=PROCESS_TTL_S)


class Dedup(StrEnum):
    """How a CALL is protected against being processed twice."""

    NONE = "none"  # answers that depend on the moment (BootNotification, Heartbeat)
    CLAIM = "claim"  # constant answer: the first delivery claims it, repeats get the same
    REPLAY = "replay"  # answer computed once and replayed (StartTransaction, Authorize…)


async def note_call(
    identity: str,
    unique_id: str,
    action: str,
    payload: dict[str, Any],
    *,
    dedup: Dedup,
    touch: bool,
) -> tuple[bool, dict[str, Any] | None]:
    """Record that the station spoke (``touch``) and check whether this CALL is a repeat.

    One round trip. Returns ``(repeat, answer)``: for ``CLAIM`` a repeat is
    answered with an empty payload, for ``REPLAY`` with the stored answer.
    """
    if dedup == Dedup.NONE and not touch:
        return False, None
    pipe = async_client().pipeline(transaction=False)
    if touch:
        pipe.hset(connection_key(identity), "last_seen", time.time())
    key = _dedup_key(identity, unique_id, action, payload)
    if dedup == Dedup.CLAIM:
        pipe.set(key, "{}", nx=True, ex=DEDUP_TTL_S)
    elif dedup == Dedup.REPLAY:
        pipe.get(key)
    results = await pipe.execute()
    if dedup == Dedup.CLAIM:
        return not results[-1], {}
    if dedup == Dedup.REPLAY and results[-1]:
        return True, json.loads(results[-1])
    return False, None


async def cache_answer(
    identity: str, unique_id: str, action: str, payload: dict[str, Any], answer: dict[str, Any]
) -> None:
    await async_client().set(
        _dedup_key(identity, unique_id, action, payload), json.dumps(answer), ex=DEDUP_TTL_S
    )


async def touch(identity: str) -> None:
    await async_client().hset(connection_key(identity), "last_seen", time.time())


SAMPLE_MARKS = f"{PREFIX}sample_marks"


async def mark_samples_asked(identity: str, after_sample_id: int) -> None:
    """The station accepted to send a sample: those it stores after ``after_sample_id`` came later.

    A station's messages arrive in the order it sends them, and it answers a
    TriggerMessage before it sends what was asked for; the consumer handles
    them one at a time. So a sample of this station stored after the answer
    was taken after the station was asked.
    """
    await async_client().hset(SAMPLE_MARKS, station_key(identity), after_sample_id)


def samples_asked_marks(identities: list[str]) -> dict[str, int]:
    """The last :func:`mark_samples_asked` of each station that has one."""
    if not identities:
        return {}
    values = sync_client().hmget(SAMPLE_MARKS, [station_key(i) for i in identities])
    return {i: int(v) for i, v in zip(identities, values, strict=True) if v is not None}


# OCPP frames in and out per action, since the Redis data was last cleared (``/metrics``).
MESSAGE_COUNTS = f"{PREFIX}ocpp:messages"


def messages_count(counts: dict[tuple[str, str], int]) -> None:
    """Add ``{(direction, action): frames}`` to the counters, in one round trip."""
    if not counts:
        return
    pipe = sync_client().pipeline()
    for (direction, action), frames in counts.items():
        pipe.hincrby(MESSAGE_COUNTS, f"{direction}:{action}", frames)
    pipe.execute()


def message_counts() -> dict[tuple[str, str], int]:
    """The counters: ``{(direction, action): frames}``."""
    result = {}
    for name, frames in sync_client().hgetall(MESSAGE_COUNTS).items():
        direction, _, action = name.partition(":")
        result[(direction, action)] = int(frames)
    return result
