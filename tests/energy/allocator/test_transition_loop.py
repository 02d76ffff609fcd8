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
    plan_changes,
    raises_envelope,
)

from .strategies import Decoder

RESPONSE_S = 5.0
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
    if change.kind == "live" and truth.transaction_id is None:
        return "refused"
    if truth.stubborn and change.kind == "live" and change.value_a < truth.limit_a():
        return "refused"
    if outcome in ("accepted", "late"):
        truth.apply(change, now_s, lag_s)
    return outcome


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    data=st.binary(min_size=200, max_size=200),
    connector_count=st.integers(min_value=2, max_value=6),
    limit_a=st.sampled_from([16.0, 32.0, 40.0, 63.0]),
)
def test_no_zone_phase_is_ever_over_its_limit(
    data: bytes, connector_count: int, limit_a: float
) -> None:
    decoder = Decoder(data)
    site_settings = SiteSettings(optimisation_enabled=False)
    zones = (Zone(zone_id=1, max_current_a=limit_a),)
    connectors = [
        Connector(
            key=f"CP{n}/1",
            zone_id=1,
            wiring=decoder.pick(list(WIRINGS)),
            max_current_a=decoder.pick([16.0, 32.0]),
        )
        for n in range(connector_count)
    ]
    by_key = {c.key: c for c in connectors}
    offline = {
        item.key: item.current_a for item in offline_currents(zones, connectors, site_settings)
    }
    flaky = {c.key: decoder.pick([False, False, True]) for c in connectors}
    truths = {
        c.key: Truth(
            max_a=c.max_current_a or 0.0,
            fallback_a=offline[c.key],
            stubborn=decoder.pick([False, False, False, True]),
        )
        for c in connectors
    }
    for truth in truths.values():
        truth.drawable = [(truth.limit_a(), None)]
    # evce knows nothing of what a station holds until it confirms a profile.
    records = {c.key: ConnectorProfiles.unknown(c.max_current_a or 0.0) for c in connectors}
    accepted_live: dict[str, tuple[int, float]] = {}
    next_tx = 1
    now_s = 1_000_000.0
    trace: list = []

    def envelope(key: str, at_s: float) -> float:
        truth = truths[key]
        tx = truth.transaction_id if truth.visible else None
        return records[key].envelope_a(at_s, tx)

    def record(key: str, change, result: str, at_s: float) -> None:
        profiles = records[key]
        truth = truths[key]
        value_a = change.value_a

        def update(slot: Slot) -> Slot:
            if result == "accepted":
                return slot.accepted(value_a, at_s=at_s, response_s=RESPONSE_S)
            if result == "refused":
                return slot.refused(value_a)
            return slot.unanswered(value_a)

        if change.kind == "fallback":
            records[key] = replace(profiles, fallback=update(profiles.fallback))
            return
        tx = truth.transaction_id
        live = profiles.live_for(tx, at_s) or Slot()
        if profiles.live_for(tx, at_s) is None:
            profiles = replace(profiles, live=Slot(), live_transaction_id=tx)
        records[key] = replace(
            profiles,
            live=update(live),
            live_transaction_id=tx if result == "accepted" else profiles.live_transaction_id,
        )
        if result == "accepted":
            accepted_live[key] = (tx, value_a)

    def send(key: str, change, at_s: float) -> None:
        profiles = records[key]
        if change.kind == "fallback":
            records[key] = replace(
                profiles, fallback=profiles.fallback.sending(change.value_a, at_s=at_s)
            )
        else:
            tx = truths[key].transaction_id
            live = profiles.live_for(tx, at_s)
            if live is None:
                profiles = replace(profiles, live=Slot(), live_transaction_id=tx)
                live = Slot()
            records[key] = replace(profiles, live=live.sending(change.value_a, at_s=at_s))
        outcome = decoder.pick(list(OUTCOMES)) if flaky[key] else "accepted"
        result = _deliver(truths[key], change, outcome, at_s, decoder.pick([0.0, 2.5, RESPONSE_S]))
        trace.append((at_s, key, change.kind, change.value_a, outcome, result, records[key]))
        record(key, change, "unanswered" if result in ("late", "lost") else result, at_s)

    def check(at_s: float) -> None:
        per_phase = [0.0, 0.0, 0.0]
        for key, truth in truths.items():
            for phase in by_key[key].wiring.building_phases:
                per_phase[phase] += truth.draw_a(at_s)
        if max(per_phase) > limit_a + 1e-6:
            import pprint

            with open("/tmp/trace.txt", "w") as f:
                pprint.pprint((at_s, per_phase, truths, trace), f, width=150)
        assert max(per_phase) <= limit_a + 1e-6, (per_phase, limit_a, truths, trace)

    for _tick in range(TICKS):
        # Cars come and go; some StartTransactions never reach evce.
        for truth in truths.values():
            event = decoder.pick(["stay", "stay", "stay", "arrive", "leave"])
            if event == "arrive" and truth.transaction_id is None:
                truth.transaction_id, next_tx = next_tx, next_tx + 1
                trace.append((now_s, "arrive", truth.transaction_id))
                truth.visible = decoder.pick([True, True, True, False])
                truth.drawable = [(truth.limit_a(), None)]  # a new EV, on what the station allows
            elif event == "leave" and truth.transaction_id is not None:
                truth.transaction_id, truth.live = None, None
                truth.drawable = [(truth.limit_a(), None)]  # unplugged: draws nothing any more
        check(now_s)

        # The snapshot: who follows evce, who is budgeted at what it may draw.
        sessions, reserves, idle, held = [], [], [], []
        for key, truth in truths.items():
            connector = by_key[key]
            tx = truth.transaction_id if truth.visible else None
            if records[key].held(tx, now_s):
                reserves.append(reserve_for_connector(connector, current_a=envelope(key, now_s)))
                fallback = records[key].fallback
                live = records[key].live_for(tx, now_s)
                held.append(
                    HeldConnector(
                        key,
                        min(fallback.attempt_a or 0.0, offline[key]) if fallback.held else None,
                        (live.attempt_a or 0.0) if tx and live is not None and live.held else None,
                    )
                )
            elif tx is None:
                phases = tuple(sorted(connector.wiring.building_phases))
                idle.append(
                    IdleConnector(
                        key,
                        1,
                        phases,
                        offline[key],
                        site_settings.floor_a(len(phases)),
                        records[key].fallback.confirmed_a,
                    )
                )
            else:
                last = accepted_live.get(key)
                sessions.append(
                    Session(
                        connector=connector,
                        last_setpoint_a=last[1] if last and last[0] == tx else None,
                    )
                )
        snapshot = SiteSnapshot(
            now_s=now_s,
            zones=zones,
            sessions=tuple(sessions),
            reserves=tuple(reserves),
            settings=site_settings,
        )
        allocation = allocate(snapshot)
        due = [
            item.key
            for item in allocation.sessions
            if item.changed
            or accepted_live.get(item.key, (None,))[0] != truths[item.key].transaction_id
        ]
        changes = plan_changes(
            zones,
            allocation,
            live_due=due,
            idle=idle,
            session_fallbacks={
                s.key: (records[s.key].fallback.confirmed_a, offline[s.key]) for s in sessions
            },
            held=held,
            deadband_a=site_settings.deadband_a,
            floor_of={item.key: item.floor_a for item in idle},
        )
        # Break: nothing that raises an envelope.
        raises = []
        for change in changes:
            truth = truths[change.key]
            tx = truth.transaction_id if truth.visible else None
            if raises_envelope(change.value_a, records[change.key].settled_a(now_s, tx)):
                raises.append(change)
            else:
                send(change.key, change, now_s)
        check(now_s)
        # Make: the raises the budget admits, with every connector at its envelope.
        phases_of = {
            item.key: tuple(int(p) - 1 for p in item.phases) for item in allocation.sessions
        }
        budgeted = [
            Budgeted(
                key,
                1,
                phases_of.get(key, tuple(sorted(by_key[key].wiring.building_phases))),
                envelope(key, now_s),
            )
            for key in truths
        ]
        granted = admit_raises(
            zones,
            {zone.zone_id: zone.available_a for zone in allocation.zones},
            budgeted,
            [Raise(c.key, c.value_a, c.floor_a, c.priority, c.kind) for c in raises],
        )
        for change in raises:
            value_a = granted.get((change.key, change.kind))
            if value_a is not None and (change.kind == "live" or value_a == change.value_a):
                send(change.key, replace(change, value_a=value_a), now_s)
        check(now_s)
        now_s += TICK_S

    # evce stops: live profiles lapse, every station falls back to what it holds.
    per_phase = [0.0, 0.0, 0.0]
    for key, truth in truths.items():
        held_a = truth.max_a if truth.fallback_a is None else truth.fallback_a
        assert held_a <= offline[key] + 1e-6
        for phase in by_key[key].wiring.building_phases:
            per_phase[phase] += held_a
    assert max(per_phase) <= limit_a + 1e-6
