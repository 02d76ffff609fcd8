"""The allocator's entry point: one :class:`SiteSnapshot` in, one :class:`Allocation` out.

:func:`allocate` reads as its steps: put the sessions in key order; measure
what the chargers below each zone draw; bound each session by its floor, its
connector and its demand (or set it aside at 0: unknown zone, idle, connector
below the floor); compute each zone phase's capacity and subtract the reserves
below it; update the priority ranking; admit and water-fill VIP sessions, then
the others (``fairness``); keep last setpoints within the deadband where no
limit suffers (``deadband``); report setpoints with reasons and zone figures.

Sums over a zone's subtree are first made per zone, then added to each ancestor,
so the cost grows with sessions + zones × depth rather than sessions × depth.
The steps that visit every session are single loops with the per-session work
inlined: the allocator runs every control tick for up to a thousand sessions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter

from .capacity import ZoneCapacity, capacity_signature, effective_reduction_percent, zone_capacity
from .deadband import apply_deadband
from .demand import demand_cap_da, idle_state, measured_draw_a
from .fairness import Claim, Grid, admit, constraint_indexes, fill
from .model import (
    Allocation,
    CurrentType,
    Phase,
    PhaseAmps,
    PhaseWiring,
    Ranking,
    Reason,
    Reserve,
    Session,
    SessionAllocation,
    SiteSettings,
    SiteSnapshot,
    ZoneAllocation,
    loaded_phases,
)
from .ranking import update_ranking
from .tree import ZoneTree
from .units import (
    DECIAMPS_PER_AMP,
    TOLERANCE_DA,
    amps,
    current_to_power_w,
    deciamps_down,
    deciamps_up,
)

_PHASES = (Phase.L1, Phase.L2, Phase.L3)


def connector_max_current_a(session: Session, voltage_v: float) -> float:
    """A connector's maximum current per phase: as rated for AC, from power for DC."""
    connector = session.connector
    if connector.current_type is CurrentType.DC:
        assert connector.max_power_w is not None
        return connector.max_power_w / (voltage_v * len(connector.wiring.building_phases))
    assert connector.max_current_a is not None
    return connector.max_current_a


def _roll_up(per_zone: list[list[int]], tree: ZoneTree) -> list[list[int]]:
    """Per-phase totals of each zone's subtree from per-zone values."""
    totals = [[0, 0, 0] for _ in range(len(tree))]
    for zone, values in enumerate(per_zone):
        if values[0] or values[1] or values[2]:
            for ancestor in tree.chains[zone]:
                total = totals[ancestor]
                total[0] += values[0]
                total[1] += values[1]
                total[2] += values[2]
    return totals


def _per_phase(values: list[int] | tuple[int, int, int]) -> PhaseAmps:
    return (amps(values[0]), amps(values[1]), amps(values[2]))


