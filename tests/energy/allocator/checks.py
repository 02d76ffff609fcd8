"""Independent checks of an allocation against its site.

The expected figures are recomputed here in plain floats from SPEC §3, not with
the allocator's own helpers, so a mistake in the allocator is not mirrored.
"""

from __future__ import annotations

from collections.abc import Iterator

from apps.energy.allocator import (
    Allocation,
    CurrentType,
    FloorMode,
    Priority,
    ProductionMode,
    Reason,
    ReductionSource,
    Session,
    SessionAllocation,
    SiteSnapshot,
    Zone,
)

TOLERANCE_A = 1e-6

WIRING_ORDER = {
    "MONO1": (1,),
    "MONO2": (2,),
    "MONO3": (3,),
    "TRI123": (1, 2, 3),
    "TRI231": (2, 3, 1),
    "TRI312": (3, 1, 2),
}


def phases_of(session: Session) -> set[int]:
    """Building phases (1..3) the session loads."""
    order = WIRING_ORDER[session.connector.wiring.value]
    if session.connector.current_type is CurrentType.DC or session.ev_phases is None:
        return set(order)
    return set(order[: session.ev_phases])


def floor_of(site: SiteSnapshot, session: Session) -> float:
    if site.settings.floor_mode is FloorMode.EVZE:
        return 8.0 if len(phases_of(session)) == 1 else 14.0
    return 6.0


def ancestors(site: SiteSnapshot, zone_id: int) -> list[int]:
    """The zone and its ancestors, up to the root."""
    by_id = {zone.zone_id: zone for zone in site.zones}
    chain = [zone_id]
    parent_id = by_id[zone_id].parent_id
    while parent_id is not None:
        chain.append(parent_id)
        parent_id = by_id[parent_id].parent_id
    return chain


def voltage_of(site: SiteSnapshot, session: Session) -> float:
    by_id = {zone.zone_id: zone for zone in site.zones}
    for zone_id in ancestors(site, session.connector.zone_id):
        voltage_v = by_id[zone_id].nominal_voltage_v
        if voltage_v is not None:
            return voltage_v
    return site.settings.nominal_voltage_v


def connector_max_of(site: SiteSnapshot, session: Session) -> float:
    connector = session.connector
    if connector.current_type is CurrentType.DC:
        phase_count = len(WIRING_ORDER[connector.wiring.value])
        assert connector.max_power_w is not None
        return connector.max_power_w / (voltage_of(site, session) * phase_count)
    assert connector.max_current_a is not None
    return connector.max_current_a


def limit_of(zone: Zone) -> float:
    reductions = zone.reductions
    if any(r.source is ReductionSource.INPUT for r in reductions):
        reductions = tuple(r for r in reductions if r.source is not ReductionSource.TOU)
    limit = zone.max_current_a
    for reduction in reductions:
        if reduction.percent is not None:
            limit = min(limit, zone.max_current_a * min(100.0, reduction.percent) / 100)
        elif reduction.current_a is not None:
            limit = min(limit, reduction.current_a)
    return max(0.0, limit)


def sessions_below(site: SiteSnapshot, zone_id: int) -> Iterator[Session]:
    for session in site.sessions:
        if zone_id in ancestors(site, session.connector.zone_id):
            yield session


def surely_drawn_a(session: Session) -> tuple[float, float, float]:
    """Per building phase, the most of a session's reading the meter may be reduced by."""
    measured = session.measured_current_a or (0.0, 0.0, 0.0)
    in_force_a = (
        session.drawing_cap_a if session.drawing_cap_a is not None else session.last_setpoint_a
    )
    # AC and DC alike: a DC reading is its AC input, its setpoint_a the AC equivalent.
    cap_a = in_force_a if in_force_a is not None else float("inf")
    drawn = [max(0.0, min(value, cap_a)) for value in measured]
    return (drawn[0], drawn[1], drawn[2])


def ramping_a(session: Session) -> tuple[float, float, float]:
    """Per phase, the part of a raised setpoint the EV may draw though no sample shows it."""
    if session.ramp_current_a is None:
        return (0.0, 0.0, 0.0)
    in_force_a = (
        session.drawing_cap_a if session.drawing_cap_a is not None else session.last_setpoint_a
    )
    cap_a = in_force_a if in_force_a is not None else float("inf")
    drawn = surely_drawn_a(session)
    ramp = [
        max(0.0, min(session.ramp_current_a[p], cap_a) - drawn[p])
        if session.ramp_current_a[p] > 0
        else 0.0
        for p in range(3)
    ]
    return (ramp[0], ramp[1], ramp[2])


