"""The allocator's entry point: one :class:`SiteSnapshot` in, one :class:`Allocation` out.

Steps: index the zone tree; compute each zone phase's available current and
subtract the reserves below it; update the priority ranking; set aside sessions
that cannot charge (unknown zone, idle, connector below the floor) and cap the
others by their connector and their measured demand; admit and water-fill VIP
sessions, then the others (``fairness``); keep last setpoints within the
deadband where no limit suffers (``deadband``); report.

Sums over a zone's subtree are first made per zone, then added to each ancestor,
so the cost grows with sessions + zones × depth rather than sessions × depth.
"""

from __future__ import annotations

import itertools
import math
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
    Reason,
    Session,
    SessionAllocation,
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
    now_s = site.now_s
    tree = ZoneTree(site.zones)
    zone_count = len(tree)
    sessions = sorted(site.sessions, key=attrgetter("connector.key"))
    for previous, current in itertools.pairwise(sessions):
        if previous.connector.key == current.connector.key:
            raise ValueError(f"duplicate session for connector {current.connector.key}")

    # One pass over the sessions: where each one is, its bounds and its demand.
    # A session either becomes a claim on the grid or is set aside at 0.
    zone_voltage_v = [
        tree.voltage_v(zone, settings.nominal_voltage_v) for zone in range(zone_count)
    ]
    floor_da = {count: deciamps_up(settings.floor_a(count)) for count in (1, 2, 3)}
    phases_of: dict[tuple[PhaseWiring, int | None, CurrentType], tuple[int, ...]] = {}
    constraints_of: dict[tuple[int, tuple[int, ...]], tuple[int, ...]] = {}
    measured = [[0, 0, 0] for _ in range(zone_count)]
    # Sampled above the setpoint in force: current the EVs are about to give back.
    excess = [[0, 0, 0] for _ in range(zone_count)]
    ramping = [[0, 0, 0] for _ in range(zone_count)]
    zone_of: list[int | None] = []
    voltage_of: list[float] = []
    connector_max_da: list[int] = []
    idle_since: list[float | None] = []
    optimising = settings.optimisation_enabled
    all_claims: list[Claim] = []
    vip_claims: list[Claim] = []
    other_claims: list[Claim] = []
    for position, session in enumerate(sessions):
        connector = session.connector
        zone = tree.index.get(connector.zone_id)
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
            # A raised setpoint the EV may be ramping up to (``ramp_current_a``)
            # is not counted as drawn: the EV may still be on its sample. It is
            # only what a ramp hold may explain (see ``capacity.other_loads_da``).
            reading = session.measured_current_a
            ramp = session.ramp_current_a
            if reading is not None or ramp is not None:
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
        max_da = deciamps_down(connector_max_current_a(session, voltage_v))
        zone_of.append(zone)
        voltage_of.append(voltage_v)
        connector_max_da.append(max_da)
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
        idle_since.append(since_s)
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

    # A reserved connector's measured draw is its own share of the meter too.
    for reserve in site.reserves:
        reserve_zone = tree.index.get(reserve.zone_id)
        if reserve_zone is not None and reserve.measured_current_a is not None:
            direct = measured[reserve_zone]
            for phase in range(3):
                if reserve.measured_current_a[phase] > 0:
                    direct[phase] += min(
                        deciamps_down(reserve.measured_current_a[phase]),
                        deciamps_down(reserve.current_a[phase]),
                    )

    # Capacity of each zone phase, then what is left after reserves.
    measured_below = _roll_up(measured, tree)
    excess_below = _roll_up(excess, tree)
    ramping_below = _roll_up(ramping, tree)
    capacities: list[ZoneCapacity] = [
        zone_capacity(
            zone_input,
            measured_below[position],
            settings.production_mode,
            excess_below_da=excess_below[position],
            ramping_below_da=ramping_below[position],
            chain_has_production_meter=any(
                tree.zones[ancestor].has_production_meter for ancestor in tree.chains[position]
            ),
        )
        for position, zone_input in enumerate(tree.zones)
    ]
    reserved_direct = [[0, 0, 0] for _ in range(zone_count)]
    for reserve in site.reserves:
        reserve_zone = tree.index.get(reserve.zone_id)
        if reserve_zone is None:
            raise ValueError(f"reserve {reserve.key!r} is in unknown zone {reserve.zone_id}")
        for phase in range(3):
            reserved_direct[reserve_zone][phase] += deciamps_up(reserve.current_a[phase])
    reserved = _roll_up(reserved_direct, tree)
    headroom = [
        max(0, capacities[zone].available_da[phase] - reserved[zone][phase])
        for zone in range(zone_count)
        for phase in range(3)
    ]

    signature = capacity_signature([zone.zone_id for zone in tree.zones], capacities)
    ranking, reranked = update_ranking(
        sessions,
        settings.priority,
        site.previous_ranking,
        now_s=now_s,
        capacity_signature=signature,
        capacity_changed=site.capacity_changed,
        rerank_interval_s=settings.rerank_interval_s,
    )
    rank_of = {key: rank for rank, key in enumerate(ranking.keys)}

    # VIP sessions first, each class in ranking order.
    vip_claims.sort(key=lambda claim: rank_of[claim.key])
    other_claims.sort(key=lambda claim: rank_of[claim.key])
    imbalance_limits = {
        position: deciamps_down(zone.phase_imbalance_limit_a)
        for position, zone in enumerate(tree.zones)
        if zone.phase_imbalance_limit_a is not None
    }
    grid = Grid(headroom, imbalance_limits, [capacity.meter_lost for capacity in capacities])
    fill(admit(vip_claims, grid), grid)
    fill(admit(other_claims, grid), grid)

    last_da = [
        None if session.last_setpoint_a is None else deciamps_down(session.last_setpoint_a)
        for session in sessions
    ]
    held = apply_deadband(
        vip_claims + other_claims,
        last_da,
        connector_max_da,
        grid,
        deciamps_down(settings.deadband_a),
    )

    # Outputs.
    allocated_direct = [[0, 0, 0] for _ in range(zone_count)]
    sessions_direct = [[0, 0, 0] for _ in range(zone_count)]  # [sessions, charging, unused]
    results: list[SessionAllocation] = []
    zone_ids = [zone.zone_id for zone in tree.zones]
    labels = {phases: tuple(_PHASES[phase] for phase in phases) for phases in phases_of.values()}
    for session, claim in zip(sessions, all_claims, strict=True):
        position = claim.position
        value_da = claim.value_da
        zone = zone_of[position]
        if zone is not None:
            counts = sessions_direct[zone]
            counts[0] += 1
            if value_da > 0:
                counts[1] += 1
                direct = allocated_direct[zone]
                for phase in claim.phases:
                    direct[phase] += value_da
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

    allocated = _roll_up(allocated_direct, tree)
    counted = _roll_up(sessions_direct, tree)
    zones: list[ZoneAllocation] = []
    for position, zone_input in enumerate(tree.zones):
        capacity = capacities[position]
        available = capacity.available_da
        free = [
            max(0, available[p] - reserved[position][p] - allocated[position][p]) for p in range(3)
        ]
        grid_part = [max(0, available[p] - capacity.production_da[p]) for p in range(3)]
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
                ramping=any(ramping_below[position]),
            )
        )

    return Allocation(
        now_s=now_s,
        sessions=tuple(results),
        zones=tuple(zones),
        ranking=ranking,
        reranked=reranked,
    )


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
