"""The control loop of a dynamic zone: a meter, a building load, EVs that lag and dip (hypothesis).

The loop of ``tests/energy/allocator/test_transition_loop.py`` (stations that
refuse, time out and lag, cars that come and go), now below a zone meter
that reads the building load plus what the EVs really draw, twice a second.
Stations sample their EV every few seconds and the sample arrives late; EVs
draw what their limit allows, or less (a dip) and then more again; the
building load jumps up and down. Each session's sample is capped as the
snapshot caps it (``allocator.readings.sample_cap``) and the zone's dip
hold is fed back and ended as the snapshot and the control loop do it.

A building rise can only be answered once a meter shows it and the EVs have
followed: the zone is checked, at every quarter second, against the lowest
building load of the last ``REACTION_S``. Whatever evce gives the EVs must fit
beside that.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.energy.allocator import (
    Connector,
    PhaseWiring,
    Session,
    Zone,
    connector_to_building_phases,
    offline_currents,
    reserve_for_connector,
)
from apps.energy.allocator.readings import (
    SampleCap,
    lowest_in_force_a,
    ramping_to_a,
    sample_cap,
)
from apps.energy.delivery import RAMP_FIRST_LOOK_S
from apps.energy.snapshot import RAMP_CONFIRM_S, SAMPLE_TRANSIT_S
from apps.energy.state import HOLD_TOLERANCE_A
from tests.energy.allocator.strategies import Decoder
from tests.energy.allocator.test_transition_loop import PROPERTY, RESPONSE_S, Loop

# Pure and long: run once, not again on the PostgreSQL leg of CI.
pytestmark = pytest.mark.property

STEP_S = 0.25
STEPS_PER_RUN = 4  # a run every second
METER_EVERY = 2  # a reading every half second
RAMP_S = 3.0
REACTION_S = 0.5 + 1.0 + RESPONSE_S + 2 * STEP_S


class MeterLoop(Loop):
    """A dynamic zone: its meter, its building load and sampled EVs."""

    def __init__(
        self,
        decoder: Decoder,
        connector_count: int,
        max_a: float,
        *,
        faults: bool,
        building_max_a: float,
        cap=sample_cap,
    ):
        super().__init__(decoder, connector_count, max_a, faults=faults)
        self.cap = cap
        self.building_max_a = building_max_a
        zone = Zone(
            zone_id=1,
            max_current_a=max_a,
            dynamic=True,
            degraded_current_a=max_a - building_max_a,
            meter_current_a=(0.0, 0.0, 0.0),
        )
        self.zones = (zone,)
        connectors = list(self.by_key.values())
        self.offline = {
            item.key: item.current_a
            for item in offline_currents(self.zones, connectors, self.settings)
        }
        for key, truth in self.truths.items():
            truth.stubborn = False  # see outcome()
            truth.fallback_a = self.offline[key]
            truth.drawable = [(truth.limit_a(), None)]
        self.building_a = (0.0, 0.0, 0.0)
        self.buildings: list[tuple[float, tuple[float, float, float]]] = [
            (self.now_s, self.building_a)
        ]
        self.demand_a = dict.fromkeys(self.truths, 1e9)  # what each EV would draw
        self.sample_interval_s = decoder.pick([2.0, 5.0, 10.0])
        self.sample_offset_s = {key: decoder.pick([0.0, 0.5, 1.0, 1.5]) for key in self.truths}
        self.in_transit: list[tuple[float, str, int, float, float]] = []
        self.arrives_s: dict[str, float] = {}
        # key → (tx, value, id, sampled at)
        self.samples: dict[str, tuple[int, float, int, float]] = {}
        self.triggers: list[tuple[float, str]] = []  # samples asked once an EV had time to ramp
        self.last_sample_id = 0
        self.reading: tuple[float, float, float] | None = None
        self.read_at_s = self.now_s
        self.history: dict[str, tuple[int, list[list[float]]]] = {}
        self.figures: dict = {}
        # (hold since, samples asked at, stations yet to answer, their marks)
        self.asked: tuple[float, float, set[str], dict[str, int]] | None = None
        self.mark: tuple[float, dict[str, int]] | None = None  # (hold since, marks)
        self.hold_ended = False
        self.steps = 0

    # What really happens -------------------------------------------------

    def drawn_a(self, key: str) -> float:
        """What the EV draws now: what its limit allows, or less while it dips."""
        return min(self.truths[key].draw_a(self.now_s), self.demand_a[key])

    def phases(self, key: str) -> tuple[float, float, float]:
        wiring = self.by_key[key].wiring
        drawn = self.drawn_a(key)
        return connector_to_building_phases(wiring, [drawn] * len(wiring.building_phases))

    def check(self) -> None:
        oldest_s = self.now_s - REACTION_S
        recent = [b for at_s, b in self.buildings if at_s >= oldest_s]
        before = [b for at_s, b in self.buildings if at_s < oldest_s]
        if before:
            recent.append(before[-1])
        for phase in range(3):
            evs = sum(self.phases(key)[phase] for key in self.truths)
            building = min(b[phase] for b in recent)
            assert evs + building <= self.limit_a + 1e-6, (
                phase,
                evs,
                building,
                self.now_s,
                {k: (t.drawable, self.demand_a[k]) for k, t in self.truths.items()},
            )

    def world_changes(self) -> None:
        """The building load jumps; EVs dip and come back."""
        if self.decoder.chance(4):
            level = self.decoder.pick([0.0, 0.25, 0.5, 0.75, 1.0]) * self.building_max_a
            spread = self.decoder.pick([0.0, 0.0, 0.5])
            self.building_a = (level, level * (1 - spread), level)
            self.buildings.append((self.now_s, self.building_a))
        for key in self.truths:
            if self.decoder.chance(6):
                self.demand_a[key] = self.decoder.pick([1e9, 1e9, 0.0, 3.0, 8.0])

    def take_sample(self, key: str, transit_s: float) -> None:
        """A sample taken now; a station's messages arrive in the order it sends them."""
        arrives_s = max(self.now_s + transit_s, self.arrives_s.get(key, 0.0))
        self.arrives_s[key] = arrives_s
        tx = self.truths[key].transaction_id
        self.in_transit.append((arrives_s, key, tx, self.drawn_a(key), self.now_s))

    def tick(self) -> None:
        """A quarter second: samples taken and arriving, a meter reading."""
        self.now_s += STEP_S
        self.steps += 1
        for key, truth in self.truths.items():
            due = (self.now_s - self.sample_offset_s[key]) % self.sample_interval_s
            if truth.transaction_id is not None and due < STEP_S / 2:
                self.take_sample(key, self.decoder.pick([0.0, 0.5, 1.0, SAMPLE_TRANSIT_S]))
        for at_s, key in [t for t in self.triggers if t[0] <= self.now_s]:
            self.triggers.remove((at_s, key))
            if self.truths[key].transaction_id is not None:
                self.take_sample(key, self.decoder.pick([0.25, 0.5, 1.0, RAMP_CONFIRM_S]))
        arrived = sorted(item for item in self.in_transit if item[0] <= self.now_s)
        self.in_transit = [item for item in self.in_transit if item[0] > self.now_s]
        for _at_s, key, tx, value_a, sampled_at_s in arrived:
            self.last_sample_id += 1
            self.samples[key] = (tx, value_a, self.last_sample_id, sampled_at_s)
        self.mark_when_answered()
        if self.steps % METER_EVERY == 0:
            per_phase = [self.building_a[p] for p in range(3)]
            for key in self.truths:
                for phase, value in enumerate(self.phases(key)):
                    per_phase[phase] += value
            self.reading = (per_phase[0], per_phase[1], per_phase[2])
            self.read_at_s = self.now_s
        self.check()

    # What evce sees ------------------------------------------------------

    def record(self, change, result: str) -> None:
        ramps = self.ramps(change)
        super().record(change, result)
        if ramps and result == "accepted" and change.kind == "live":
            # ``delivery.ask_for_samples_after_ramp``
            for delay_s in sorted({min(RAMP_FIRST_LOOK_S, RAMP_S), RAMP_S}):
                self.triggers.append((self.now_s + delay_s, change.key))
        if change.kind == "live" and result == "accepted":
            tx = self.truths[change.key].transaction_id
            previous_tx, items = self.history.get(change.key, (None, []))
            items = list(items) if previous_tx == tx else []
            if not items or items[-1][0] != change.value_a:
                items.append([change.value_a, self.now_s, self.now_s])
            self.history[change.key] = (tx, items)

    def outcome(self, change) -> str:
        """Any answer, but every decrease is applied.

        A station that keeps a higher limit when the building load rises
        overloads the zone whatever evce does (the loop without a meter
        covers how evce budgets such stations).
        """
        outcome = super().outcome(change)
        if change.value_a < self.truths[change.key].limit_a() and outcome in ("refused", "lost"):
            return "late"
        return outcome

    def measured(self, key: str, tx: int | None):
        sample = self.samples.get(key)
        if tx is None or sample is None or sample[0] != tx:
            return None
        wiring = self.by_key[key].wiring
        return connector_to_building_phases(wiring, [sample[1]] * len(wiring.building_phases))

    def reserve(self, key: str, tx: int | None):
        """A held connector, its sample counted as the snapshot counts it."""
        measured = self.measured(key, tx)
        if measured is not None:
            lowest_a = self.records[key].lowest_a(self.read_at_s, self.tx(key))
            measured = tuple(min(value, lowest_a) for value in measured)
        return reserve_for_connector(
            self.by_key[key], current_a=self.envelope(key), measured_current_a=measured
        )

    def session(self, key: str, tx: int) -> Session:
        base = replace(
            super().session(key, tx),
            station_limit_a=self.records[key].following_a(self.now_s, self.tx(key)),
        )
        measured = self.measured(key, tx)
        history_tx, items = self.history.get(key, (None, []))
        if history_tx != tx or not items:
            return replace(base, measured_current_a=measured)
        cap = self.cap(
            items,
            self.read_at_s,
            self.read_at_s,
            first_before_a=self.offline[key],
            envelope_a=self.envelope(key),
            response_s=RESPONSE_S,
            ramp_s=RAMP_S,
        )
        connector = base.connector
        if cap.raise_limit_a is not None:
            connector = replace(
                connector, max_current_a=min(connector.max_current_a or 0.0, cap.raise_limit_a)
            )
        sample = self.samples.get(key)
        ramp_a = ramping_to_a(
            items,
            sample[3] if sample is not None and sample[0] == tx else None,
            self.now_s,
            first_before_a=self.offline[key],
            ramp_s=RAMP_S,
            confirm_s=RAMP_CONFIRM_S,
        )
        wiring = connector.wiring
        return replace(
            base,
            connector=connector,
            measured_current_a=measured,
            drawing_cap_a=cap.cap_a,
            ramp_current_a=(
                None
                if ramp_a is None
                else connector_to_building_phases(wiring, [ramp_a] * len(wiring.building_phases))
            ),
        )

    def zones_now(self, sessions: list[Session]) -> tuple[Zone, ...]:
        """The zone with its reading, and the dip hold as the snapshot passes it on."""
        figures = self.figures
        previous = held = None
        self.hold_ended = False
        if figures.get("other") and figures.get("held"):
            since_s = figures.get("since_s")
            hold_s = self.sample_interval_s + SAMPLE_TRANSIT_S
            previous, held = figures["other"], figures["held"]
            if since_s is not None and self.now_s - since_s > hold_s:
                held, self.hold_ended = figures["meter"], True
        mark = self.mark
        if held is not None and mark is not None and mark[0] == figures.get("since_s"):
            keys = [s.connector.key for s in sessions]
            if all(self.sample_id(key) > mark[1].get(key, self.last_sample_id) for key in keys):
                # The fall held is shown: the estimate stands for the last reading.
                held, self.hold_ended = figures["meter"], True
        zone = replace(
            self.zones[0],
            meter_current_a=self.reading or self.building_a,
            previous_other_loads_a=previous,
            held_meter_current_a=held,
        )
        return (zone,)

    def sample_id(self, key: str) -> int:
        sample = self.samples.get(key)
        tx = self.tx(key)
        return sample[2] if sample is not None and sample[0] == tx else 0

    def allocated(self, allocation) -> None:
        """The zone's figures kept for the next run; a new dip hold asks for samples."""
        zone = allocation.zones[0]
        meter = self.reading or self.building_a
        since_s = None
        if zone.held_meter_current_a is not None and any(
            h > m + HOLD_TOLERANCE_A for h, m in zip(zone.held_meter_current_a, meter, strict=True)
        ):
            since_s = (None if self.hold_ended else self.figures.get("since_s")) or self.now_s
        if since_s is not None and since_s != self.figures.get("since_s"):
            self.ask_for_samples(since_s)
        self.figures = {
            "other": zone.other_loads_a,
            "held": zone.held_meter_current_a,
            "meter": meter,
            "since_s": since_s,
        }

    def ask_for_samples(self, since_s: float) -> None:
        """TriggerMessage MeterValues: each station answers, then sends a sample taken now.

        A station's messages arrive in order: it is marked (the last sample id
        stored) once every sample it took before the request has arrived; the
        hold is marked once every station is.
        """
        waiting = set()
        for key, truth in self.truths.items():
            if truth.transaction_id is not None:
                waiting.add(key)
                self.take_sample(key, self.decoder.pick([0.25, 0.5, 1.0, SAMPLE_TRANSIT_S]))
        self.asked = (since_s, self.now_s, waiting, {})
        self.mark_when_answered()

    def mark_when_answered(self) -> None:
        if self.asked is None:
            return
        since_s, asked_at_s, waiting, marks = self.asked
        for key in sorted(waiting):
            if all(item[4] >= asked_at_s for item in self.in_transit if item[1] == key):
                marks[key] = self.last_sample_id
                waiting.discard(key)
        if not waiting:
            self.mark = (since_s, marks)
            self.asked = None

    def second(self) -> None:
        for _step in range(STEPS_PER_RUN):
            self.tick()
        self.run()


