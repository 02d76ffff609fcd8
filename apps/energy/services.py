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
import time
from collections.abc import Callable

from kombu.exceptions import KombuError
from ocpp.v16.enums import Action, ChargingProfilePurposeType, ChargingProfileStatus
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
    Each fallback is recorded as being sent (and its answer, when it comes, by
    :func:`boot_fallback_answered`), so the re-allocation that follows the
    boot does not send the same profile a second time.
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
        rebalance_request(reason="station")
        return []  # clearing with nothing to install would leave the connector maximum
    try:
        max_a = _connector_max_a(station)
        state.fallbacks_sending(
            {
                f"{station.identity}/{command.payload['connectorId']}": (
                    _fallback_value_a(offline[command.payload["connectorId"]], command),
                    max_a[command.payload["connectorId"]],
                )
                for command in fallbacks
            },
            at_s=time.time(),
        )
    except (RedisError, OSError) as exc:  # the control loop then sends them again: safe
        logger.warning("Boot fallbacks of %s not recorded: %s", station.identity, exc)
    rebalance_request(reason="station")  # once the fallbacks are recorded as being sent
    return [
        commands.clear_charging_profile(purpose=ChargingProfilePurposeType.tx_default_profile),
        *fallbacks,
    ]


def _fallback_value_a(item, command: Command) -> float:
    """The current per phase a fallback profile lets the connector draw (DC power converted)."""
    schedule = command.payload["csChargingProfiles"]["chargingSchedule"]
    limit = float(schedule["chargingSchedulePeriod"][0]["limit"])
    if schedule["chargingRateUnit"] == "W" and item.power_w:
        return item.current_a * limit / item.power_w
    return limit


def _connector_max_a(station: Station) -> dict[int, float]:
    """The most each connector of ``station`` may draw per phase (its envelope when unknown)."""
    from apps.energy.allocator import Connector as AllocConnector
    from apps.energy.allocator import CurrentType, PhaseWiring
    from apps.energy.snapshot import allocator_settings, connector_max_a
    from apps.siteconfig.models import SiteSettings as SiteSettingsRow

    voltage_v = allocator_settings(SiteSettingsRow.load()).nominal_voltage_v
    return {
        connector.connector_id: connector_max_a(
            AllocConnector(
                key=f"{station.identity}/{connector.connector_id}",
                zone_id=station.zone_id,
                wiring=PhaseWiring(connector.phase_wiring),
                current_type=CurrentType(connector.current_type),
                max_current_a=None
                if connector.max_current_a is None
                else float(connector.max_current_a),
                max_power_w=None if connector.max_power_w is None else float(connector.max_power_w),
                station_id=station.pk,
            ),
            voltage_v,
        )
        for connector in station.connectors.all()
    }


def boot_fallback_answered(
    *, identity: str, payload: dict, outcome: str, status: str | None, answered_at_s: float
) -> None:
    """Record the station's answer to a fallback sent behind its BootNotification.

    Accepted, the connector counts at its fallback from then on; refused or
    unanswered, it stays held and the control loop asks again. Either way the
    control loop looks again.
    """
    from apps.energy import state
    from apps.energy.delivery import response_s

    profile = payload.get("csChargingProfiles") or {}
    if profile.get("chargingProfilePurpose") != ChargingProfilePurposeType.tx_default_profile:
        return
    if outcome == "result":
        result = "accepted" if status == ChargingProfileStatus.accepted else "refused"
    else:
        result = "unanswered"
    try:
        recorded = state.fallback_answered(
            f"{identity}/{payload['connectorId']}",
            result=result,
            at_s=answered_at_s,
            response_s=response_s(),
        )
    except (RedisError, OSError) as exc:
        logger.warning("Boot fallback answer of %s not recorded: %s", identity, exc)
        return
    if recorded:
        rebalance_request(reason="station")
