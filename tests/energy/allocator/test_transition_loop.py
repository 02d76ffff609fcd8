"""The whole control loop against stations that refuse, time out and lag (hypothesis).

Each tick the loop does what ``apps.energy.control`` does with the same pure
pieces: budget connectors that do not follow evce at their envelope, allocate,
plan live setpoints and fallbacks, send what raises no envelope, then the
raises the budget admits. Stations answer each profile as drawn: accepted,
refused, timed out after applying it ("late"), or timed out without applying
it; one kind of station refuses every decrease of its live profile. EVs draw
the most their station lets them and follow a lower limit only after a lag of
up to the response time; cars arrive (some with a StartTransaction evce never
sees) and leave.

Checked at every instant (draws only rise when a profile is applied, so right
after each wave is enough): on every phase, what the EVs may draw is within
the zone's limit. And when evce stops, the fallbacks the stations hold keep
the zone within its limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.energy.allocator import (
    Connector,
    PhaseWiring,
    Session,
    SiteSettings,
    SiteSnapshot,
    Zone,
    allocate,
    offline_currents,
    reserve_for_connector,
)
from apps.energy.allocator.envelope import ConnectorProfiles, Slot
from apps.energy.allocator.transition import (
    Budgeted,
    HeldConnector,
    IdleConnector,
    Raise,
    admit_raises,
    decreases_that_may_wait,
    plan_changes,
    raises_envelope,
)

from .strategies import Decoder

# Pure and long: run once, not again on the PostgreSQL leg of CI.
pytestmark = pytest.mark.property

RESPONSE_S = 5.0
RETRY_S = 10.0  # as ``apps.energy.planning.RETRY_S``
TICK_S = 1.0
TICKS = 14
OUTCOMES = ("accepted", "refused", "late", "lost")
WIRINGS = (PhaseWiring.TRI123, PhaseWiring.MONO1, PhaseWiring.MONO2, PhaseWiring.TRI231)


@dataclass
class Truth:
    """What one connector's station really holds, and what its EV may draw."""

    max_a: float
    fallback_a: float | None  # None: no profile, the connector maximum applies
    live: tuple[int, float] | None = None  # (transaction id, limit)
    transaction_id: int | None = None
    visible: bool = True  # evce saw the StartTransaction
    stubborn: bool = False  # refuses every decrease of its live profile
    # What the EV may draw: (limit, until_s) — a lower limit is followed after a lag.
    drawable: list[tuple[float, float | None]] = field(default_factory=list)

    def limit_a(self) -> float:
        if self.transaction_id is not None and self.live and self.live[0] == self.transaction_id:
            return self.live[1]
        return self.max_a if self.fallback_a is None else self.fallback_a

    def apply(self, change, now_s: float, lag_s: float) -> None:
        before = self.limit_a()
        if change.kind == "fallback":
            self.fallback_a = change.value_a
        else:
            self.live = (self.transaction_id, change.value_a)
        self._follow(before, now_s, lag_s)

    def _follow(self, before_a: float, now_s: float, lag_s: float) -> None:
        after = self.limit_a()
        kept = [(v, u) for v, u in self.drawable if u is not None and u > now_s]
        if after < before_a:
            kept.append((before_a, now_s + lag_s))
        self.drawable = [*kept, (after, None)]

    def draw_a(self, now_s: float) -> float:
        if self.transaction_id is None:
            return 0.0
        values = [v for v, u in self.drawable if u is None or u > now_s]
        return max(values) if values else self.limit_a()


def _deliver(truth: Truth, change, outcome: str, now_s: float, lag_s: float) -> str:
    if change.kind == "clear_live":
        if outcome in ("accepted", "refused", "late"):  # "Unknown" (nothing to clear) is fine
            truth.live = None
        return "accepted" if outcome == "refused" else outcome
    if change.kind == "live" and truth.transaction_id is None:
        return "refused"
    if truth.stubborn and change.kind == "live" and change.value_a < truth.limit_a():
        return "refused"
    if outcome in ("accepted", "late"):
        truth.apply(change, now_s, lag_s)
    return outcome