def allocate(site: SiteSnapshot) -> Allocation:
    """Compute a setpoint and its reason for every session of ``site``.

    Guarantees, whatever the input:

    - for every zone and phase, the setpoints of the sessions below it (on the
      phases each loads) plus the reserves below it never exceed the zone's
      available current (SPEC §3.2); where reserves alone exceed it, everything
      below gets 0;
    - a setpoint is 0 or between the session's floor and its connector maximum,
      and a multiple of 0.1 A;
    - VIP sessions are admitted and raised before any other session; shedding
      follows the ranking; the rest is max-min fair (see ``fairness``);
    - a zone's phase-imbalance limit holds for the sum of setpoints;
    - the result depends only on the snapshot, not on the order of its items.

    Raises ``ValueError`` for an inconsistent zone tree, duplicate session keys or
    a reserve in an unknown zone; a session in an unknown zone gets 0.
    """
    settings = site.settings
    tree = ZoneTree(site.zones)
    sessions = _sessions_by_key(site.sessions)
    # Each session's zone position; ``None``: an unknown zone, where it gets 0.
    zone_of = [tree.index.get(session.connector.zone_id) for session in sessions]
    draws = _measure_draws(sessions, zone_of, site.reserves, tree)
    claims = _claims(sessions, zone_of, tree, settings, site.now_s)
    capacities = _zone_capacities(tree, draws, settings)
    reserved = _reserved(site.reserves, tree)
    ranking, reranked = _rank(sessions, site, tree, capacities)
    rank_of = {key: rank for rank, key in enumerate(ranking.keys)}
    grid = _fair_shares(claims, rank_of, capacities, reserved, tree)
    room = _room_to_start(sessions, claims, zone_of, capacities, tree)
    if room is not None:
        # Sessions being started below a meter need room for their ramp: the
        # others leave it, and who gets what is worked out again with it held.
        reserved = [
            [r + extra for r, extra in zip(a, b, strict=True)]
            for a, b in zip(reserved, room, strict=True)
        ]
        claims = _claims(sessions, zone_of, tree, settings, site.now_s)
        grid = _fair_shares(claims, rank_of, capacities, reserved, tree)
    last_da, held = _hold_within_deadband(claims, sessions, grid, settings)
    return Allocation(
        now_s=site.now_s,
        sessions=_setpoints(sessions, claims, last_da, held, rank_of, tree),
        zones=_zone_figures(claims, zone_of, capacities, reserved, draws, tree, last_da),
        ranking=ranking,
        reranked=reranked,
    )


@dataclass(frozen=True, slots=True)
class _Draws:
    """What the chargers below each zone draw, per zone and phase (deciamps).

    Subtree totals: ``measured`` counts each session's reading at most at its
    setpoint in force; ``excess`` is what samples show above it (current the
    EVs are about to give back); ``ramping`` the part of raised setpoints EVs
    may already draw though no sample shows it.
    """

    measured: list[list[int]]
    excess: list[list[int]]
    ramping: list[list[int]]


@dataclass(slots=True)
class _Claims:
    """Every session's claim on the grid, by position, and what the outputs need of it.

    ``vip`` and ``other`` hold the claims that may charge (the others stay at 0
    with the reason they were set aside for).
    """

    by_position: list[Claim] = field(default_factory=list)
    vip: list[Claim] = field(default_factory=list)
    other: list[Claim] = field(default_factory=list)
    voltage_v: list[float] = field(default_factory=list)
    connector_max_da: list[int] = field(default_factory=list)
    idle_since_s: list[float | None] = field(default_factory=list)
    phase_labels: dict[tuple[int, ...], tuple[Phase, ...]] = field(default_factory=dict)


def _sessions_by_key(sessions: Iterable[Session]) -> list[Session]:
    """Sessions in connector-key order, so the result never depends on the input order."""
    ordered = sorted(sessions, key=attrgetter("connector.key"))
    for previous, current in itertools.pairwise(ordered):
        if previous.connector.key == current.connector.key:
            raise ValueError(f"duplicate session for connector {current.connector.key}")
    return ordered


