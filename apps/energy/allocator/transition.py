"""From one allocation to the next without overloading anything on the way.

The allocator decides where the current should be; getting there takes
profiles that stations may refuse, answer late or never, and EVs that take
seconds to follow a lower limit. Two rules keep every zone phase within its
available current at every moment, counting each connector at its envelope
(:mod:`.envelope`, the most it may be drawing now):

- **break before make**: a change that does not raise a connector's envelope
  is always sent at once; a raise is sent only when, with every connector
  counted at its envelope, it fits in every zone phase above it
  (:func:`admit_raises`). Capacity freed by a decrease therefore goes to
  another connector only once the decrease was accepted and the EV had time
  to follow; a refused decrease frees nothing.
- **fallbacks are part of the budget**: an idle connector can draw its
  fallback (``TxDefaultProfile``) the moment a car is plugged in, so it is
  given only what is left after the sessions (:func:`fallback_targets`), never
  more than its offline current, which keeps every zone safe when all stations
  fall back at once because evce is gone. A charging connector's fallback is
  its offline current, but never above its live setpoint
  (:func:`session_fallback_a`): a live profile can lapse or its transaction
  end, and the fallback then applies.
- **room for ramps**: below a meter, an EV ramping up to a raised setpoint
  that no sample shows yet looks like building load, so for a few seconds
  it counts twice: at its envelope and in the meter. A raise that fits only
  once would be taken back at the next reading and sent again once a sample
  shows it, and a whole zone would oscillate. So a raise that makes an EV
  ramp is admitted only if it fits twice, and the ramps under way are kept
  free (:func:`admit_raises`); and while ramps are under way, a decrease the
  allocation asks for only because the meter shows them may wait, as long
  as every zone phase still holds every envelope
  (:func:`decreases_that_may_wait`). The estimate of the building is never
  held below what the meter shows: a rise is always answered at once.

Pure: deciamp integers inside, amps outside, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .model import Allocation, PhaseAmps, Zone
from .tree import ZoneTree
from .units import amps, deciamps_down, deciamps_up


@dataclass(frozen=True, slots=True)
class Budgeted:
    """A connector as the budget counts it: ``envelope_a`` on each of ``phases``.

    ``phases`` are building phase indexes (0 = L1): those a session loads, or
    every phase of the wiring for an idle or disconnected connector.
    """

    key: str
    zone_id: int
    phases: tuple[int, ...]
    envelope_a: float


@dataclass(frozen=True, slots=True)
class Raise:
    """A change that would raise a connector's envelope to ``wanted_a``.

    ``kind`` tells the connector's profiles apart (``"live"``, ``"fallback"``):
    a connector may have a raise of each. ``floor_a``: below it a partial
    raise is pointless (the EV would not charge), so it is not sent at all.
    ``priority``: lower goes first. ``settled_a``: what the connector is settled
    at now (``ConnectorProfiles.settled_a``); a grant not above it is no raise.
    ``ramps``: its EV will ramp up to it from ``ramp_from_a`` (the limit it
    follows now; ``settled_a`` if not given), which a meter sees
    before a sample does: in zones that read a meter the ramp is budgeted on
    top of what the raise adds to the envelope (if anything: a value an EV
    may still draw while following a decrease is a ramp too).
    ``min_step_a``: a part that adds less than this to what the EV follows
    is not worth a profile.
    """

    key: str
    wanted_a: float
    floor_a: float
    priority: int = 0
    kind: str = "live"
    settled_a: float = 0.0
    ramps: bool = False
    min_step_a: float = 0.0
    ramp_from_a: float | None = None


class _Budget:
    """Per zone phase: what is available and what the envelopes already take (deciamps)."""

    def __init__(
        self,
        zones: Iterable[Zone],
        available_a: Mapping[int, PhaseAmps],
        connectors: Iterable[Budgeted],
        kept_free_a: Mapping[int, PhaseAmps] | None = None,
    ) -> None:
        self.tree = ZoneTree(zones)
        kept_free_a = kept_free_a or {}
        self.available = [
            [
                deciamps_down(value) - deciamps_up(free)
                for value, free in zip(
                    available_a.get(zone.zone_id, (0.0, 0.0, 0.0)),
                    kept_free_a.get(zone.zone_id, (0.0, 0.0, 0.0)),
                    strict=True,
                )
            ]
            for zone in self.tree.zones
        ]
        self.used = [[0, 0, 0] for _ in self.tree.zones]
        # A ramp counts twice only where a meter sees it (see the module docstring).
        self.metered = [
            zone.dynamic and zone.meter_current_a is not None for zone in self.tree.zones
        ]
        self.connectors = {connector.key: connector for connector in connectors}
        for connector in self.connectors.values():
            self.add(connector, deciamps_up(connector.envelope_a))

    def chain(self, connector: Budgeted) -> tuple[int, ...]:
        position = self.tree.index.get(connector.zone_id)
        return () if position is None else self.tree.chains[position]

    def add(self, connector: Budgeted, amount_da: int, ramp_da: int = 0) -> None:
        """``amount_da`` more on every zone phase above, and ``ramp_da`` where a meter reads."""
        for zone in self.chain(connector):
            counted_da = amount_da + (ramp_da if self.metered[zone] else 0)
            for phase in connector.phases:
                self.used[zone][phase] += counted_da

    def slack_da(self, connector: Budgeted) -> int:
        """What can still be added on every zone phase ``connector`` counts against."""
        chain = self.chain(connector)
        if not chain:
            return 0  # a connector outside the tree gets nothing
        return min(
            self.available[zone][phase] - self.used[zone][phase]
            for zone in chain
            for phase in connector.phases
        )

    def most_da(self, connector: Budgeted, envelope_da: int, from_da: int) -> int | None:
        """The highest value an EV ramping from ``from_da`` may be given (``None``: none).

        Above the envelope it takes what it adds to it, and where a meter
        reads, what it ramps by as well (see the module docstring).
        """
        chain = self.chain(connector)
        if not chain:
            return None
        most = None
        for zone in chain:
            slack_da = min(self.available[zone][p] - self.used[zone][p] for p in connector.phases)
            if slack_da < 0:
                return None
            if not self.metered[zone]:
                value_da = envelope_da + slack_da
            elif from_da + slack_da <= envelope_da:
                value_da = from_da + slack_da
            else:
                value_da = max(envelope_da, (slack_da + envelope_da + from_da) // 2)
            most = value_da if most is None else min(most, value_da)
        return most

    def ramping(self, connector: Budgeted, ramping_da: list[list[int]]) -> bool:
        return any(
            ramping_da[zone][phase] > 0 for zone in self.chain(connector) for phase in range(3)
        )


def admit_raises(
    zones: Iterable[Zone],
    available_a: Mapping[int, PhaseAmps],
    connectors: Iterable[Budgeted],
    raises: Sequence[Raise],
    *,
    ramping_a: Mapping[int, PhaseAmps] | None = None,
) -> dict[tuple[str, str], float]:
    """The value each raise may be sent with now, by ``(key, kind)`` (absent: not now).

    A raise is a profile above what its connector is settled at (see
    ``raises_envelope``): once sent, the connector counts at the higher of its
    envelope now and the new value, for good. Every connector counts at its
    envelope now (which only comes down with time); raises are taken in
    priority order (then by key), each granted what still fits on every zone
    phase above it, up to what it wants: all of it, or part of it if that part
    reaches its floor. Where the envelopes already exceed the available
    current (a decrease in progress), nothing is granted. After the granted
    raises the envelopes add up, on every zone phase, to at most the available
    current, now and from then on, unless they already exceeded it before.

    ``ramping_a`` (per zone, per phase: ``ZoneAllocation.ramping_a``) is kept
    free, and a raise marked ``ramps`` also takes what its EV ramps by in a
    zone that reads a meter: so the envelopes still fit once the next reading
    counts the ramps as building load (see the module docstring).
    """
    budget = _Budget(zones, available_a, connectors, ramping_a)
    envelope_da = {key: deciamps_up(c.envelope_a) for key, c in budget.connectors.items()}
    granted: dict[tuple[str, str], float] = {}
    for item in sorted(raises, key=lambda r: (r.priority, r.key, r.kind)):
        connector = budget.connectors.get(item.key)
        if connector is None:
            continue
        current_da = envelope_da[item.key]
        settled_da = min(deciamps_down(item.settled_a), current_da)
        from_da = settled_da
        if item.ramp_from_a is not None:
            from_da = min(from_da, deciamps_down(item.ramp_from_a))
        if item.ramps:
            most_da = budget.most_da(connector, current_da, from_da)
        else:
            slack_da = budget.slack_da(connector)
            most_da = None if slack_da < 0 else current_da + slack_da
        if most_da is None:
            continue  # already over (a decrease in progress): nothing more goes there
        wanted_da = deciamps_down(item.wanted_a)
        value_da = min(wanted_da, most_da)
        if value_da < wanted_da and (
            value_da < deciamps_up(item.floor_a)
            or value_da <= from_da
            or value_da - from_da < deciamps_down(item.min_step_a)
        ):
            continue  # a part too small to charge on or to be worth it, or no raise at all
        budget.add(
            connector,
            max(0, value_da - current_da),
            max(0, value_da - from_da) if item.ramps else 0,
        )
        envelope_da[item.key] = max(current_da, value_da)
        granted[(item.key, item.kind)] = item.wanted_a if value_da == wanted_da else amps(value_da)
    return granted


def decreases_that_may_wait(
    zones: Iterable[Zone],
    available_a: Mapping[int, PhaseAmps],
    connectors: Iterable[Budgeted],
    ramping_a: Mapping[int, PhaseAmps],
    decreases: Iterable[str],
) -> set[str]:
    """The connectors among ``decreases`` whose lower setpoint may wait for now.

    While EVs ramp up below a meter (``ramping_a``, see the module
    docstring), the meter counts their ramps as building load until samples
    show them, and the allocation gives less to some sessions for as long:
    lowering them would be undone a few seconds later. A decrease below such
    a zone may wait, but only while every zone phase above the connector
    holds every connector at its envelope (counting it at what it may draw
    now): where one does not, whatever the reason, every decrease below it
    goes at once. Waiting never lets a zone carry more than is available.
    """
    budget = _Budget(zones, available_a, connectors)
    tree = budget.tree
    ramping_da = [
        [deciamps_up(value) for value in ramping_a.get(zone.zone_id, (0.0, 0.0, 0.0))]
        for zone in tree.zones
    ]
    over = [
        any(budget.available[zone][phase] < budget.used[zone][phase] for phase in range(3))
        for zone in range(len(tree.zones))
    ]
    waiting = set()
    for key in decreases:
        connector = budget.connectors.get(key)
        if connector is None:
            continue
        chain = budget.chain(connector)
        if chain and budget.ramping(connector, ramping_da) and not any(over[z] for z in chain):
            waiting.add(key)
    return waiting


@dataclass(frozen=True, slots=True)
class IdleConnector:
    """A connector without a session whose fallback evce may set.

    ``current_a``: the fallback it holds now (``None``: not known).
    ``offline_a``: its offline current, the most its fallback may be (SPEC §3.8).
    """

    key: str
    zone_id: int
    phases: tuple[int, ...]
    offline_a: float
    floor_a: float
    current_a: float | None


def fallback_targets(
    zones: Iterable[Zone],
    headroom_a: Mapping[int, PhaseAmps],
    idle: Iterable[IdleConnector],
    *,
    deadband_a: float = 1.0,
) -> dict[str, float]:
    """The fallback of each idle connector, from what the sessions leave free.

    ``headroom_a`` is, per zone, what is left after sessions and reserves (the
    allocation's ``headroom_a``). Current fallbacks that still fit within
    their offline current are kept first; then connectors are served by key:
    each is raised only by at least ``deadband_a`` (building loads move all
    the time; fallbacks need not follow every amp), and one whose fallback no
    longer fits gets what does, 0 when that is below its floor. Below a
    meter a raise must fit twice: an EV nobody knows of (a lost
    StartTransaction) draws it, and the meter then counts it as building
    load too, for as long as it charges. The fallbacks granted add up to at
    most the headroom on every zone phase.
    """
    tree = ZoneTree(zones)
    free = [
        [deciamps_down(max(0.0, value)) for value in headroom_a.get(zone.zone_id, (0.0, 0.0, 0.0))]
        for zone in tree.zones
    ]
    deadband_da = deciamps_down(deadband_a)
    metered = [zone.dynamic and zone.meter_current_a is not None for zone in tree.zones]
    ordered = sorted(idle, key=lambda item: item.key)
    chains = {}
    for connector in ordered:
        position = tree.index.get(connector.zone_id)
        chains[connector.key] = () if position is None else tree.chains[position]
    # Fallbacks that still fit are kept first: raising one connector's
    # fallback must not lower another's (its EV, if any, would swing).
    kept_da: dict[str, int] = {}
    for connector in ordered:
        chain = chains[connector.key]
        if not chain or connector.current_a is None:
            continue
        current_da = deciamps_down(connector.current_a)
        fits_da = min(free[zone][phase] for zone in chain for phase in connector.phases)
        if current_da <= min(fits_da, deciamps_down(connector.offline_a)):
            kept_da[connector.key] = current_da
            _take(free, chain, connector.phases, current_da)
    targets: dict[str, float] = {}
    for connector in ordered:
        chain = chains[connector.key]
        if not chain:
            targets[connector.key] = 0.0
            continue
        own_da = kept_da.get(connector.key, 0)
        fits_da = own_da + min(
            free[zone][phase] // (2 if metered[zone] else 1)
            for zone in chain
            for phase in connector.phases
        )
        best_da = min(deciamps_down(connector.offline_a), fits_da)
        if best_da < deciamps_up(connector.floor_a):
            best_da = 0
        value_da = best_da
        if connector.key in kept_da and best_da - own_da < deadband_da:
            value_da = own_da
        _take(free, chain, connector.phases, value_da - own_da)
        targets[connector.key] = amps(value_da)
    return targets


def session_fallback_a(
    current_a: float | None, offline_a: float, live_a: float, *, deadband_a: float = 1.0
) -> float:
    """The fallback a connector with a session should hold.

    Its offline current (what keeps its EV charging if evce goes, SPEC §3.8),
    but never above its live setpoint, so that the live profile lapsing or its
    transaction ending never lets the connector draw more than the budget
    counts for it. Lowered at once when needed; raised back only by at least
    ``deadband_a``, so a session's small raises cost no extra profiles.
    """
    ceiling_a = min(offline_a, live_a)
    if current_a is None or current_a > ceiling_a:
        return ceiling_a
    if deciamps_down(ceiling_a) - deciamps_down(current_a) >= deciamps_down(deadband_a):
        return ceiling_a
    return current_a


@dataclass(frozen=True, slots=True)
class Change:
    """One profile to send: ``kind`` ``"live"`` (the session's setpoint) or ``"fallback"``.

    ``"clear_live"`` clears whatever live profile a connector without a session
    may hold (``value_a`` 0).

    ``priority`` orders raises (lower first); ``floor_a`` is the least worth
    sending when a raise can only be granted in part.
    """

    key: str
    kind: str
    value_a: float
    priority: int = 0
    floor_a: float = 0.0
    held: bool = False


def _take(free: list[list[int]], chain: tuple[int, ...], phases: tuple[int, ...], da: int) -> None:
    for zone in chain:
        for phase in phases:
            free[zone][phase] -= da


@dataclass(frozen=True, slots=True)
class HeldConnector:
    """A connector that did not follow evce: what to ask of it again (``None``: nothing).

    ``clear_live``: it has no session, yet may hold a live profile nobody
    knows of (its station has just connected): have the station clear it.
    """

    key: str
    fallback_a: float | None = None
    live_a: float | None = None
    clear_live: bool = False


FALLBACK_PRIORITY = 10**6
"""Fallbacks are raised after every session: a car that is not there can wait."""


def plan_changes(
    zones: Iterable[Zone],
    allocation: Allocation,
    *,
    live_due: Iterable[str],
    idle: Iterable[IdleConnector],
    session_fallbacks: Mapping[str, tuple[float | None, float, float | None]],
    held: Iterable[HeldConnector],
    deadband_a: float,
    floor_of: Mapping[str, float],
) -> list[Change]:
    """Every profile an allocation needs.

    - the live setpoint of each session in ``live_due`` (changed, or its lease
      to renew), VIP sessions and better ranks first;
    - fallbacks: for idle connectors from the headroom the allocation leaves
      (:func:`fallback_targets`), for sessions within their new setpoint
      (:func:`session_fallback_a`; ``session_fallbacks`` gives each session's
      current fallback, offline current and live setpoint in force, if any),
      sent when they differ from what the station holds;
    - what held connectors are asked again.

    ``floor_of`` gives an idle connector's floor (the least a partial raise is
    worth).
    """
    due = set(live_due)
    changes: list[Change] = []
    for item in allocation.sessions:
        if item.key in due:
            priority = item.rank - 10**5 if item.vip else item.rank
            changes.append(Change(item.key, "live", item.setpoint_a, priority, item.floor_a))
    idle = list(idle)
    current = {connector.key: connector.current_a for connector in idle}
    # Idle fallbacks get what is left once raised EVs have room to ramp.
    targets = fallback_targets(
        zones,
        {
            zone.zone_id: tuple(
                room - kept
                for room, kept in zip(zone.headroom_a, zone.kept_for_ramps_a, strict=True)
            )
            for zone in allocation.zones
        },
        idle,
        deadband_a=deadband_a,
    )
    for item in allocation.sessions:
        if item.key in session_fallbacks:
            current_a, offline_a, live_a = session_fallbacks[item.key]
            current[item.key] = current_a
            # Never above the live setpoint in force either: a raise may wait.
            ceiling_a = item.setpoint_a if live_a is None else min(item.setpoint_a, live_a)
            targets[item.key] = session_fallback_a(
                current_a, offline_a, ceiling_a, deadband_a=deadband_a
            )
    for key in sorted(targets):
        held_a = current.get(key)
        if held_a is None or deciamps_down(targets[key]) != deciamps_down(held_a):
            changes.append(
                Change(key, "fallback", targets[key], FALLBACK_PRIORITY, floor_of.get(key, 0.0))
            )
    for connector in sorted(held, key=lambda item: item.key):
        if connector.fallback_a is not None:
            changes.append(Change(connector.key, "fallback", connector.fallback_a, held=True))
        if connector.live_a is not None:
            changes.append(Change(connector.key, "live", connector.live_a, -(10**6), held=True))
        if connector.clear_live:
            changes.append(Change(connector.key, "clear_live", 0.0, -(10**6), held=True))
    return changes


def raises_envelope(value_a: float, settled_a: float) -> bool:
    """True when a profile of ``value_a`` would let its connector draw more than it may.

    ``settled_a`` is the connector's envelope without what is about to expire
    (``ConnectorProfiles.settled_a``): re-sending a value the connector only
    holds for a few more seconds would keep it there for good.
    """
    return deciamps_down(value_a) > deciamps_up(settled_a)
