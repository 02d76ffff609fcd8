"""Hot state of the control loop, kept in Redis and shared by every process.

- the setpoint last *accepted* by each connector (what the deadband compares
  with, and what a disconnected station may still draw until its lease ends);
- the priority ranking fed back to the next allocation;
- the last allocation per connector and per zone, read by the UI and the API.

This module alone knows the keys; others read the results typed, through
:mod:`apps.energy.selectors`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis.exceptions import RedisError

from apps.energy.allocator import Ranking
from apps.energy.allocator.envelope import ConnectorProfiles
from apps.energy.allocator.readings import lowest_in_force_a
from evce_site.hotstate import key, redis_client

SENT = key("energy", "sent")
RANKING = key("energy", "ranking")
SESSIONS = key("energy", "sessions")
ZONES = key("energy", "zones")
PROFILES = key("energy", "profiles")
HOLDS = key("energy", "holds")


def last_sent_setpoints() -> dict[str, dict[str, Any]]:
    return {k: json.loads(v) for k, v in redis_client().hgetall(SENT).items()}


def record_sent(entries: dict[str, dict[str, Any]]) -> None:
    if entries:
        redis_client().hset(SENT, mapping={k: json.dumps(v) for k, v in entries.items()})


# Setpoints remembered per session, with when each was sent and accepted.
HISTORY_LENGTH = 8


def with_history(
    entry: dict[str, Any],
    previous: dict[str, Any] | None,
    *,
    sent_at_s: float,
    accepted_at_s: float,
) -> dict[str, Any]:
    """``entry`` (just accepted) with the session's recent setpoints appended.

    ``history`` holds ``[setpoint_a, sent_at_s, accepted_at_s]`` items, oldest
    first; a renewal of the same value keeps the older item, since the station
    was already on that value. ``history_complete`` stays true while nothing
    was dropped, i.e. while the first item is the session's first setpoint.
    """
    same_tx = previous is not None and previous.get("transaction_id") == entry["transaction_id"]
    history = list(previous.get("history") or []) if same_tx else []
    complete = bool(previous.get("history_complete", True)) if same_tx else True
    if not history or history[-1][0] != entry["setpoint_a"]:
        history.append([entry["setpoint_a"], sent_at_s, accepted_at_s])
    if len(history) > HISTORY_LENGTH:
        history, complete = history[-HISTORY_LENGTH:], False
    return {**entry, "history": history, "history_complete": complete}


def setpoint_in_force_a(
    entry: dict[str, Any], read_from_s: float, read_to_s: float, *, first_before_a: float
) -> float | None:
    """The lowest setpoint a session's station may have been on while meters were read."""
    return lowest_in_force_a(
        entry.get("history") or [],
        read_from_s,
        read_to_s,
        first_before_a=first_before_a,
        history_complete=bool(entry.get("history_complete", True)),
    )


def ranking() -> Ranking | None:
    raw = redis_client().get(RANKING)
    return Ranking.from_dict(json.loads(raw)) if raw else None


def save_results(
    ranking_: Ranking, sessions: dict[str, dict[str, Any]], zones: dict[int, dict[str, Any]]
) -> None:
    """Store what the UI and API show; replaces the previous allocation as a whole."""
    pipe = redis_client().pipeline()
    pipe.set(RANKING, json.dumps(ranking_.as_dict()))
    pipe.delete(SESSIONS, ZONES)
    if sessions:
        pipe.hset(SESSIONS, mapping={k: json.dumps(v) for k, v in sessions.items()})
    if zones:
        pipe.hset(ZONES, mapping={str(k): json.dumps(v) for k, v in zones.items()})
    pipe.execute()


# A held meter level this far above the reading is a hold, not rounding (0.1 A steps).
HOLD_TOLERANCE_A = 0.05


def held_since_s(
    previous: dict[str, Any] | None,
    held_meter_a: tuple[float, float, float] | None,
    meter_a: tuple[float, float, float] | None,
    now_s: float,
) -> float | None:
    """Since when a zone's estimate of other loads is held above its meter (None: it is not).

    The allocator holds back a fall of the meter that EV dips could explain;
    the snapshot ends the hold once the stations had time to show a dip in a
    sample (:func:`apps.energy.snapshot.build_zones`), counted from here.
    """
    if held_meter_a is None or meter_a is None:
        return None
    if not any(h > m + HOLD_TOLERANCE_A for h, m in zip(held_meter_a, meter_a, strict=True)):
        return None
    since_s = (previous or {}).get("held_since_s")
    return float(since_s) if since_s is not None else now_s


def mark_holds(
    holds: list[tuple[int, float]], after_sample_id: int, stations: dict[str, int] | None = None
) -> None:
    """Samples stored after ``after_sample_id`` were taken after these dip holds began.

    ``stations`` holds earlier marks of stations that answered the request for
    a sample (by identity).
    """
    if holds:
        mark = {"after_sample_id": after_sample_id, "stations": stations or {}}
        redis_client().hset(
            HOLDS,
            mapping={
                str(zone_id): json.dumps({"since_s": since_s, **mark}) for zone_id, since_s in holds
            },
        )