@PROPERTY
@given(
    data=st.binary(min_size=600, max_size=600),
    connector_count=st.integers(min_value=2, max_value=6),
    max_a=st.sampled_from([40.0, 63.0, 100.0]),
    building_share=st.sampled_from([0.25, 0.5, 0.75]),
)
def test_no_zone_phase_is_ever_over_its_limit_below_a_meter(
    data: bytes, connector_count: int, max_a: float, building_share: float
) -> None:
    loop = MeterLoop(
        Decoder(data),
        connector_count,
        max_a,
        faults=True,
        building_max_a=round(max_a * building_share),
    )
    for _second in range(20):
        loop.cars_come_and_go()
        loop.world_changes()
        loop.second()


SETTLE_S = 45


@PROPERTY
@given(
    data=st.binary(min_size=600, max_size=600),
    connector_count=st.integers(min_value=2, max_value=6),
    max_a=st.sampled_from([40.0, 63.0, 100.0]),
    building_share=st.sampled_from([0.25, 0.5, 0.75]),
)
def test_a_quiet_zone_below_a_meter_settles_on_its_allocation(
    data: bytes, connector_count: int, max_a: float, building_share: float
) -> None:
    """Raises keep room for the ramps the meter sees before the samples: none is taken back.

    Taken at face value, a ramp is building load at the next reading, which
    takes back the raise, which is sent again once a sample shows it: the
    zone would never settle. After cars came and went and the building moved,
    nothing changes any more: within ``SETTLE_S`` every EV is on the setpoint
    it is allocated (or a part of a raise too small to be worth a profile
    below it), and no profile is sent after that.
    """
    loop = MeterLoop(
        Decoder(data),
        connector_count,
        max_a,
        faults=False,
        building_max_a=round(max_a * building_share),
    )
    for _second in range(10):
        loop.cars_come_and_go()
        loop.world_changes()
        loop.second()
    loop.demand_a = dict.fromkeys(loop.truths, 1e9)  # the EVs take what they are given
    for _second in range(SETTLE_S):
        loop.second()
    settled_at = len(loop.sent)
    for _second in range(10):
        loop.second()
    assert loop.sent[settled_at:] == []
    assert loop.allocation is not None
    # The last amps of a raise that must fit twice may not be worth a profile.
    short_a = 2 * loop.settings.deadband_a
    for item in loop.allocation.sessions:
        limit_a = loop.truths[item.key].limit_a()
        assert item.setpoint_a - short_a <= limit_a <= item.setpoint_a, item


