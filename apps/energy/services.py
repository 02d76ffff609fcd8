"""Entry points of load management: ask for a re-allocation, run it single-flight.

Every trigger (meter reading, OCPP event, configuration or reduction change,
the periodic tick) calls :func:`rebalance_request`. Requests coalesce: a dirty
flag records that the site must be looked at again and at most one task is
queued; :func:`rebalance_run` holds a Redis lock so only one run per site
happens at a time, and loops while the flag is set again during a run. A burst
of 500 MeterValues therefore causes a handful of runs, not 500.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from kombu.exceptions import KombuError
from ocpp.v16.enums import Action, ChargingProfilePurposeType
from redis.exceptions import LockError, RedisError

from apps.central_system import commands
from apps.central_system.commands import Command
from apps.stations.models import Station
from evce_site.hotstate import key, redis_client

logger = logging.getLogger(__name__)

DIRTY = key("energy", "dirty")
QUEUED = key("energy", "queued")
LOCK = key("energy", "lock")
GENERATION = key("energy", "generation")
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
    """Run allocations until no request is pending; return how many ran.

    One run at a time, provably: the lock has a timeout (a dead worker must
    not stop load management), so a slow run may outlive it. Each run takes a
    new generation number with the lock, and before every wave of profiles it
    checks that the number is still the latest and renews the lock; a run that
    lost either delivers nothing more, so an older run's raise can never land
    after a newer run's decrease.
    """
    from apps.energy.control import rebalance_once

    client = redis_client()
    runs = 0
    while runs < MAX_PASSES:
        lock = client.lock(LOCK, timeout=LOCK_TIMEOUT_S, blocking=False)
        if not lock.acquire():
            return runs  # the holder sees our dirty flag when it loops
        generation = client.incr(GENERATION)
        fence = _fence(client, lock, generation)
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
                    outcome = rebalance_once(
                        capacity_changed=bool(CAPACITY_REASONS & set(reasons)), fence=fence
                    )
                except Exception:
                    logger.exception(
                        "Re-allocation failed (reasons: %s)", ", ".join(sorted(reasons))
                    )
                    raise
                if outcome.fenced:
                    return runs
        finally:
            with contextlib.suppress(LockError):
                lock.release()
        # A request that arrived between our last check and the release found
        # the lock held: look once more now that it is free.
        if not client.exists(DIRTY):
            return runs
    return runs


def _fence(client, lock, generation: int) -> Callable[[], bool]:
    """True while this run still holds the control loop (and then renews its lock)."""

    def still_ours() -> bool:
        try:
            if int(client.get(GENERATION) or 0) != generation:
                return False
            lock.extend(LOCK_TIMEOUT_S, replace_ttl=True)
        except (LockError, RedisError):
            return False
        return True

    return still_ours


def fallback_commands(station: Station) -> list[Command]:
    """The fallback profiles to install on a station that has just booted.

    Sent right behind the BootNotification answer, before the station can start
    a transaction, so that a car plugged in at once charges at no more than
    its offline current (or the lower fallback evce last wanted for it), never
    at the connector maximum, until the control loop takes over. Whatever the
    station held before is unknown from here on (it counts at its connectors'
    maximum), and the control loop is asked to run: its profiles reach the
    station after these, so what it records is what the station holds.
    They are preceded by a ClearChargingProfile of every TxDefaultProfile (no
    connector id: OCPP 1.6 then clears the matching profiles of every
    connector, connector 0 included): one left by a previous central system at
    a higher stack level would otherwise prevail over evce's fallback.
    """
    from apps.energy import profiles, state
    from apps.energy.allocator.envelope import ConnectorProfiles
    from apps.energy.snapshot import station_offline_currents

    try:
        offline = station_offline_currents(station)
        stored = state.connector_profiles()
        state.forget_station(station.identity, list(offline))
    except (RedisError, OSError) as exc:
        # The control loop installs it on its next run; the boot must not fail.
        logger.warning("Fallback profiles of %s not computed: %s", station.identity, exc)
        return []
    rebalance_request(reason="station")
    fallbacks = []
    for connector_id, item in sorted(offline.items()):
        raw = stored.get(f"{station.identity}/{connector_id}")
        wanted_a = (
            raw.fallback.attempt_a
            if isinstance(raw, ConnectorProfiles)
            else (raw or {}).get("fallback_attempt_a")
        )
        current_a, power_w = item.current_a, item.power_w
        if wanted_a is not None and wanted_a < current_a:
            current_a = wanted_a
            power_w = None if item.power_w is None else item.power_w * wanted_a / item.current_a
        fallbacks.append(
            commands.Command(
                Action.set_charging_profile,
                profiles.fallback_profile(
                    connector_id,
                    current_a=current_a,
                    power_w=None if power_w is None else float(int(power_w)),
                ),
            )
        )
    if not fallbacks:
        return []  # clearing with nothing to install would leave the connector maximum
    return [
        commands.clear_charging_profile(purpose=ChargingProfilePurposeType.tx_default_profile),
        *fallbacks,
    ]