def available_of(site: SiteSnapshot, zone: Zone) -> list[float]:
    """SPEC §3.2 with the reductions of §3.5, per phase (index 0 = L1).

    The EVs count for no more than they surely draw: their sample, at most
    the setpoint in force (AC), and nothing for a raised setpoint they may be
    ramping up to, since an EV may still be on its sampled value. Other loads
    are then the least the building can be carrying; the allocator's own
    estimate is never lighter (other tests check it exactly).

    A meter net of production reads building − production: the production is
    added back to get the building load; without a production reading, "grid
    only" runs degraded and the other modes take the meter as it is.
    """
    limit = limit_of(zone)
    if zone.dynamic and zone.meter_current_a is None:
        return [max(0.0, min(limit, zone.degraded_current_a))] * 3
    mode = site.settings.production_mode
    if mode is ProductionMode.LOCAL:
        by_id = {z.zone_id: z for z in site.zones}
        if not any(by_id[z].has_production_meter for z in ancestors(site, zone.zone_id)):
            return [0.0, 0.0, 0.0]  # local only, nothing produced above: no current
    net = zone.dynamic and zone.meter_net_of_production
    produced = zone.production_current_a if zone.has_production_meter else None
    if net and produced is None and mode is ProductionMode.GRID:
        return [max(0.0, min(limit, zone.degraded_current_a))] * 3
    result = []
    for phase in range(3):
        other = 0.0
        if zone.dynamic and zone.meter_current_a is not None:
            measured = sum(surely_drawn_a(s)[phase] for s in sessions_below(site, zone.zone_id))
            other = zone.meter_current_a[phase] - measured
            if not net:
                other = max(0.0, other)
        if net and produced is None:
            if mode is ProductionMode.GRID_LOCAL:
                result.append(max(0.0, min(limit, zone.max_current_a - other)))
            else:
                result.append(max(0.0, min(limit, -other)))
            continue
        production = 0.0
        if zone.production_current_a is not None:
            production = max(0.0, zone.production_current_a[phase])
        if net:
            other = max(0.0, other + production)
        grid = min(limit, zone.max_current_a - other)
        if not zone.has_production_meter or mode is ProductionMode.GRID:
            value = grid
        elif mode is ProductionMode.GRID_LOCAL:
            value = grid + production
        else:
            value = min(limit, production - other)
        result.append(max(0.0, value))
    return result


def reserved_of(site: SiteSnapshot, zone_id: int) -> list[float]:
    totals = [0.0, 0.0, 0.0]
    for reserve in site.reserves:
        if zone_id in ancestors(site, reserve.zone_id):
            for phase in range(3):
                totals[phase] += reserve.current_a[phase]
    return totals


def loads_of(site: SiteSnapshot, allocation: Allocation, zone_id: int) -> list[float]:
    """Σ setpoints below ``zone_id``, per phase."""
    totals = [0.0, 0.0, 0.0]
    for session in sessions_below(site, zone_id):
        setpoint = allocation.session(session.key).setpoint_a
        for phase in phases_of(session):
            totals[phase - 1] += setpoint
    return totals


def shares_constraint(site: SiteSnapshot, session: Session, zone_id: int, phase: int) -> bool:
    return zone_id in ancestors(site, session.connector.zone_id) and phase in phases_of(session)


def by_key(site: SiteSnapshot) -> dict[str, Session]:
    return {session.key: session for session in site.sessions}


def check_safety(site: SiteSnapshot, allocation: Allocation) -> None:
    """Zone limits with reserves, imbalance limits, floor and connector max, resolution."""
    assert [s.key for s in allocation.sessions] == sorted(s.key for s in site.sessions)
    assert [z.zone_id for z in allocation.zones] == sorted(z.zone_id for z in site.zones)
    for zone in site.zones:
        available = available_of(site, zone)
        reserved = reserved_of(site, zone.zone_id)
        loads = loads_of(site, allocation, zone.zone_id)
        for phase in range(3):
            # Reserves are not the allocator's to cut: when they alone exceed the
            # available current, everything below gets 0.
            free = max(0.0, available[phase] - reserved[phase])
            assert loads[phase] <= free + TOLERANCE_A, (
                f"zone {zone.zone_id} L{phase + 1}: {loads[phase]} + reserved {reserved[phase]} "
                f"> available {available[phase]}"
            )
        figures = allocation.zone(zone.zone_id)
        for phase in range(3):
            assert abs(figures.allocated_a[phase] - loads[phase]) < TOLERANCE_A
            assert figures.available_a[phase] <= available[phase] + TOLERANCE_A
        if zone.phase_imbalance_limit_a is not None:
            assert max(loads) - min(loads) <= zone.phase_imbalance_limit_a + TOLERANCE_A, (
                f"zone {zone.zone_id} imbalance {loads} over {zone.phase_imbalance_limit_a}"
            )
    for result in allocation.sessions:
        session = by_key(site)[result.key]
        setpoint = result.setpoint_a
        assert abs(setpoint * 10 - round(setpoint * 10)) < 1e-9, setpoint
        assert setpoint == 0 or setpoint >= floor_of(site, session) - TOLERANCE_A, (
            f"{result.key}: {setpoint} between 0 and floor {floor_of(site, session)}"
        )
        assert setpoint <= connector_max_of(site, session) + TOLERANCE_A
        assert result.floor_a == floor_of(site, session)
        assert {int(p) for p in result.phases} == phases_of(session)
        if session.connector.current_type is CurrentType.DC:
            assert result.setpoint_w is not None
            assert session.connector.max_power_w is not None
            assert result.setpoint_w <= session.connector.max_power_w + TOLERANCE_A
            expected_w = (
                setpoint
                * voltage_of(site, session)
                * len(WIRING_ORDER[session.connector.wiring.value])
            )
            assert expected_w - 1 <= result.setpoint_w <= expected_w
        else:
            assert result.setpoint_w is None
        if result.reason in (
            Reason.SHED_PRIORITY,
            Reason.NO_CAPACITY,
            Reason.IDLE_SUSPENDED,
            Reason.INVALID_INPUT,
        ):
            assert setpoint == 0
        if result.reason in (Reason.ZONE_LIMIT, Reason.DEGRADED, Reason.FLOOR):
            assert setpoint > 0
            assert result.limiting_zone_id is not None and result.limiting_phase is not None