def hold_marks() -> dict[int, dict[str, Any]]:
    return {int(k): json.loads(v) for k, v in redis_client().hgetall(HOLDS).items()}


def session_results() -> dict[str, dict[str, Any]]:
    return {k: json.loads(v) for k, v in redis_client().hgetall(SESSIONS).items()}


def zone_results() -> dict[int, dict[str, Any]]:
    return {int(k): json.loads(v) for k, v in redis_client().hgetall(ZONES).items()}


def connector_profiles() -> dict[str, ConnectorProfiles | dict[str, Any]]:
    """What each connector's station may hold (see ``allocator.envelope``).

    A connector whose station has just connected is a dict ``{"unknown": True,
    "fallback_attempt_a": …, "live_attempt_a": …}``: its profiles may be
    anything until one is confirmed; an absent connector is unknown too.
    """
    result: dict[str, ConnectorProfiles | dict[str, Any]] = {}
    for k, v in redis_client().hgetall(PROFILES).items():
        data = json.loads(v)
        result[k] = data if data.get("unknown") else ConnectorProfiles.from_dict(data)
    return result


_SAVE_PROFILES = """
for i = 2, #ARGV, 2 do
    local current = redis.call('HGET', KEYS[1], ARGV[i])
    local skip = false
    if current then
        local data = cjson.decode(current)
        if data['unknown'] and tonumber(data['since_s'] or 0) > tonumber(ARGV[1]) then
            skip = true
        end
    end
    if not skip then
        redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    end
end
return 0
"""


def save_profiles(entries: dict[str, ConnectorProfiles], *, since_s: float) -> None:
    """Record what the connectors may hold, as a run that started at ``since_s`` saw it.

    A station that connected again after ``since_s`` may have lost or kept
    anything meanwhile: its "unknown" mark wins over what the run recorded.
    """
    if not entries:
        return
    args: list[Any] = [since_s]
    for k, v in entries.items():
        args.extend([k, json.dumps(v.as_dict())])
    redis_client().eval(_SAVE_PROFILES, 1, PROFILES, *args)


def forget_station(identity: str, connector_ids: list[int] | tuple[int, ...] = ()) -> None:
    """A station that (re)connects may have lost its profiles, or kept them: nobody knows.

    Its connectors count at their maximum until a profile is confirmed again
    (what evce last asked of them is kept, to ask it again), and everything is
    sent again. ``connector_ids`` names connectors that may have no record yet.
    """
    prefix = f"{identity}/"
    client = redis_client()
    keys = [k for k in client.hkeys(SENT) if k.startswith(prefix)]
    if keys:
        client.hdel(SENT, *keys)
    stored = {k: json.loads(v) for k, v in client.hgetall(PROFILES).items() if k.startswith(prefix)}
    for connector_id in connector_ids:
        stored.setdefault(f"{prefix}{connector_id}", {"unknown": True})
    unknown = {}
    for k, data in stored.items():
        if data.get("unknown"):
            attempts = (data.get("fallback_attempt_a"), data.get("live_attempt_a"))
        else:
            profiles = ConnectorProfiles.from_dict(data)
            attempts = (
                profiles.fallback.attempt_a,
                None if profiles.live is None else profiles.live.attempt_a,
            )
        unknown[k] = json.dumps(
            {
                "unknown": True,
                "since_s": time.time(),
                "fallback_attempt_a": attempts[0],
                "live_attempt_a": attempts[1],
            }
        )
    if unknown:
        client.hset(PROFILES, mapping=unknown)


def reset() -> None:
    """Forget what was sent and any pending run: after a start every profile is sent again.

    Cheap and safe (stations simply receive their current setpoints once more),
    and it keeps a Redis that outlived a database reset from holding records
    of transactions that no longer exist.
    """
    from apps.energy.services import DIRTY, LOCK, QUEUED

    redis_client().delete(SENT, PROFILES, SESSIONS, ZONES, HOLDS, RANKING, DIRTY, QUEUED, LOCK)


RUNS = key("energy", "runs")


def run_record(duration_s: float) -> None:
    """Count a control-loop run and its duration (``/metrics``); never fails the run."""
    try:
        pipe = redis_client().pipeline()
        pipe.hincrby(RUNS, "count", 1)
        pipe.hincrbyfloat(RUNS, "duration_s_sum", duration_s)
        pipe.hset(RUNS, "last_duration_s", duration_s)
        pipe.execute()
    except (RedisError, OSError):  # figures for monitoring: not worth a failed run
        return


def run_stats() -> dict[str, float]:
    """``count``, ``duration_s_sum`` and ``last_duration_s`` of the runs so far."""
    return {name: float(value) for name, value in redis_client().hgetall(RUNS).items()}