def _measure_draws(
    sessions: list[Session],
    zone_of: list[int | None],
    reserves: Iterable[Reserve],
    tree: ZoneTree,
) -> _Draws:
    """Measure what the chargers below each zone draw: the meter minus it is the building."""
    zone_count = len(tree)
    measured = [[0, 0, 0] for _ in range(zone_count)]
    excess = [[0, 0, 0] for _ in range(zone_count)]
    ramping = [[0, 0, 0] for _ in range(zone_count)]
    for session, zone in zip(sessions, zone_of, strict=True):
        # A raised setpoint the EV may be ramping up to (``ramp_current_a``)
        # is not counted as drawn: the EV may still be on its sample. What it
        # may add to the meter is reported (``ZoneAllocation.ramping_a``).
        reading = session.measured_current_a
        ramp = session.ramp_current_a
        if zone is None or (reading is None and ramp is None):
            continue
        cap_da = _setpoint_cap_da(session)
        counted = _counted_da(reading, cap_da)
        direct = measured[zone]
        direct[0] += counted[0]
        direct[1] += counted[1]
        direct[2] += counted[2]
        if ramp is not None:
            ramping_direct = ramping[zone]
            for phase in range(3):
                if ramp[phase] > 0:
                    ramping_direct[phase] += max(
                        0, min(deciamps_down(ramp[phase]), cap_da) - counted[phase]
                    )
        if reading is not None and (
            counted[0] == cap_da or counted[1] == cap_da or counted[2] == cap_da
        ):
            above = _counted_da(reading, 10**9)
            over = excess[zone]
            over[0] += above[0] - counted[0]
            over[1] += above[1] - counted[1]
            over[2] += above[2] - counted[2]
    # A reserved connector's measured draw is its own share of the meter too.
    for reserve in reserves:
        reserve_zone = tree.index.get(reserve.zone_id)
        if reserve_zone is not None and reserve.measured_current_a is not None:
            direct = measured[reserve_zone]
            for phase in range(3):
                if reserve.measured_current_a[phase] > 0:
                    direct[phase] += min(
                        deciamps_down(reserve.measured_current_a[phase]),
                        deciamps_down(reserve.current_a[phase]),
                    )
    return _Draws(_roll_up(measured, tree), _roll_up(excess, tree), _roll_up(ramping, tree))


def _claims(
    sessions: list[Session],
    zone_of: list[int | None],
    tree: ZoneTree,
    settings: SiteSettings,
    now_s: float,
) -> _Claims:
    """Bound each session by its floor, its connector and its demand, or set it aside at 0."""
    claims = _Claims()
    zone_voltage_v = [tree.voltage_v(zone, settings.nominal_voltage_v) for zone in range(len(tree))]
    floor_da = {count: deciamps_up(settings.floor_a(count)) for count in (1, 2, 3)}
    phases_of: dict[tuple[PhaseWiring, int | None, CurrentType], tuple[int, ...]] = {}
    constraints_of: dict[tuple[int, tuple[int, ...]], tuple[int, ...]] = {}
    optimising = settings.optimisation_enabled
    all_claims, vip_claims, other_claims = claims.by_position, claims.vip, claims.other
    for position, (session, zone) in enumerate(zip(sessions, zone_of, strict=True)):
        connector = session.connector
        shape = (connector.wiring, session.ev_phases, connector.current_type)
        phases = phases_of.get(shape)
        if phases is None:
            phases = loaded_phases(connector.wiring, session.ev_phases, connector.current_type)
            phases_of[shape] = phases
        chain: tuple[int, ...] = ()
        constraints: tuple[int, ...] = ()
        voltage_v = settings.nominal_voltage_v
        if zone is not None:
            chain = tree.chains[zone]
            voltage_v = zone_voltage_v[zone]
            cached = constraints_of.get((zone, phases))
            if cached is None:
                cached = constraint_indexes(chain, phases)
                constraints_of[(zone, phases)] = cached
            constraints = cached
        max_da = deciamps_down(connector_max_current_a(session, voltage_v))
        claims.voltage_v.append(voltage_v)
        claims.connector_max_da.append(max_da)
        claim = Claim(
            position,
            connector.key,
            floor_da[len(phases)],
            max_da,
            Reason.CONNECTOR_MAX,
            chain,
            phases,
            constraints,
        )
        all_claims.append(claim)
        draw_a = measured_draw_a(session, phases)
        since_s, suspended = idle_state(session, draw_a, now_s=now_s, settings=settings)
        claims.idle_since_s.append(since_s)
        if zone is None:
            claim.set_reason(Reason.INVALID_INPUT)
        elif suspended:
            claim.set_reason(Reason.IDLE_SUSPENDED)
        elif max_da < claim.floor_da:
            claim.set_reason(Reason.CONNECTOR_MAX)
        else:
            demand_da = None
            if optimising and session.last_setpoint_a:
                demand_da = demand_cap_da(
                    session, draw_a, floor_da=claim.floor_da, now_s=now_s, settings=settings
                )
            if demand_da is not None and demand_da < max_da:
                claim.cap_da = demand_da
                claim.cap_reason = Reason.EV_DEMAND
            (vip_claims if session.vip else other_claims).append(claim)
    claims.phase_labels = {
        phases: tuple(_PHASES[phase] for phase in phases) for phases in phases_of.values()
    }
    return claims


