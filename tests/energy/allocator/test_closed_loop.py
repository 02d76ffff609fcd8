"""The allocator in a loop with EVs that follow their setpoints (hypothesis).

Each EV draws ``min(setpoint, what its battery accepts)``; each dynamic zone's
meter reads its building load plus the EVs below it; outputs (setpoints,
ranking, each zone's estimate of other loads and the meter level it stands
for) are fed back every tick, a minute apart. Every tick must be safe, and
once the EVs have settled no session may keep switching between charging
and suspended.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.energy.allocator import Allocation, SiteSnapshot, allocate

from .checks import ancestors, check_priorities, check_safety, phases_of
from .strategies import Decoder, sites

# Pure and long: run once, not again on the PostgreSQL leg of CI.
pytestmark = pytest.mark.property

TICK_S = 61.0  # just over the optimisation settle time
TICKS = 6


def _readings(
    site: SiteSnapshot,
    building_a: dict[int, float],
    allocation: Allocation | None,
    accepts_a: dict[str, float],
) -> SiteSnapshot:
    """Measured currents and meter readings that result from the last setpoints."""
    drawn: dict[str, float] = {}
    sessions = []
    for session in site.sessions:
        setpoint = 0.0 if allocation is None else allocation.session(session.key).setpoint_a
        drawn[session.key] = min(setpoint, accepts_a[session.key])
        per_phase = [0.0, 0.0, 0.0]
        for phase in phases_of(session):
            per_phase[phase - 1] = drawn[session.key]
        sessions.append(
            replace(session, measured_current_a=(per_phase[0], per_phase[1], per_phase[2]))
        )
    zones = []
    for zone in site.zones:
        if allocation is not None:
            figures = allocation.zone(zone.zone_id)
            zone = replace(
                zone,
                previous_other_loads_a=figures.other_loads_a,
                held_meter_current_a=figures.held_meter_current_a,
            )
        if not zone.dynamic or zone.meter_current_a is None:
            zones.append(zone)
            continue
        meter = [building_a[zone.zone_id]] * 3
        for session in sessions:
            if zone.zone_id in ancestors(site, session.connector.zone_id):
                for phase in phases_of(session):
                    meter[phase - 1] += drawn[session.key]
        zones.append(replace(zone, meter_current_a=(meter[0], meter[1], meter[2])))
    return replace(site, zones=tuple(zones), sessions=tuple(sessions))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(site=sites(max_sessions=30, max_zones=8), data=st.binary(min_size=64, max_size=64))
def test_a_closed_loop_stays_safe_and_settles(site: SiteSnapshot, data: bytes) -> None:
    decoder = Decoder(data)
    site = replace(
        site,
        settings=replace(site.settings, idle_suspension_enabled=False),
        # Ranked at the first tick: the six ticks stay within one 15-minute review.
        previous_ranking=None,
        zones=tuple(
            replace(zone, previous_other_loads_a=None, held_meter_current_a=None)
            for zone in site.zones
        ),
        sessions=tuple(
            replace(
                s,
                last_setpoint_a=None,
                last_setpoint_at_s=None,
                last_reason=None,
                idle_since_s=None,
                drawing_cap_a=None,
                ramp_current_a=None,
            )
            for s in site.sessions
        ),
    )
    accepts_a = {
        s.key: decoder.pick([32.0, 16.0, 7.0, 0.5, decoder.amps(40)]) for s in site.sessions
    }
    building_a = {zone.zone_id: decoder.amps(zone.max_current_a) for zone in site.zones}

    allocation: Allocation | None = None
    history: list[dict[str, float]] = []
    for tick in range(TICKS):
        current = _readings(site, building_a, allocation, accepts_a)
        if allocation is not None:
            current = replace(
                current,
                previous_ranking=allocation.ranking,
                capacity_changed=False,
                sessions=tuple(
                    replace(
                        session,
                        last_setpoint_a=allocation.session(session.key).setpoint_a,
                        last_setpoint_at_s=(
                            current.now_s
                            if allocation.session(session.key).changed
                            else session.last_setpoint_at_s
                        ),
                        last_reason=allocation.session(session.key).reason,
                    )
                    for session in current.sessions
                ),
            )
        current = replace(current, now_s=site.now_s + tick * TICK_S)
        allocation = allocate(current)
        check_safety(current, allocation)
        check_priorities(current, allocation)
        history.append({item.key: item.setpoint_a for item in allocation.sessions})
        site = replace(current, now_s=site.now_s)

    assert allocation is not None
    assert history[-1] == history[-2]
    assert not any(item.changed for item in allocation.sessions)
