"""One run of the control loop: snapshot → allocator → deliver what changed.

Delivery sends only what must change (the allocator's deadband decides), plus
renewals of live profiles whose lease is half gone, plus the fallbacks the
budget needs (``allocator.transition``): within the live setpoint for
sessions, from what is left for idle connectors. Break before make: profiles
that let no connector draw more than it may now go first; the others only as
far as every zone phase holds them with every connector counted at its
envelope, once the first ones are answered. Every outcome (accepted, refused,
unanswered) updates what each connector may draw (``allocator.envelope``);
what a station accepted is also recorded as sent, which the allocator's
deadband compares with. Raises that had to wait are looked at again when the
capacity they wait for is released (the EV response time after a decrease).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from apps.central_system import command_loop, commands, hotstate
from apps.central_system.services import last_sample_id
from apps.devicelog.models import EventCategory, EventLevel
from apps.devicelog.services import device_log_write
from apps.energy import profiles, state
from apps.energy.allocator import Allocation, Reason, SessionAllocation, allocate
from apps.energy.allocator.envelope import Slot
from apps.energy.allocator.transition import (
    Budgeted,
    HeldConnector,
    IdleConnector,
    Raise,
    admit_raises,
    plan_changes,
    raises_envelope,
)
from apps.energy.allocator.units import current_to_power_w
from apps.energy.snapshot import ConnectorRef, SnapshotContext, build_snapshot
from apps.meters.services import meters_allocation_basis_set
from apps.stations.models import Connector, Transaction

logger = logging.getLogger(__name__)

DELIVERY_TIMEOUT_S = 10.0


@dataclass
class Delivery:
    """One SetChargingProfile to send, and what to record when it is answered.

    ``value_a`` is the current per phase the profile lets the connector draw
    (the DC power converted); ``raises_envelope`` marks a profile that would
    let the connector draw more than it may now: those wait for the budget
    (see ``allocator.transition``). ``raises`` marks an AC setpoint above the
    previous one (its EV then ramps up; a sample is asked for afterwards).
    """

    ref: ConnectorRef
    payload: dict
    kind: str  # "live" | "fallback" | "clear_live"
    value_a: float = 0.0
    action: str = "SetChargingProfile"
    sent_entry: dict = field(default_factory=dict)
    raises_envelope: bool = False
    raises: bool = False
    previous_entry: dict | None = None
    valid_until_s: float | None = None
    sent_at_s: float = 0.0
    answered_at_s: float = 0.0
    priority: int = 0
    floor_a: float = 0.0
    settled_a: float = 0.0


@dataclass
class RebalanceOutcome:
    sessions: int
    sent: int
    accepted: int
    failed: int
    allocation: Allocation
    deferred: int = 0
    fenced: bool = False


class RunFenced(Exception):
    """The run lost its claim on the control loop: another run may be delivering."""


def lease_s() -> float:
    return float(getattr(settings, "SETPOINT_LEASE_S", 120))


def response_s() -> float:
    return float(getattr(settings, "EV_RESPONSE_S", 5))


def rebalance_once(
    *,
    now: datetime | None = None,
    capacity_changed: bool = False,
    fence: Callable[[], bool] | None = None,
) -> RebalanceOutcome:
    """Allocate every connector and deliver, safely, the profiles that must change.

    ``fence`` is asked before each wave of profiles; once it answers false the
    run delivers nothing more (another run holds the control loop now).
    """
    now = now or timezone.now()
    started = time.perf_counter()
    context = build_snapshot(now=now, capacity_changed=capacity_changed)
    # What this run goes by, recorded before it delivers: a reading taken while
    # its profiles are on their way is the same situation, not a new one (a
    # run then would count EVs at setpoints they have not followed yet).
    meters_allocation_basis_set(context.meter_readings)
    snapshot_done = time.perf_counter()
    allocation = allocate(context.snapshot)
    allocated = time.perf_counter()
    previous_sessions = state.session_results()
    deliveries = _plan_deliveries(context, allocation)
    run = _Run(context, allocation, fence)
    try:
        run.deliver(deliveries)
    except RunFenced:
        logger.warning("Re-allocation superseded by a newer run: delivery stopped.")
    delivered = time.perf_counter()
    run.save()
    if run.delivered:
        logger.info(
            "Re-allocation: %d sessions, %d profiles sent (%d accepted, %d waiting); "
            "snapshot %.0f ms, allocation %.0f ms, delivery %.0f ms",
            len(allocation.sessions),
            len(run.delivered),
            run.accepted,
            len(run.deferred),
            1000 * (snapshot_done - started),
            1000 * (allocated - snapshot_done),
            1000 * (delivered - allocated),
        )
    _ask_for_samples_after_ramp(run.delivered, run.results)
    _store_results(context, allocation, run.status_by_key())
    _look_again_after_holds(context)
    _log_changes(context, allocation, previous_sessions, context.previous_zones)
    _update_transactions(context, allocation)
    return RebalanceOutcome(
        sessions=len(allocation.sessions),
        sent=len(run.delivered),
        accepted=run.accepted,
        failed=len(run.delivered) - run.accepted,
        allocation=allocation,
        deferred=len(run.deferred),
        fenced=run.fenced,
    )


class _Run:
    """Delivery of one allocation: break before make, every outcome recorded."""

    def __init__(
        self, context: SnapshotContext, allocation: Allocation, fence: Callable[[], bool] | None
    ) -> None:
        self.context = context
        self.allocation = allocation
        self.fence = fence
        self.profiles = dict(context.profiles)
        self.changed: set[str] = set()
        self.sent: dict[str, dict] = {}  # live setpoints accepted in the current wave
        self.delivered: list[Delivery] = []
        self.results: list[str] = []
        self.deferred: list[Delivery] = []
        self.accepted = 0
        self.fenced = False
        self.started_s = context.profiles_read_at_s or time.time()

    def deliver(self, deliveries: list[Delivery]) -> None:
        now_s = time.time()
        for delivery in deliveries:
            key = delivery.ref.key
            settled_a = self.profiles[key].settled_a(now_s, self.context.transaction_ids.get(key))
            delivery.raises_envelope = raises_envelope(delivery.value_a, settled_a)
            delivery.settled_a = settled_a
        # Break: everything that lets no connector draw more goes at once.
        self._wave([d for d in deliveries if not d.raises_envelope])
        # Make: raises, as far as the budget allows once those are answered.
        raises = [d for d in deliveries if d.raises_envelope]
        if not raises:
            return
        granted = admit_raises(
            self.context.snapshot.zones,
            {zone.zone_id: zone.available_a for zone in self.allocation.zones},
            self._budgeted(time.time()),
            [
                Raise(d.ref.key, d.value_a, d.floor_a, d.priority, d.kind, d.settled_a)
                for d in raises
            ],
        )
        wave = []
        for delivery in raises:
            value_a = granted.get((delivery.ref.key, delivery.kind))
            if value_a is None:
                self.deferred.append(delivery)
                continue
            if value_a != delivery.value_a:
                partial = _with_value(delivery, value_a)
                if partial is None:
                    self.deferred.append(delivery)
                    continue
                self.deferred.append(delivery)
                delivery = partial
            wave.append(delivery)
        self._wave(wave)
        if self.deferred:
            self._look_again_when_released()

    def _wave(self, wave: list[Delivery]) -> None:
        if not wave:
            return
        if self.fence is not None and not self.fence():
            self.fenced = True
            raise RunFenced
        at_s = time.time()
        for delivery in wave:
            self._update(delivery, lambda slot, d=delivery: slot.sending(d.value_a, at_s=at_s))
        self.save()  # a value being sent counts from now on, even if this process dies
        results = command_loop.run(_deliver_wave(wave))
        for delivery, result in zip(wave, results, strict=True):
            self._record(delivery, result)
        state.record_sent(self.sent)  # one write per wave, not one per station
        self.sent = {}
        self.delivered.extend(wave)
        self.results.extend(results)

    def _record(self, delivery: Delivery, result: str) -> None:
        value_a = delivery.value_a
        if delivery.kind == "clear_live":
            if result in ("Accepted", "Unknown"):  # Unknown: there was nothing to clear
                self.accepted += 1
                key = delivery.ref.key
                self.profiles[key] = replace(
                    self.profiles[key], live=None, live_transaction_id=None, live_valid_until_s=None
                )
                self.changed.add(key)
            else:
                self._update(delivery, lambda slot: slot.unanswered(value_a))
            return
        if result == "Accepted":
            self.accepted += 1
            self._update(
                delivery,
                lambda slot: slot.accepted(
                    value_a, at_s=delivery.answered_at_s, response_s=response_s()
                ),
                accepted=True,
            )
            if delivery.kind == "live":
                self.sent[delivery.ref.key] = state.with_history(
                    delivery.sent_entry,
                    delivery.previous_entry,
                    sent_at_s=delivery.sent_at_s,
                    accepted_at_s=delivery.answered_at_s,
                )
            return
        before = self._slot(delivery)
        if result.startswith("error"):
            self._update(delivery, lambda slot: slot.unanswered(value_a))
        else:
            self._update(delivery, lambda slot: slot.refused(value_a))
        if before is None or not (before.held and before.attempt_a == value_a):
            device_log_write(
                category=EventCategory.LOAD_MANAGEMENT,
                level=EventLevel.WARNING,
                event="profile_refused",
                message=(
                    f"{delivery.ref.key}: {delivery.kind} profile of {value_a} A not applied "
                    f"({result}); counted at what the station may still draw."
                ),
                station_identity=delivery.ref.identity,
                data={"payload": delivery.payload, "result": result},
            )

    def _slot(self, delivery: Delivery) -> Slot | None:
        profiles = self.profiles[delivery.ref.key]
        if delivery.kind == "fallback":
            return profiles.fallback
        if delivery.kind == "clear_live":
            return profiles.live
        return profiles.live_for(delivery.ref.transaction_id, time.time())

    def _update(
        self, delivery: Delivery, change: Callable[[Slot], Slot], *, accepted: bool = False
    ) -> None:
        key = delivery.ref.key
        profiles = self.profiles[key]
        if delivery.kind == "fallback":
            profiles = replace(profiles, fallback=change(profiles.fallback))
        elif delivery.kind == "clear_live":
            if profiles.live is not None:
                profiles = replace(profiles, live=change(profiles.live))
        else:
            transaction_id = delivery.ref.transaction_id
            live = profiles.live_for(transaction_id, time.time())
            if live is None:  # a first profile for this transaction: the old one is void
                profiles = replace(
                    profiles,
                    live=Slot(),
                    live_transaction_id=transaction_id,
                    live_valid_until_s=None,
                )
                live = Slot()
            profiles = replace(
                profiles,
                live=change(live),
                # An unknown live profile may belong to any transaction until one is accepted.
                live_transaction_id=transaction_id if accepted else profiles.live_transaction_id,
                live_valid_until_s=(
                    delivery.valid_until_s
                    if accepted
                    else _later(profiles.live_valid_until_s, delivery.valid_until_s)
                ),
            )
        self.profiles[key] = profiles
        self.changed.add(key)

    def _envelope_a(self, key: str, now_s: float) -> float:
        return self.profiles[key].envelope_a(now_s, self.context.transaction_ids.get(key))

    def _budgeted(self, now_s: float) -> list[Budgeted]:
        """Every installed connector at its envelope, on the phases the allocation counts."""
        phases_of = {
            item.key: tuple(int(phase) - 1 for phase in item.phases)
            for item in self.allocation.sessions
        }
        budgeted = []
        for key in self.context.installed_connectors:
            connector = self.context.connectors[key]
            budgeted.append(
                Budgeted(
                    key,
                    connector.zone_id,
                    phases_of.get(key, tuple(sorted(connector.wiring.building_phases))),
                    self._envelope_a(key, now_s),
                )
            )
        return budgeted

    def _look_again_when_released(self) -> None:
        """Raises that had to wait are looked at again once the budget frees itself."""
        now_s = time.time()
        releases = [
            at_s
            for key in self.profiles
            if (
                at_s := self.profiles[key].released_at(now_s, self.context.transaction_ids.get(key))
            )
            is not None
        ]
        if not releases:
            return  # nothing frees itself: the next event or tick looks again
        delay_s = max(0.1, min(releases) - now_s + 0.05)
        command_loop.run_later(delay_s, _request_again)

    def save(self) -> None:
        if self.changed:
            state.save_profiles(
                {key: self.profiles[key] for key in self.changed}, since_s=self.started_s
            )
            self.changed.clear()

    def status_by_key(self) -> dict[str, str]:
        status = {
            d.ref.key: r
            for d, r in zip(self.delivered, self.results, strict=True)
            if d.kind == "live"
        }
        for delivery in self.deferred:
            if delivery.kind == "live" and delivery.ref.key not in status:
                status[delivery.ref.key] = "waiting for released capacity"
        return status


def _later(first: float | None, second: float | None) -> float | None:
    values = [v for v in (first, second) if v is not None]
    return max(values) if values else None


async def _request_again() -> None:
    from asgiref.sync import sync_to_async

    from apps.energy.services import rebalance_request

    await sync_to_async(rebalance_request, thread_sensitive=False)(reason="released")


def _with_value(delivery: Delivery, value_a: float) -> Delivery | None:
    """``delivery`` for a lower value (a partial raise); DC and fallbacks are sent whole."""
    if delivery.kind != "live" or delivery.ref.current_type != "AC":
        return None
    entry = {**delivery.sent_entry, "setpoint_a": value_a}
    payload = profiles.live_profile(
        delivery.ref.connector_id,
        transaction_id=delivery.ref.transaction_id,
        current_a=value_a,
        power_w=None,
        now_s=entry["at_s"],
        valid_until_s=entry["valid_until_s"],
    )
    return replace(delivery, payload=payload, value_a=value_a, sent_entry=entry)


def _dc_power_w(ref: ConnectorRef, context: SnapshotContext, current_a: float) -> float | None:
    if ref.current_type != "DC":
        return None
    connector = context.connectors[ref.key]
    phase_count = len(connector.wiring.building_phases)
    voltage_v = context.snapshot.settings.nominal_voltage_v
    return float(math.floor(current_to_power_w(current_a, phase_count, voltage_v)))


def _fallback_delivery(
    context: SnapshotContext, ref: ConnectorRef, current_a: float, now_s: float
) -> Delivery:
    offline_a = context.offline_a[ref.key]
    power_w = (
        context.offline_w.get(ref.key)
        if current_a == offline_a
        else _dc_power_w(ref, context, current_a)
    )
    connector = context.connectors[ref.key]
    return Delivery(
        ref=ref,
        kind="fallback",
        value_a=current_a,
        payload=profiles.fallback_profile(ref.connector_id, current_a=current_a, power_w=power_w),
        priority=10**6,
        floor_a=context.snapshot.settings.floor_a(len(connector.wiring.building_phases)),
        sent_at_s=now_s,
    )


def _live_delivery(
    context: SnapshotContext,
    ref: ConnectorRef,
    *,
    setpoint_a: float,
    setpoint_w: float | None,
    reason: str,
    idle_since_s: float | None,
    last: dict,
    now_s: float,
    priority: int,
    floor_a: float,
) -> Delivery:
    valid_until_s = now_s + lease_s()
    same_tx = last.get("transaction_id") == ref.transaction_id
    before_a = float(last.get("setpoint_a") or 0) if same_tx else context.offline_a[ref.key]
    return Delivery(
        ref=ref,
        kind="live",
        value_a=setpoint_a,
        raises=ref.current_type == "AC" and setpoint_a > before_a,
        previous_entry=last or None,
        valid_until_s=valid_until_s,
        priority=priority,
        floor_a=floor_a,
        payload=profiles.live_profile(
            ref.connector_id,
            transaction_id=ref.transaction_id,
            current_a=setpoint_a,
            power_w=setpoint_w,
            now_s=now_s,
            valid_until_s=valid_until_s,
        ),
        sent_entry={
            "transaction_id": ref.transaction_id,
            "setpoint_a": setpoint_a,
            "setpoint_w": setpoint_w,
            "reason": reason,
            "at_s": now_s,
            "valid_until_s": valid_until_s,
            "idle_since_s": idle_since_s,
        },
    )


def _plan_deliveries(context: SnapshotContext, allocation: Allocation) -> list[Delivery]:
    """Every profile this allocation needs (see ``allocator.transition.plan_changes``)."""
    now_s = allocation.now_s
    sent = state.last_sent_setpoints()
    due = []
    for item in allocation.sessions:
        ref = context.refs[item.key]
        last = sent.get(item.key) or {}
        renew = last.get("transaction_id") != ref.transaction_id or (
            float(last.get("valid_until_s") or 0) - now_s < lease_s() / 2
        )
        if item.changed or renew:
            due.append(item.key)
    floor_of = {}
    idle = []
    for key in context.idle:
        connector = context.connectors[key]
        phases = tuple(sorted(connector.wiring.building_phases))
        floor_of[key] = context.snapshot.settings.floor_a(len(phases))
        idle.append(
            IdleConnector(
                key,
                connector.zone_id,
                phases,
                context.offline_a[key],
                floor_of[key],
                context.profiles[key].fallback.confirmed_a,
            )
        )
    held = []
    wanted_of_held = _wanted_of_held(context)
    for key, ref in context.held.items():
        profiles_ = context.profiles[key]
        fallback = profiles_.fallback
        fallback_a = live_a = None
        if fallback.held and _due(fallback, now_s):
            wanted_a = fallback.attempt_a if fallback.attempt_a is not None else 0.0
            fallback_a = min(wanted_a, context.offline_a[key])
        live = profiles_.live_for(ref.transaction_id, now_s)
        clear_live = False
        if live is not None and live.held and _due(live, now_s):
            if ref.transaction_id is not None:
                live_a = live.attempt_a if live.attempt_a is not None else 0.0
            else:
                clear_live = True
        wanted_a = wanted_of_held.get(key)
        if wanted_a is not None and ref.transaction_id is not None:
            # Asking for less is always safe, and it is what the zone may need now
            # (the building rose, others arrived): at once, not at the next retry.
            asked_a = live_a if live_a is not None else _asked_a(live, profiles_, now_s)
            if wanted_a < asked_a:
                live_a = wanted_a
        held.append(HeldConnector(key, fallback_a, live_a, clear_live))
    changes = plan_changes(
        context.snapshot.zones,
        allocation,
        live_due=due,
        idle=idle,
        session_fallbacks={
            key: (context.profiles[key].fallback.confirmed_a, context.offline_a[key])
            for key in context.refs
        },
        held=held,
        deadband_a=context.snapshot.settings.deadband_a,
        floor_of=floor_of,
    )
    by_key = {item.key: item for item in allocation.sessions}
    deliveries = []
    for change in changes:
        if change.kind == "clear_live":
            ref = context.held[change.key]
            deliveries.append(
                Delivery(
                    ref=ref,
                    kind="clear_live",
                    action="ClearChargingProfile",
                    payload={
                        "connectorId": ref.connector_id,
                        "chargingProfilePurpose": "TxProfile",
                    },
                    priority=change.priority,
                )
            )
            continue
        if change.kind == "fallback":
            delivery = _fallback_delivery(
                context, context.installed_connectors[change.key], change.value_a, now_s
            )
            deliveries.append(replace(delivery, priority=change.priority, floor_a=change.floor_a))
            continue
        item = by_key.get(change.key)
        ref = context.refs.get(change.key) or context.held[change.key]
        deliveries.append(
            _live_delivery(
                context,
                ref,
                setpoint_a=change.value_a,
                setpoint_w=(
                    item.setpoint_w
                    if item is not None and not change.held
                    else _dc_power_w(ref, context, change.value_a)
                ),
                reason=Reason.HELD.value if change.held else by_key[change.key].reason.value,
                idle_since_s=None if item is None else item.idle_since_s,
                last=sent.get(change.key) or {},
                now_s=now_s,
                priority=change.priority,
                floor_a=change.floor_a,
            )
        )
    return deliveries


RETRY_S = 10.0
"""How often a profile a station refused or left unanswered is asked again."""


def _wanted_of_held(context: SnapshotContext) -> dict[str, float]:
    """What each held session would get if its station followed evce.

    An allocation of the same site with those sessions in it instead of their
    reserves; nothing of it is sent or stored but what is asked of them.
    """
    if not context.held_sessions:
        return {}
    snapshot = context.snapshot
    keys = set(context.held_sessions)
    shadow = allocate(
        replace(
            snapshot,
            sessions=(*snapshot.sessions, *context.held_sessions.values()),
            reserves=tuple(r for r in snapshot.reserves if r.key not in keys),
        )
    )
    return {item.key: item.setpoint_a for item in shadow.sessions if item.key in keys}


def _asked_a(live: Slot | None, profiles_, now_s: float) -> float:
    """The least a held session was asked for last: its live attempt, else its envelope."""
    if live is not None and live.attempt_a is not None:
        return live.attempt_a
    return profiles_.envelope_a(now_s, None) if live is None else live.at(now_s)


def _due(slot: Slot, now_s: float) -> bool:
    return slot.attempt_at_s is None or now_s - slot.attempt_at_s >= RETRY_S


async def _deliver_wave(wave: list[Delivery]) -> list[str]:
    sent_at_s = time.time()  # before any station can have applied its profile
    outcomes = await commands.call_many(
        [(d.ref.identity, d.action, d.payload) for d in wave],
        timeout_s=DELIVERY_TIMEOUT_S,
    )

    async def result_of(delivery: Delivery, outcome: commands.Outcome) -> str:
        delivery.sent_at_s, delivery.answered_at_s = sent_at_s, outcome.at_s
        if isinstance(outcome.result, Exception):
            return f"error: {outcome.result}"
        status = str(outcome.result.get("status", "Unknown"))
        if (
            status != "Accepted"
            and delivery.kind == "live"
            and delivery.action == "SetChargingProfile"
        ):
            status = await _retry_as_station_max(delivery, status)
            delivery.answered_at_s = time.time()
        return status

    return list(
        await asyncio.gather(
            *(result_of(d, outcome) for d, outcome in zip(wave, outcomes, strict=True))
        )
    )


async def _retry_as_station_max(delivery: Delivery, status: str) -> str:
    """A station that refuses TxProfile may take the setpoint as a station maximum."""

    count = await Connector.objects.filter(station_id=delivery.ref.station_id).acount()
    if count != 1:
        return status
    entry = delivery.sent_entry
    payload = profiles.station_max_profile(
        current_a=entry["setpoint_a"],
        power_w=entry["setpoint_w"],
        now_s=entry["at_s"],
        valid_until_s=entry["valid_until_s"],
    )
    try:
        answer = await commands.call(
            delivery.ref.identity, "SetChargingProfile", payload, timeout_s=DELIVERY_TIMEOUT_S
        )
    except commands.CommandError as exc:
        return f"error: {exc}"
    return (
        "Accepted"
        if answer.get("status") == "Accepted"
        else f"{status} (TxProfile and ChargePointMaxProfile)"
    )


def _ask_for_samples_after_ramp(deliveries: list[Delivery], results: list[str]) -> None:
    """Ask stations whose setpoint went up for a sample once their EV had time to follow.

    Until a sample shows the EV on its new setpoint, its ramp is an estimate
    (see :func:`apps.energy.snapshot.ramping_to_a`); waiting for the periodic
    sample would leave that estimate standing for up to a sample interval.
    """
    raised = [
        d.ref
        for d, result in zip(deliveries, results, strict=True)
        if d.kind == "live" and d.raises and result == "Accepted"
    ]
    if raised:
        command_loop.run_later(float(settings.EV_RAMP_S), lambda: ask_for_samples(raised))


async def ask_for_samples(refs: list[ConnectorRef]) -> None:
    """TriggerMessage MeterValues to each connector; a station that cannot is left alone."""
    outcomes = await commands.call_many(
        [
            (ref.identity, *commands.trigger_message("MeterValues", connector_id=ref.connector_id))
            for ref in refs
        ],
        timeout_s=DELIVERY_TIMEOUT_S,
    )
    for ref, outcome in zip(refs, outcomes, strict=True):
        if isinstance(outcome.result, Exception):
            logger.debug("No sample asked of %s: %s", ref.key, outcome.result)


def _store_results(
    context: SnapshotContext, allocation: Allocation, results_by_key: dict[str, str]
) -> None:
    sessions = {
        item.key: {
            "station_id": context.refs[item.key].station_id,
            "transaction_id": context.refs[item.key].transaction_id,
            "setpoint_a": item.setpoint_a,
            "setpoint_w": item.setpoint_w,
            "reason": item.reason.value,
            "limiting_zone_id": item.limiting_zone_id,
            "limiting_phase": int(item.limiting_phase) if item.limiting_phase else None,
            "phases": [int(p) for p in item.phases],
            "rank": item.rank,
            "vip": item.vip,
            "delivery": results_by_key.get(item.key),
        }
        for item in allocation.sessions
    }
    now_s = allocation.now_s
    for key, ref in context.held.items():
        if ref.transaction_id is None:
            continue
        profiles_ = context.profiles[key]
        live = profiles_.live_for(ref.transaction_id, now_s)
        sessions[key] = {
            "station_id": ref.station_id,
            "transaction_id": ref.transaction_id,
            # What the station may draw, not what evce asked of it.
            "setpoint_a": profiles_.envelope_a(now_s, ref.transaction_id),
            "setpoint_w": None,
            "reason": Reason.HELD.value,
            "limiting_zone_id": None,
            "limiting_phase": None,
            "phases": [p + 1 for p in sorted(context.connectors[key].wiring.building_phases)],
            "rank": None,
            "vip": False,
            "wanted_a": None if live is None else live.attempt_a,
            "delivery": results_by_key.get(key),
        }
    inputs = {zone.zone_id: zone for zone in context.snapshot.zones}
    zones = {
        zone.zone_id: {
            "limit_a": zone.limit_a,
            "reduction_percent": zone.reduction_percent,
            "meter_lost": zone.meter_lost,
            "production_lost": zone.production_lost,
            "other_loads_a": zone.other_loads_a,
            "held_meter_current_a": zone.held_meter_current_a,
            # Where a ramp hold may start from: the last estimate made with no ramp.
            **_ramp_free(zone, context.previous_zones.get(zone.zone_id), allocation.now_s),
            **_dip_hold(
                context,
                zone.zone_id,
                state.held_since_s(
                    context.previous_zones.get(zone.zone_id),
                    zone.held_meter_current_a,
                    inputs[zone.zone_id].meter_current_a,
                    allocation.now_s,
                ),
            ),
            "production_a": zone.production_a,
            "grid_available_a": zone.grid_available_a,
            "available_a": zone.available_a,
            "reserved_a": zone.reserved_a,
            "allocated_a": zone.allocated_a,
            "headroom_a": zone.headroom_a,
            "session_count": zone.session_count,
            "charging_count": zone.charging_count,
            "reductions": [
                {
                    "source": r.source,
                    "percent": r.percent,
                    "current_a": r.current_a,
                    "description": r.description,
                    "valid_until": r.valid_until.isoformat() if r.valid_until else None,
                }
                for r in context.reductions.get(zone.zone_id, [])
            ],
            "at_s": allocation.now_s,
        }
        for zone in allocation.zones
    }
    state.save_results(allocation.ranking, sessions, zones)


def _dip_hold(context: SnapshotContext, zone_id: int, since_s: float | None) -> dict:
    """A zone's dip hold: since when.

    A fall of the meter that EV dips could explain is held back until every
    session below the zone has sent a sample taken after it began. When a
    hold begins, those stations are asked for a sample at once and the
    control loop looks again shortly, and again when the hold expires by
    itself, so that a building load that really fell is given to the EVs in
    seconds.
    """
    if since_s is None:
        return {"held_since_s": None}
    before = context.previous_zones.get(zone_id) or {}
    if before.get("held_since_s") != since_s:
        context.holds_begun.append((zone_id, since_s))
    return {"held_since_s": since_s}


def _look_again_after_holds(context: SnapshotContext) -> None:
    """Ask the sessions under newly held zones for samples; look again once they may be in."""
    if not context.holds_begun:
        return
    held = {zone_id for zone_id, _since_s in context.holds_begun}
    refs = [
        ref
        for key, ref in context.refs.items()
        if set(context.zone_chains.get(context.connectors[key].zone_id, ())) & held
    ]
    holds = list(context.holds_begun)
    command_loop.run_later(0.0, lambda: _ask_for_samples_after_dip(refs, holds))
    command_loop.run_later(SAMPLE_WAIT_S, _request_again)
    command_loop.run_later(context.dip_hold_s + 0.1, _request_again)


async def _ask_for_samples_after_dip(
    refs: list[ConnectorRef], holds: list[tuple[int, float]]
) -> None:
    """Ask for samples, then mark which samples are sure to be taken after the holds began.

    A sample merely stored after a hold began may have been on its way, taken
    before the dip it should show. A station that accepted the request has a
    mark of its own (see ``central_system.hotstate.mark_samples_asked``); for
    the others, a sample stored once every station answered (or the wait for
    it ended) counts.
    """
    before_id = await sync_to_async(last_sample_id)()
    if refs:
        await ask_for_samples(refs)
    last_id = await sync_to_async(last_sample_id)()
    # Stations that answered are marked by their consumer at the answer (a mark
    # older than the request is another request's).
    marks = await sync_to_async(hotstate.samples_asked_marks)(sorted({r.identity for r in refs}))
    state.mark_holds(holds, last_id, {i: m for i, m in marks.items() if m >= before_id})


SAMPLE_WAIT_S = 2.0
"""How long a triggered sample takes to come, with room to spare."""


def _ramp_free(zone, before: dict | None, now_s: float) -> dict:
    """Where a ramp hold may start from, and since when EVs have been ramping."""
    before = before or {}
    if zone.ramping or zone.other_loads_a is None:
        return {
            "ramp_free_other_loads_a": before.get("ramp_free_other_loads_a"),
            "ramp_free_at_s": before.get("ramp_free_at_s"),
            "ramp_started_at_s": before.get("ramp_started_at_s") or now_s,
        }
    return {
        "ramp_free_other_loads_a": zone.other_loads_a,
        "ramp_free_at_s": now_s,
        "ramp_started_at_s": None,
    }


def _describe(item: SessionAllocation) -> str:
    where = (
        f" (zone {item.limiting_zone_id} L{int(item.limiting_phase)})"
        if item.limiting_phase
        else ""
    )
    return f"{item.reason.value}{where}"


def _log_changes(
    context: SnapshotContext, allocation: Allocation, previous_sessions: dict, previous_zones: dict
) -> None:
    """Device-log every change of state a facility manager asks about afterwards."""
    for item in allocation.sessions:
        before = previous_sessions.get(item.key)
        was_suspended = before is not None and before.get("setpoint_a", 0) == 0
        now_suspended = item.setpoint_a == 0
        if (
            before is not None
            and before.get("transaction_id") != context.refs[item.key].transaction_id
        ):
            before, was_suspended = None, False
        if now_suspended and not was_suspended:
            event = (
                "session_idle_suspended" if item.reason is Reason.IDLE_SUSPENDED else "session_shed"
            )
            message = f"{item.key}: suspended by the system ({_describe(item)})."
        elif was_suspended and not now_suspended:
            event, message = (
                "session_resumed",
                f"{item.key}: charging again at {item.setpoint_a} A.",
            )
        else:
            continue
        device_log_write(
            category=EventCategory.LOAD_MANAGEMENT,
            event=event,
            message=message,
            station_identity=context.refs[item.key].identity,
            data={"reason": item.reason.value, "setpoint_a": item.setpoint_a},
        )
    for zone in allocation.zones:
        before = previous_zones.get(zone.zone_id)
        name = context.zone_names.get(zone.zone_id, str(zone.zone_id))
        _log_reduction_changes(name, before, context.reductions.get(zone.zone_id, []))
        was_lost = bool(before and before.get("meter_lost"))
        if zone.meter_lost != was_lost and (before is not None or zone.meter_lost):
            device_log_write(
                category=EventCategory.LOAD_MANAGEMENT,
                level=EventLevel.WARNING if zone.meter_lost else EventLevel.INFO,
                event="degraded_entered" if zone.meter_lost else "degraded_left",
                message=(
                    f"Zone {name} runs on its degraded setpoint: its meter is lost."
                    if zone.meter_lost
                    else f"Zone {name} left degraded mode: its meter answers again."
                ),
                zone_name=name,
                data={"zone_id": zone.zone_id},
            )


def _log_reduction_changes(zone_name: str, before: dict | None, active: list) -> None:
    """Log reductions (TOU, inputs, EBMS) that came into force or ended since the last run."""
    if before is None:
        return
    previous = {r["description"] for r in before.get("reductions", [])}
    current = {r.description for r in active}
    for description in sorted(current - previous):
        device_log_write(
            category=EventCategory.LOAD_MANAGEMENT,
            event="reduction_applied",
            message=f"Zone {zone_name}: {description} applies.",
            zone_name=zone_name,
            data={"reduction": description},
        )
    for description in sorted(previous - current):
        device_log_write(
            category=EventCategory.LOAD_MANAGEMENT,
            event="reduction_ended",
            message=f"Zone {zone_name}: {description} no longer applies.",
            zone_name=zone_name,
            data={"reduction": description},
        )


def _update_transactions(context: SnapshotContext, allocation: Allocation) -> None:
    """Keep the setpoint on the transaction row for the dashboard and the CDR."""
    from decimal import Decimal

    by_tx = {context.refs[item.key].transaction_id: item for item in allocation.sessions}
    rows = list(Transaction.objects.filter(pk__in=by_tx.keys()).only("pk", "setpoint_a"))
    changed = []
    for row in rows:
        value = Decimal(str(round(by_tx[row.pk].setpoint_a, 1)))
        if row.setpoint_a != value:
            row.setpoint_a = value
            changed.append(row)
    if changed:
        Transaction.objects.bulk_update(changed, ["setpoint_a"])