def _zone_capacities(tree: ZoneTree, draws: _Draws, settings: SiteSettings) -> list[ZoneCapacity]:
    """Each zone phase's available current (SPEC §3.2), from its limit and its meters."""
    return [
        zone_capacity(
            zone_input,
            draws.measured[position],
            settings.production_mode,
            excess_below_da=draws.excess[position],
            chain_has_production_meter=any(
                tree.zones[ancestor].has_production_meter for ancestor in tree.chains[position]
            ),
        )
        for position, zone_input in enumerate(tree.zones)
    ]


def _reserved(reserves: Iterable[Reserve], tree: ZoneTree) -> list[list[int]]:
    """The current reserved below each zone phase: held back before any session gets a share."""
    reserved_direct = [[0, 0, 0] for _ in range(len(tree))]
    for reserve in reserves:
        reserve_zone = tree.index.get(reserve.zone_id)
        if reserve_zone is None:
            raise ValueError(f"reserve {reserve.key!r} is in unknown zone {reserve.zone_id}")
        for phase in range(3):
            reserved_direct[reserve_zone][phase] += deciamps_up(reserve.current_a[phase])
    return _roll_up(reserved_direct, tree)


def _room_to_start(
    sessions: list[Session],
    claims: _Claims,
    zone_of: list[int | None],
    capacities: list[ZoneCapacity],
    tree: ZoneTree,
) -> list[list[int]] | None:
    """Per zone phase, the floors of the sessions this allocation starts below a meter.

    A session whose station holds it below its floor (and whose sample shows
    it drawing less) is not charging yet;
    once raised, its EV ramps up, which a meter sees before a sample does:
    for a few seconds the ramp counts as building load on top of the
    setpoint (``transition.admit_raises`` budgets it so). Without room for
    that, a zone the others fill could never start it. ``None``: no such
    session.
    """
    room_direct = [[0, 0, 0] for _ in range(len(tree))]
    found = False
    for session, claim, zone in zip(sessions, claims.by_position, zone_of, strict=True):
        limit_a = session.station_limit_a
        if zone is None or limit_a is None or claim.value_da <= 0:
            continue
        if deciamps_down(limit_a) >= claim.floor_da:
            continue
        drawn = session.measured_current_a
        if drawn is not None and deciamps_down(max(drawn)) >= claim.floor_da:
            continue  # its EV is charging already
        if all(capacities[z].other_loads_da is None for z in tree.chains[zone]):
            continue  # no meter above it counts the ramp
        for phase in claim.phases:
            room_direct[zone][phase] += claim.floor_da
        found = True
    if not found:
        return None
    rolled = _roll_up(room_direct, tree)
    # Only where a meter reads does a ramp count twice.
    return [
        room if capacities[z].other_loads_da is not None else [0, 0, 0]
        for z, room in enumerate(rolled)
    ]


def _rank(
    sessions: list[Session], site: SiteSnapshot, tree: ZoneTree, capacities: list[ZoneCapacity]
) -> tuple[Ranking, bool]:
    """Rank sessions for shedding, keeping the last ranking unless capacity or sessions changed."""
    settings = site.settings
    return update_ranking(
        sessions,
        settings.priority,
        site.previous_ranking,
        now_s=site.now_s,
        capacity_signature=capacity_signature([zone.zone_id for zone in tree.zones], capacities),
        capacity_changed=site.capacity_changed,
        rerank_interval_s=settings.rerank_interval_s,
    )


