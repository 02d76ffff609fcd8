"""Entry points of load management: ask for a re-allocation, run it single-flight.

Every trigger (meter reading, OCPP event, configuration or reduction change,
the periodic tick) calls :func:`rebalance_request`. Requests coalesce: a dirty
flag records that the site must be looked at again and at most one task is
queued; :func:`rebalance_run` holds a Redis lock so only one run per site
happens at a time, and loops while the flag is set again during a run. A burst
of 500 MeterValues therefore causes a handful of runs, not 500.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from evce_site.hotstate import key, redis_client

if TYPE_CHECKING:
    from apps.central_system.commands import Command
    from apps.stations.models import Station

logger = logging.getLogger(__name__)

DIRTY = key("energy", "dirty")
QUEUED = key("energy", "queued")
LOCK = key("energy", "lock")
# Reasons the allocator cannot see in its inputs (e.g. a new priority mode): they
# force a re-ranking. Limits, meters, arrivals and departures it detects itself.
CAPACITY_REASONS = frozenset({"config"})
LOCK_TIMEOUT_S = 60
MAX_PASSES = 20


def rebalance_request(*, reason: str) -> None:
    """Ask for a re-allocation soon (cheap; safe to call from any process)."""
    from apps.energy.tasks import rebalance_site_task

    try:
        pipe = redis_client().pipeline()
        pipe.sadd(DIRTY, reason)
        pipe.set(QUEUED, 1, nx=True, ex=LOCK_TIMEOUT_S)
        _added, queued = pipe.execute()
        if queued:
            rebalance_site_task.apply_async(expires=LOCK_TIMEOUT_S, retry=False)
    except (RedisError, KombuError, OSError) as exc:
        # Without Redis the control loop cannot run at all; the periodic tick
        # catches up once it is back. The caller's own work must not fail.
        logger.warning("Re-allocation request (%s) not queued: %s", reason, exc)


def rebalance_run() -> int:
    """Run allocations until no request is pending; return how many ran."""
    from apps.energy.control import rebalance_once

    client = redis_client()
    runs = 0
    while runs < MAX_PASSES:
        lock = client.lock(LOCK, timeout=LOCK_TIMEOUT_S, blocking=False)
        if not lock.acquire():
            return runs  # the holder sees our dirty flag when it loops
        try:
            while runs < MAX_PASSES:
                pipe = client.pipeline()
                pipe.smembers(DIRTY)
                pipe.delete(DIRTY, QUEUED)
                reasons, _deleted = pipe.execute()
                if not reasons:
                    break
                runs += 1
                try:
                    rebalance_once(capacity_changed=bool(CAPACITY_REASONS & set(reasons)))
                except Exception:
                    logger.exception(
                        "Re-allocation failed (reasons: %s)", ", ".join(sorted(reasons))
                    )
                    raise
        finally:
            lock.release()
        # A request that arrived between our last check and the release found
        # the lock held: look once more now that it is free.
        if not client.exists(DIRTY):
            return runs
    return runs


def fallback_commands(station: Station) -> list[Command]:
    """The fallback profiles to install on a station that has just booted.

    Sent right behind the BootNotification answer, before the station can start
    a transaction, so that a car plugged in at once charges at the offline
    current, never at the connector maximum, until its live setpoint arrives.
    They are preceded by a ClearChargingProfile of every TxDefaultProfile (no
    connector id: OCPP 1.6 then clears the matching profiles of every
    connector, connector 0 included): one left by a previous central system at
    a higher stack level would otherwise prevail over evce's fallback.
    """
    from apps.central_system import commands
    from apps.energy import profiles
    from apps.energy.snapshot import station_offline_currents

    try:
        offline = station_offline_currents(station)
    except (RedisError, OSError) as exc:
        # The control loop installs it on its next run; the boot must not fail.
        logger.warning("Fallback profiles of %s not computed: %s", station.identity, exc)
        return []
    fallbacks = [
        commands.Command(
            "SetChargingProfile",
            profiles.fallback_profile(connector_id, current_a=item.current_a, power_w=item.power_w),
        )
        for connector_id, item in sorted(offline.items())
    ]
    if not fallbacks:
        return []  # clearing with nothing to install would leave the connector maximum
    return [commands.clear_charging_profile(purpose="TxDefaultProfile"), *fallbacks]


def station_setpoints(identity: str) -> dict[int, dict]:
    """The latest allocation of a station's connectors (setpoint, reason, delivery result)."""
    from apps.energy import state

    prefix = f"{identity}/"
    return {
        int(key.removeprefix(prefix)): item
        for key, item in state.session_results().items()
        if key.startswith(prefix)
    }