class Loop:
    """A zone, its stations as they really are, and evce's control loop around them."""

    def __init__(self, decoder: Decoder, connector_count: int, limit_a: float, *, faults: bool):
        self.decoder = decoder
        self.limit_a = limit_a
        self.settings = SiteSettings(optimisation_enabled=False)
        self.zones = (Zone(zone_id=1, max_current_a=limit_a),)
        connectors = [
            Connector(
                key=f"CP{n}/1",
                zone_id=1,
                wiring=decoder.pick(list(WIRINGS)),
                max_current_a=decoder.pick([16.0, 32.0]),
            )
            for n in range(connector_count)
        ]
        self.by_key = {c.key: c for c in connectors}
        self.offline = {
            item.key: item.current_a
            for item in offline_currents(self.zones, connectors, self.settings)
        }
        self.flaky = {c.key: faults and decoder.pick([False, False, True]) for c in connectors}
        self.truths = {
            c.key: Truth(
                max_a=c.max_current_a or 0.0,
                fallback_a=self.offline[c.key],
                stubborn=faults and decoder.pick([False, False, False, True]),
            )
            for c in connectors
        }
        for truth in self.truths.values():
            truth.drawable = [(truth.limit_a(), None)]
        # evce knows nothing of what a station holds until it confirms a profile.
        self.records = {
            c.key: ConnectorProfiles.unknown(c.max_current_a or 0.0) for c in connectors
        }
        self.accepted_live: dict[str, tuple[int | None, float]] = {}
        self.next_tx = 1
        self.lags_s = [0.0, 2.5, RESPONSE_S]  # how long an EV takes to follow a decrease
        self.now_s = 1_000_000.0
        self.allocation = None
        self.kept: list = []  # (when, change): decreases that waited for ramps
        self.sent: list = []  # (when, change, result)

    def tx(self, key: str) -> int | None:
        truth = self.truths[key]
        return truth.transaction_id if truth.visible else None

    def envelope(self, key: str) -> float:
        return self.records[key].envelope_a(self.now_s, self.tx(key))

    def check(self) -> None:
        per_phase = [0.0, 0.0, 0.0]
        for key, truth in self.truths.items():
            for phase in self.by_key[key].wiring.building_phases:
                per_phase[phase] += truth.draw_a(self.now_s)
        assert max(per_phase) <= self.limit_a + 1e-6, (per_phase, self.limit_a, self.truths)

    def cars_come_and_go(self) -> None:
        """Cars arrive (some with a StartTransaction evce never sees) and leave."""
        for truth in self.truths.values():
            event = self.decoder.pick(["stay", "stay", "stay", "arrive", "leave"])
            if event == "arrive" and truth.transaction_id is None:
                truth.transaction_id, self.next_tx = self.next_tx, self.next_tx + 1
                truth.visible = self.decoder.pick([True, True, True, False])
                truth.drawable = [(truth.limit_a(), None)]  # a new EV, on what it is offered
            elif event == "leave" and truth.transaction_id is not None:
                truth.transaction_id, truth.live = None, None
                truth.drawable = [(truth.limit_a(), None)]  # unplugged: draws nothing

    def send(self, change) -> None:
        key, at_s = change.key, self.now_s
        profiles = self.records[key]
        tx = self.truths[key].transaction_id
        if change.kind == "fallback":
            profiles = replace(
                profiles, fallback=profiles.fallback.sending(change.value_a, at_s=at_s)
            )
        elif change.kind == "live":
            live = profiles.live_for(tx, at_s)
            if live is None:
                profiles = replace(profiles, live=Slot(), live_transaction_id=tx)
                live = Slot()
            profiles = replace(profiles, live=live.sending(change.value_a, at_s=at_s))
        self.records[key] = profiles
        outcome = self.outcome(change)
        lag_s = self.decoder.pick(self.lags_s)
        result = _deliver(self.truths[key], change, outcome, at_s, lag_s)
        self.sent.append((at_s, change, result))
        self.record(change, "unanswered" if result in ("late", "lost") else result)

    def record(self, change, result: str) -> None:
        key, at_s, value_a = change.key, self.now_s, change.value_a
        profiles = self.records[key]

        def update(slot: Slot) -> Slot:
            if result == "accepted":
                return slot.accepted(value_a, at_s=at_s, response_s=RESPONSE_S)
            if result == "refused":
                return slot.refused(value_a)
            return slot.unanswered(value_a)

        if change.kind == "clear_live":
            if result == "accepted":
                self.records[key] = replace(profiles, live=None, live_transaction_id=None)
            elif profiles.live is not None:
                self.records[key] = replace(profiles, live=update(profiles.live))
            return
        if change.kind == "fallback":
            self.records[key] = replace(profiles, fallback=update(profiles.fallback))
            return
        tx = self.truths[key].transaction_id
        live = profiles.live_for(tx, at_s) or Slot()
        self.records[key] = replace(
            profiles,
            live=update(live),
            live_transaction_id=tx if result == "accepted" else profiles.live_transaction_id,
        )
        if result == "accepted":
            self.accepted_live[key] = (tx, value_a)

    def outcome(self, change) -> str:
        return self.decoder.pick(list(OUTCOMES)) if self.flaky[change.key] else "accepted"

    def ramps(self, change) -> bool:
        """A raise an EV ramps up to: live above the last setpoint, or an idle fallback.

        An idle connector's fallback is what an EV evce does not know of draws.
        """
        if change.kind == "fallback":
            return self.tx(change.key) is None
        if change.kind != "live":
            return False
        last = self.accepted_live.get(change.key)
        tx = self.truths[change.key].transaction_id
        before_a = last[1] if last and last[0] == tx else self.offline[change.key]
        return change.value_a > before_a

    def reserve(self, key: str, tx: int | None):
        return reserve_for_connector(self.by_key[key], current_a=self.envelope(key))

    def session(self, key: str, tx: int) -> Session:
        last = self.accepted_live.get(key)
        return Session(
            connector=self.by_key[key],
            last_setpoint_a=last[1] if last and last[0] == tx else None,
        )

    def zones_now(self, sessions: list[Session]) -> tuple[Zone, ...]:
        return self.zones

    def allocated(self, allocation) -> None:
        """What the control loop keeps of an allocation for the next run."""

    def held_connectors(self, snapshot, held, held_sessions) -> list[HeldConnector]:
        """What to ask again of connectors that did not follow, as ``planning`` does it.

        The last attempt every ``RETRY_S``; less at once when a session would
        get less now than it was last asked for.
        """
        wanted = {}
        if held_sessions:
            shadow = allocate(
                replace(
                    snapshot,
                    sessions=(*snapshot.sessions, *held_sessions.values()),
                    reserves=tuple(r for r in snapshot.reserves if r.key not in held_sessions),
                )
            )
            wanted = {i.key: i.setpoint_a for i in shadow.sessions if i.key in held_sessions}

        def due(slot: Slot) -> bool:
            return slot.attempt_at_s is None or self.now_s - slot.attempt_at_s >= RETRY_S

        result = []
        for key, tx, fallback, live in held:
            live_held = live is not None and live.held
            fallback_a = live_a = None
            if fallback.held and due(fallback):
                fallback_a = min(fallback.attempt_a or 0.0, self.offline[key])
            if tx and live_held and due(live):
                live_a = live.attempt_a or 0.0
            if tx and key in wanted:
                if live_a is not None:
                    asked_a = live_a
                elif live is not None and live.attempt_a is not None:
                    asked_a = live.attempt_a
                else:
                    asked_a = self.envelope(key)
                if wanted[key] < asked_a:
                    live_a = wanted[key]
            clear_live = tx is None and live_held and due(live)
            result.append(HeldConnector(key, fallback_a, live_a, clear_live=clear_live))
        return result

    def run(self) -> None:
        """One run of the control loop, as ``apps.energy.control`` does it."""
        sessions, reserves, idle, held = [], [], [], []
        held_sessions: dict[str, Session] = {}
        for key in self.truths:
            connector = self.by_key[key]
            tx = self.tx(key)
            if self.records[key].held(tx, self.now_s):
                reserves.append(self.reserve(key, tx))
                fallback = self.records[key].fallback
                live = self.records[key].live_for(tx, self.now_s)
                held.append((key, tx, fallback, live))
                if tx is not None:
                    # What it would get if it followed (see ``planning._wanted_of_held``).
                    held_sessions[key] = replace(
                        self.session(key, tx),
                        drawing_cap_a=self.records[key].lowest_a(self.now_s, tx),
                    )
            elif tx is None:
                phases = tuple(sorted(connector.wiring.building_phases))
                idle.append(
                    IdleConnector(
                        key,
                        1,
                        phases,
                        self.offline[key],
                        self.settings.floor_a(len(phases)),
                        self.records[key].fallback.confirmed_a,
                    )
                )
            else:
                sessions.append(self.session(key, tx))
        zones = self.zones_now(sessions)
        snapshot = SiteSnapshot(
            now_s=self.now_s,
            zones=zones,
            sessions=tuple(sessions),
            reserves=tuple(reserves),
            settings=self.settings,
        )
        allocation = self.allocation = allocate(snapshot)
        self.allocated(allocation)
        held = self.held_connectors(snapshot, held, held_sessions)
        due = [
            item.key
            for item in allocation.sessions
            if item.changed
            or self.accepted_live.get(item.key, (None,))[0] != self.truths[item.key].transaction_id
        ]
        changes = plan_changes(
            zones,
            allocation,
            live_due=due,
            idle=idle,
            session_fallbacks={
                s.key: (
                    self.records[s.key].fallback.confirmed_a,
                    self.offline[s.key],
                    live.lowest_at(self.now_s)
                    if (live := self.records[s.key].live_for(self.tx(s.key), self.now_s))
                    else None,
                )
                for s in sessions
            },
            held=held,
            deadband_a=self.settings.deadband_a,
            floor_of={item.key: item.floor_a for item in idle},
        )
        phases_of = {
            item.key: tuple(int(p) - 1 for p in item.phases) for item in allocation.sessions
        }

        def budgeted() -> list[Budgeted]:
            return [
                Budgeted(
                    key,
                    1,
                    phases_of.get(key, tuple(sorted(self.by_key[key].wiring.building_phases))),
                    self.envelope(key),
                )
                for key in self.truths
            ]

        available = {zone.zone_id: zone.available_a for zone in allocation.zones}
        ramping = {zone.zone_id: zone.ramping_a for zone in allocation.zones}
        # Break: nothing that raises what a connector is settled at, but for
        # the decreases only ramps ask for (``delivery.Run.deliver``).
        raises, lower = [], []
        for change in changes:
            settled_a = self.records[change.key].settled_a(self.now_s, self.tx(change.key))
            (raises if raises_envelope(change.value_a, settled_a) else lower).append(change)
        waiting = decreases_that_may_wait(
            zones,
            available,
            budgeted(),
            ramping,
            [
                c.key
                for c in lower
                if c.kind == "live"
                and not c.held
                and c.value_a < self.records[c.key].settled_a(self.now_s, self.tx(c.key))
            ],
        )
        for change in lower:
            if change.kind == "live" and change.key in waiting:
                self.kept.append((self.now_s, change))
            else:
                self.send(change)
        self.check()
        # Make: the raises the budget admits, with every connector at its envelope.
        granted = admit_raises(
            zones,
            available,
            budgeted(),
            [
                Raise(
                    c.key,
                    c.value_a,
                    c.floor_a,
                    c.priority,
                    c.kind,
                    self.records[c.key].settled_a(self.now_s, self.tx(c.key)),
                    ramps=self.ramps(c),
                    min_step_a=self.settings.deadband_a,
                    ramp_from_a=self.records[c.key].following_a(self.now_s, self.tx(c.key)),
                )
                for c in raises
            ],
            ramping_a=ramping,
        )
        for change in raises:
            value_a = granted.get((change.key, change.kind))
            if value_a is not None:
                self.send(replace(change, value_a=value_a))
        self.check()

    def fallbacks_hold_the_zone(self) -> None:
        """evce stops: live profiles lapse, every station falls back to what it holds."""
        per_phase = [0.0, 0.0, 0.0]
        for key, truth in self.truths.items():
            held_a = truth.max_a if truth.fallback_a is None else truth.fallback_a
            assert held_a <= self.offline[key] + 1e-6
            for phase in self.by_key[key].wiring.building_phases:
                per_phase[phase] += held_a
        assert max(per_phase) <= self.limit_a + 1e-6