def _fair_shares(
    claims: _Claims,
    rank_of: dict[str, int],
    capacities: list[ZoneCapacity],
    reserved: list[list[int]],
    tree: ZoneTree,
) -> Grid:
    """Admit and water-fill VIP sessions first, then the others, each class in ranking order."""
    claims.vip.sort(key=lambda claim: rank_of[claim.key])
    claims.other.sort(key=lambda claim: rank_of[claim.key])
    headroom = [
        max(0, capacities[zone].available_da[phase] - reserved[zone][phase])
        for zone in range(len(tree))
        for phase in range(3)
    ]
    imbalance_limits = {
        position: deciamps_down(zone.phase_imbalance_limit_a)
        for position, zone in enumerate(tree.zones)
        if zone.phase_imbalance_limit_a is not None
    }
    grid = Grid(headroom, imbalance_limits, [capacity.meter_lost for capacity in capacities])
    fill(admit(claims.vip, grid), grid)
    fill(admit(claims.other, grid), grid)
    return grid


def _hold_within_deadband(
    claims: _Claims, sessions: list[Session], grid: Grid, settings: SiteSettings
) -> tuple[list[int | None], set[int]]:
    """Keep last setpoints that moved less than the deadband, so stations are not flooded."""
    last_da = [
        None if session.last_setpoint_a is None else deciamps_down(session.last_setpoint_a)
        for session in sessions
    ]
    held = apply_deadband(
        claims.vip + claims.other,
        last_da,
        claims.connector_max_da,
        grid,
        deciamps_down(settings.deadband_a),
    )
    return last_da, held


def _setpoints(
    sessions: list[Session],
    claims: _Claims,
    last_da: list[int | None],
    held: set[int],
    rank_of: dict[str, int],
    tree: ZoneTree,
) -> tuple[SessionAllocation, ...]:
    """Each session's setpoint with its reason, the limit behind it and whether to send it."""
    zone_ids = [zone.zone_id for zone in tree.zones]
    labels = claims.phase_labels
    voltage_of = claims.voltage_v
    idle_since = claims.idle_since_s
    results: list[SessionAllocation] = []
    for session, claim in zip(sessions, claims.by_position, strict=True):
        position = claim.position
        value_da = claim.value_da
        setpoint_a = value_da / DECIAMPS_PER_AMP
        setpoint_w = None
        connector = session.connector
        if connector.current_type is CurrentType.DC:
            supply_phases = len(connector.wiring.building_phases)
            power_w = current_to_power_w(setpoint_a, supply_phases, voltage_of[position])
            setpoint_w = float(math.floor(power_w))
        results.append(
            SessionAllocation(  # positional: the field order of SessionAllocation
                claim.key,
                setpoint_a,
                setpoint_w,
                claim.reason,
                None if claim.limit_zone is None else zone_ids[claim.limit_zone],
                None if claim.limit_phase is None else _PHASES[claim.limit_phase],
                labels[claim.phases],
                claim.floor_da / DECIAMPS_PER_AMP,
                claim.cap_da / DECIAMPS_PER_AMP,
                session.vip,
                rank_of[claim.key],
                last_da[position] != value_da,
                position in held,
                idle_since[position],
            )
        )
    return tuple(results)