def lowered_zone(cap) -> MeterLoop:
    """Four three-phase sessions at 16 A in a 100 A zone; the building jumps from 20 A to 60 A."""
    loop = MeterLoop(Decoder(bytes(600)), 4, 100.0, faults=False, building_max_a=60.0, cap=cap)
    for key, truth in loop.truths.items():
        loop.by_key[key] = Connector(
            key=key, zone_id=1, wiring=PhaseWiring.TRI123, max_current_a=16.0
        )
        truth.max_a = 16.0
        truth.transaction_id, loop.next_tx = loop.next_tx, loop.next_tx + 1
        truth.drawable = [(truth.limit_a(), None)]
    loop.lags_s = [RESPONSE_S]
    loop.sample_interval_s = 10.0
    loop.building_a = (20.0, 20.0, 20.0)
    loop.buildings.append((loop.now_s, loop.building_a))
    for _second in range(15):
        loop.second()
    assert all(t.limit_a() == 16.0 for t in loop.truths.values())
    loop.building_a = (60.0, 60.0, 60.0)
    loop.buildings.append((loop.now_s, loop.building_a))
    return loop


def test_sessions_lowered_together_are_not_shed_while_their_evs_follow() -> None:
    """40 A left for four sessions: each keeps 10 A, none is shed while the EVs come down.

    Counting an EV that still follows its higher setpoint at the lower one
    takes its own current for building load: the zone then looks full and
    every session is shed until the EVs have come down.
    """
    for cap, sheds in ((sample_cap, False), (_lowest, True)):
        loop = lowered_zone(cap)
        lowest_allocated = []
        for _second in range(12):
            loop.second()
            assert loop.allocation is not None
            lowest_allocated.append(min(s.setpoint_a for s in loop.allocation.sessions))
        assert (min(lowest_allocated) == 0.0) is sheds, (cap, lowest_allocated)
        if not sheds:
            assert lowest_allocated[-1] == 10.0
            assert all(t.limit_a() == 10.0 for t in loop.truths.values())


def _lowest(history, read_from_s, read_to_s, *, first_before_a, envelope_a, response_s, ramp_s):
    """The rule before: every sample counted at most the lowest setpoint in force."""
    lowest = lowest_in_force_a(history, read_from_s, read_to_s, first_before_a=first_before_a)
    return SampleCap(cap_a=lowest, lowest_a=lowest)