def _limited_at(result: SessionAllocation) -> tuple[int, int] | None:
    if result.limiting_zone_id is None or result.limiting_phase is None:
        return None
    return (result.limiting_zone_id, int(result.limiting_phase))


def expected_ranking(site: SiteSnapshot) -> tuple[str, ...]:
    """VIP first, then least energy (or shortest charging), ties by the other, then key."""

    def sort_key(session: Session) -> tuple[bool, float, float, str]:
        energy, duration = session.energy_wh, session.charging_duration_s
        if site.settings.priority is Priority.DURATION:
            return (not session.vip, duration, energy, session.key)
        return (not session.vip, energy, duration, session.key)

    return tuple(session.key for session in sorted(site.sessions, key=sort_key))


def check_priorities(site: SiteSnapshot, allocation: Allocation) -> None:
    """VIP sessions first; shedding follows the ranking."""
    sessions = by_key(site)
    if allocation.reranked:
        assert allocation.ranking.keys == expected_ranking(site)
        assert allocation.ranking.ranked_at_s == site.now_s
    else:
        assert site.previous_ranking is not None
        assert allocation.ranking == site.previous_ranking
    results = {result.key: result for result in allocation.sessions}
    for result in allocation.sessions:
        limited = _limited_at(result)
        if limited is None or result.reason is Reason.IMBALANCE_LIMIT:
            continue
        zone_id, phase = limited
        session = sessions[result.key]
        for other in allocation.sessions:
            other_session = sessions[other.key]
            if other.key == result.key or not other.charging:
                continue
            if not shares_constraint(site, other_session, zone_id, phase):
                continue
            if result.vip and not other.vip:
                # A VIP stopped (or shed) by a zone phase leaves nothing in it to non-VIPs,
                # unless the non-VIP needs a smaller floor than the VIP could not get.
                assert result.reason is not Reason.SHED_PRIORITY or other.floor_a < result.floor_a
                assert result.reason not in (Reason.ZONE_LIMIT, Reason.DEGRADED, Reason.FLOOR), (
                    f"VIP {result.key} limited at {limited} while non-VIP {other.key} charges"
                )
            if result.reason is Reason.SHED_PRIORITY and result.vip == other.vip:
                assert other.rank < result.rank or other.floor_a < result.floor_a, (
                    f"{other.key} (rank {other.rank}) charges, {result.key} "
                    f"(rank {result.rank}) shed at {limited}"
                )
        assert results[result.key].vip == session.vip


def check_fairness(site: SiteSnapshot, allocation: Allocation) -> None:
    """Max-min fairness: a session stopped by a zone phase has the most of it in its class."""
    sessions = by_key(site)
    for result in allocation.sessions:
        if result.reason is Reason.CONNECTOR_MAX and result.charging:
            assert result.setpoint_a == result.max_a
        if result.reason is Reason.EV_DEMAND:
            assert result.setpoint_a == result.max_a
        if result.reason is Reason.FLOOR:
            assert result.setpoint_a == result.floor_a
        if result.reason not in (Reason.ZONE_LIMIT, Reason.DEGRADED, Reason.FLOOR):
            continue
        limited = _limited_at(result)
        assert limited is not None
        zone_id, phase = limited
        sharing = [
            other
            for other in allocation.sessions
            if other.charging and shares_constraint(site, sessions[other.key], zone_id, phase)
        ]
        # The limiting zone phase is really full: less than 0.1 A per session left.
        headroom = allocation.zone(zone_id).headroom_a[phase - 1]
        assert headroom < 0.1 * len(sharing) + TOLERANCE_A, (
            f"{result.key} limited by zone {zone_id} L{phase} which still has {headroom} A"
        )
        for other in sharing:
            if other.vip != result.vip:
                continue
            assert other.setpoint_a <= result.setpoint_a or other.setpoint_a == other.floor_a, (
                f"{other.key} has {other.setpoint_a} A, more than {result.key} "
                f"({result.setpoint_a} A) in the same bottleneck zone {zone_id} L{phase}"
            )
