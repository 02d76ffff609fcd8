"""Delivery of one allocation's profiles to the stations, every outcome recorded.

Break before make: profiles that let no connector draw more than it may now
go first; the others only as far as every zone phase holds them with every
connector counted at its envelope, once the first ones are answered. Every
outcome (accepted, refused, unanswered) updates what each connector may draw
(``allocator.envelope``); what a station accepted is also recorded as sent,
which the allocator's deadband compares with. Raises that had to wait are
looked at again when the capacity they wait for is released (the EV response
time after a decrease); stations are asked for samples where the allocation
needs them sooner than they come by themselves.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from asgiref.sync import sync_to_async
from django.conf import settings
from ocpp.v16.enums import (
    Action,
    ChargingProfilePurposeType,
    ChargingProfileStatus,
    ClearChargingProfileStatus,
    MessageTrigger,
)

from apps.central_system import command_loop, commands, hotstate
from apps.central_system.services import last_sample_id
from apps.devicelog.models import EventCategory, EventLevel
from apps.devicelog.services import device_log_write
from apps.energy import profiles, state
from apps.energy.allocator import Allocation
from apps.energy.allocator.envelope import Slot
from apps.energy.allocator.transition import (
    Budgeted,
    Raise,
    admit_raises,
    decreases_that_may_wait,
    raises_envelope,
)
from apps.energy.planning import Delivery, lease_s, with_value
from apps.energy.services import rebalance_request
from apps.energy.snapshot import ConnectorRef, SnapshotContext
from apps.stations.models import Connector

logger = logging.getLogger(__name__)

DELIVERY_TIMEOUT_S = 10.0


class RunFenced(Exception):
    """The run lost its claim on the control loop: another run may be delivering."""


def response_s() -> float:
    return float(getattr(settings, "EV_RESPONSE_S", 5))


class Run:
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
        self.kept: list[Delivery] = []  # decreases waiting for ramps to show in samples
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
        available_a = {zone.zone_id: zone.available_a for zone in self.allocation.zones}
        ramping_a = {zone.zone_id: zone.ramping_a for zone in self.allocation.zones}
        # Break: everything that lets no connector draw more goes at once, but
        # for the decreases that only ramps ask for (while the zones hold them).
        lower = [d for d in deliveries if not d.raises_envelope]
        waiting = decreases_that_may_wait(
            self.context.snapshot.zones,
            available_a,
            self._budgeted(now_s),
            ramping_a,
            [d.ref.key for d in lower if self._may_wait(d, now_s)],
        )
        self.kept = [d for d in lower if d.kind == "live" and d.ref.key in waiting]
        self._wave([d for d in lower if not (d.kind == "live" and d.ref.key in waiting)])
        # Make: raises, as far as the budget allows once those are answered.
        raises = [d for d in deliveries if d.raises_envelope]
        if not raises:
            return
        granted = admit_raises(
            self.context.snapshot.zones,
            available_a,
            self._budgeted(time.time()),
            [
                Raise(
                    d.ref.key,
                    d.value_a,
                    d.floor_a,
                    d.priority,
                    d.kind,
                    d.settled_a,
                    # An idle connector's fallback is what an EV nobody knows of draws.
                    ramps=d.raises or (d.kind == "fallback" and d.ref.key in self.context.idle),
                    min_step_a=self.context.snapshot.settings.deadband_a,
                    ramp_from_a=self.profiles[d.ref.key].following_a(
                        now_s, self.context.transaction_ids.get(d.ref.key)
                    ),
                )
                for d in raises
            ],
            ramping_a=ramping_a,
        )
        wave = []
        for delivery in raises:
            value_a = granted.get((delivery.ref.key, delivery.kind))
            if value_a is None:
                self.deferred.append(delivery)
                continue
            if value_a != delivery.value_a:
                partial = with_value(delivery, value_a)
                if partial is None:
                    self.deferred.append(delivery)
                    continue
                self.deferred.append(delivery)
                delivery = partial
            wave.append(delivery)
        self._wave(wave)
        if self.deferred:
            self._look_again_when_released()

    def _may_wait(self, delivery: Delivery, now_s: float) -> bool:
        """A lower live setpoint: not one asked again of a held station, nor a lease to renew."""
        if delivery.kind != "live" or delivery.held or delivery.previous_entry is None:
            return False
        if delivery.previous_entry.get("transaction_id") != delivery.ref.transaction_id:
            return False
        valid_until_s = float(delivery.previous_entry.get("valid_until_s") or 0)
        return valid_until_s - now_s > lease_s() / 4 and delivery.value_a < delivery.settled_a

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
            # Unknown: there was nothing to clear
            if result in (ClearChargingProfileStatus.accepted, ClearChargingProfileStatus.unknown):
                self.accepted += 1
                key = delivery.ref.key
                self.profiles[key] = replace(
                    self.profiles[key], live=None, live_transaction_id=None, live_valid_until_s=None
                )
                self.changed.add(key)
            else:
                self._update(delivery, lambda slot: slot.unanswered(value_a))
            return
        if result == ChargingProfileStatus.accepted:
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

    def in_force_by_key(self) -> dict[str, float]:
        """Live setpoints stations hold where this run did not send the allocation's in full.

        A raise waiting for released capacity or sent in part, a decrease kept
        while EVs ramp up: what the station holds is what the EV follows.
        """
        now_s = time.time()
        in_force = {}
        for delivery in (*self.deferred, *self.kept):
            if delivery.kind == "live":
                key = delivery.ref.key
                in_force[key] = self.profiles[key].following_a(now_s, delivery.ref.transaction_id)
        for delivery, result in zip(self.delivered, self.results, strict=True):
            accepted = result == ChargingProfileStatus.accepted
            if delivery.kind == "live" and accepted and delivery.ref.key in in_force:
                in_force[delivery.ref.key] = delivery.value_a
        return in_force

    def status_by_key(self) -> dict[str, str]:
        status = {
            d.ref.key: r
            for d, r in zip(self.delivered, self.results, strict=True)
            if d.kind == "live"
        }
        for delivery in self.deferred:
            if delivery.kind == "live" and delivery.ref.key not in status:
                status[delivery.ref.key] = "waiting for released capacity"
        for delivery in self.kept:
            status.setdefault(delivery.ref.key, "kept while EVs ramp up")
        return status


def _later(first: float | None, second: float | None) -> float | None:
    values = [v for v in (first, second) if v is not None]
    return max(values) if values else None


async def _request_again() -> None:
    await sync_to_async(rebalance_request, thread_sensitive=False)(reason="released")


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
        status = str(outcome.result.get("status", ClearChargingProfileStatus.unknown))
        if (
            status != ChargingProfileStatus.accepted
            and delivery.kind == "live"
            and delivery.action == Action.set_charging_profile
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
            delivery.ref.identity,
            Action.set_charging_profile,
            payload,
            timeout_s=DELIVERY_TIMEOUT_S,
        )
    except commands.CommandError as exc:
        return f"error: {exc}"
    if answer.get("status") == ChargingProfileStatus.accepted:
        return ChargingProfileStatus.accepted
    return (
        f"{status} ({ChargingProfilePurposeType.tx_profile}"
        f" and {ChargingProfilePurposeType.charge_point_max_profile})"
    )


RAMP_FIRST_LOOK_S = 1.0
"""Many EVs follow a raise within a second: a first sample is asked for then."""

SAMPLE_TRANSIT_WAIT_S = 0.5
"""How long after a station accepted a request for a sample the sample is looked for."""


def ask_for_samples_after_ramp(deliveries: list[Delivery], results: list[str]) -> None:
    """Ask stations whose setpoint went up for samples while their EV follows, then look again.

    Until a sample shows the EV on its new setpoint, its ramp counts as
    building load and raises keep room for it (``allocator.transition``):
    the sooner samples show it, the sooner that room is given out. A sample
    is asked for after a second, when many EVs have followed, and once every
    EV had time to (``EV_RAMP_S``); the control loop looks again after each.
    """
    raised = [
        d.ref
        for d, result in zip(deliveries, results, strict=True)
        if d.kind == "live" and d.raises and result == ChargingProfileStatus.accepted
    ]
    if raised:
        ramp_s = float(settings.EV_RAMP_S)
        for delay_s in sorted({min(RAMP_FIRST_LOOK_S, ramp_s), ramp_s}):
            command_loop.run_later(delay_s, lambda: _samples_then_look_again(raised))


async def _samples_then_look_again(refs: list[ConnectorRef]) -> None:
    await ask_for_samples(refs)
    await asyncio.sleep(SAMPLE_TRANSIT_WAIT_S)
    await _request_again()


async def ask_for_samples(refs: list[ConnectorRef]) -> None:
    """TriggerMessage MeterValues to each connector; a station that cannot is left alone."""
    outcomes = await commands.call_many(
        [
            (
                ref.identity,
                *commands.trigger_message(
                    MessageTrigger.meter_values, connector_id=ref.connector_id
                ),
            )
            for ref in refs
        ],
        timeout_s=DELIVERY_TIMEOUT_S,
    )
    for ref, outcome in zip(refs, outcomes, strict=True):
        if isinstance(outcome.result, Exception):
            logger.debug("No sample asked of %s: %s", ref.key, outcome.result)


def look_again_after_holds(context: SnapshotContext) -> None:
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
    command_loop.run_later(0.0, lambda: ask_for_samples_after_dip(refs, holds))
    command_loop.run_later(SAMPLE_WAIT_S, _request_again)
    command_loop.run_later(context.dip_hold_s + 0.1, _request_again)


async def ask_for_samples_after_dip(
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