PROPERTY = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@PROPERTY
@given(
    data=st.binary(min_size=200, max_size=200),
    connector_count=st.integers(min_value=2, max_value=6),
    limit_a=st.sampled_from([16.0, 32.0, 40.0, 63.0]),
)
def test_no_zone_phase_is_ever_over_its_limit(
    data: bytes, connector_count: int, limit_a: float
) -> None:
    loop = Loop(Decoder(data), connector_count, limit_a, faults=True)
    for _tick in range(TICKS):
        loop.cars_come_and_go()
        loop.check()
        loop.run()
        loop.now_s += TICK_S
    loop.fallbacks_hold_the_zone()


@PROPERTY
@given(
    data=st.binary(min_size=200, max_size=200),
    connector_count=st.integers(min_value=2, max_value=6),
    limit_a=st.sampled_from([16.0, 32.0, 40.0, 63.0]),
)
def test_stations_that_follow_get_their_setpoints_once_capacity_is_released(
    data: bytes, connector_count: int, limit_a: float
) -> None:
    """Break before make costs time, never the result: a quiet site settles on its allocation."""
    loop = Loop(Decoder(data), connector_count, limit_a, faults=False)
    for _tick in range(TICKS // 2):
        loop.cars_come_and_go()
        loop.run()
        loop.now_s += TICK_S
    for _tick in range(int(RESPONSE_S) * 3):  # nobody comes or goes
        loop.run()
        loop.now_s += TICK_S
    assert loop.allocation is not None
    for key in loop.truths:
        assert not loop.records[key].held(loop.tx(key), loop.now_s), loop.records[key]
    for item in loop.allocation.sessions:
        truth = loop.truths[item.key]
        assert truth.limit_a() == item.setpoint_a, (item, truth)