def _zone_figures(
    claims: _Claims,
    zone_of: list[int | None],
    capacities: list[ZoneCapacity],
    reserved: list[list[int]],
    draws: _Draws,
    tree: ZoneTree,
    last_da: list[int | None],
) -> tuple[ZoneAllocation, ...]:
    """What each zone has, gives and keeps free: the figures operators read."""
    zone_count = len(tree)
    allocated_direct = [[0, 0, 0] for _ in range(zone_count)]
    raising_direct = [[0, 0, 0] for _ in range(zone_count)]
    sessions_direct = [[0, 0, 0] for _ in range(zone_count)]  # [sessions, charging, unused]
    for claim, zone, before_da in zip(claims.by_position, zone_of, last_da, strict=True):
        if zone is not None:
            counts = sessions_direct[zone]
            counts[0] += 1
            value_da = claim.value_da
            if value_da > 0:
                counts[1] += 1
                direct = allocated_direct[zone]
                raised_da = value_da - (before_da or 0)
                for phase in claim.phases:
                    direct[phase] += value_da
                    if raised_da > 0:
                        raising_direct[zone][phase] += raised_da
    allocated = _roll_up(allocated_direct, tree)
    raising = _roll_up(raising_direct, tree)
    counted = _roll_up(sessions_direct, tree)
    zones: list[ZoneAllocation] = []
    for position, zone_input in enumerate(tree.zones):
        capacity = capacities[position]
        available = capacity.available_da
        free = [
            max(0, available[p] - reserved[position][p] - allocated[position][p]) for p in range(3)
        ]
        grid_part = [max(0, available[p] - capacity.production_da[p]) for p in range(3)]
        metered = capacity.other_loads_da is not None
        zones.append(
            ZoneAllocation(
                zone_id=zone_input.zone_id,
                limit_a=amps(capacity.limit_da),
                reduction_percent=effective_reduction_percent(zone_input),
                meter_lost=capacity.meter_lost,
                production_lost=capacity.production_lost,
                other_loads_a=(
                    None if capacity.other_loads_da is None else _per_phase(capacity.other_loads_da)
                ),
                production_a=_per_phase(capacity.production_da),
                grid_available_a=_per_phase(grid_part),
                available_a=_per_phase(available),
                reserved_a=_per_phase(reserved[position]),
                allocated_a=_per_phase(allocated[position]),
                headroom_a=_per_phase(free),
                session_count=counted[position][0],
                charging_count=counted[position][1],
                held_meter_current_a=(
                    None if capacity.held_meter_da is None else _per_phase(capacity.held_meter_da)
                ),
                ramping_a=_per_phase(draws.ramping[position] if metered else (0, 0, 0)),
                kept_for_ramps_a=_per_phase(
                    [draws.ramping[position][p] + raising[position][p] for p in range(3)]
                    if metered
                    else (0, 0, 0)
                ),
            )
        )
    return tuple(zones)


_floor = math.floor


def _counted_da(reading: PhaseAmps | None, cap_da: int) -> tuple[int, int, int]:
    """What a session's reading counts for in its meter, per phase (deciamps)."""
    if reading is None:
        return (0, 0, 0)
    l1, l2, l3 = reading
    # deciamps_down, inlined: this runs for every session of every allocation.
    return (
        min(_floor(l1 * DECIAMPS_PER_AMP + TOLERANCE_DA), cap_da) if l1 > 0 else 0,
        min(_floor(l2 * DECIAMPS_PER_AMP + TOLERANCE_DA), cap_da) if l2 > 0 else 0,
        min(_floor(l3 * DECIAMPS_PER_AMP + TOLERANCE_DA), cap_da) if l3 > 0 else 0,
    )


def _setpoint_cap_da(session: Session) -> int:
    """The most a session's reading may count for: the setpoint it was on.

    Stations report their current every few seconds, meters twice a second: a
    reading above the setpoint predates it. Counting the EV's share of the
    meter at no more than its setpoint keeps a stale high reading from
    hiding the building's own load (which would over-allocate); counting it
    lower only ever makes the building look heavier, the safe side. The
    setpoint is the one in force when the meters were read
    (``drawing_cap_a``): a reading taken before a station accepted a lower
    setpoint still shows its EV on the higher one, and counting it at the
    lower one would take the EV's own current for building load and shed
    sessions for nothing.

    A DC session is capped alike: its reading is its AC input and its
    ``last_setpoint_a`` the AC equivalent of its power setpoint (see
    :class:`Session`), per phase of its supply.
    """
    cap_a = session.drawing_cap_a if session.drawing_cap_a is not None else session.last_setpoint_a
    if cap_a is None:
        return 10**9
    return deciamps_down(cap_a)
