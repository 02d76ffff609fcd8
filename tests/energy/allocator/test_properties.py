"""Invariants of the allocator on random sites (hypothesis).

Example counts come from the active profile: 2000 per property with ``CI`` set.
"""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.energy.allocator import (
    Allocation,
    Connector,
    SiteSettings,
    SiteSnapshot,
    Zone,
    allocate,
    offline_currents,
)

from .checks import ancestors, check_fairness, check_priorities, check_safety, limit_of
from .strategies import NOW_S, connectors_for, sites, without_history, zone_trees

PROPERTY = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(site=sites())
def test_no_limit_is_ever_exceeded(site: SiteSnapshot) -> None:
    """Zone phases with reserves, imbalance limits, floors, connector max, VIP, shedding."""
    allocation = allocate(site)
    check_safety(site, allocation)
    check_priorities(site, allocation)


@PROPERTY
@given(site=sites(min_zones=10, min_sessions=40))
def test_large_sites_stay_within_every_limit(site: SiteSnapshot) -> None:
    """The same invariants on deep, crowded sites (10–20 zones, 40–60 sessions)."""
    allocation = allocate(site)
    check_safety(site, allocation)
    check_priorities(site, allocation)


@PROPERTY
@given(site=sites(imbalance=False, deadband=False))
def test_allocation_is_max_min_fair(site: SiteSnapshot) -> None:
    """Without deadband or imbalance limits, every stopped session is at a real bottleneck."""
    allocation = allocate(site)
    check_safety(site, allocation)
    check_fairness(site, allocation)


@PROPERTY
@given(site=sites(), shuffler=st.randoms(use_true_random=False))
def test_same_input_same_output_in_any_order(site: SiteSnapshot, shuffler: random.Random) -> None:
    first = allocate(site)
    assert allocate(site) == first
    zones, sessions, reserves = list(site.zones), list(site.sessions), list(site.reserves)
    shuffler.shuffle(zones)
    shuffler.shuffle(sessions)
    shuffler.shuffle(reserves)
    shuffled = replace(site, zones=tuple(zones), sessions=tuple(sessions), reserves=tuple(reserves))
    assert allocate(shuffled) == first


def _next_tick(site: SiteSnapshot, allocation: Allocation) -> SiteSnapshot:
    """The same site one tick later, with the allocator's outputs fed back.

    The EVs obey: a session measured above its new setpoint now draws the
    setpoint (a DC one's AC input), and every meter above it shows the
    difference gone.
    """
    meters = {
        zone.zone_id: list(zone.meter_current_a)
        for zone in site.zones
        if zone.meter_current_a is not None
    }
    sessions = []
    for session in site.sessions:
        result = allocation.session(session.key)
        measured = session.measured_current_a
        if measured is not None:
            obeying = tuple(min(value, result.setpoint_a) for value in measured)
            for zone_id in ancestors(site, session.connector.zone_id):
                if zone_id in meters:
                    for phase in range(3):
                        meters[zone_id][phase] -= measured[phase] - obeying[phase]
            measured = obeying
        sessions.append(
            replace(
                session,
                measured_current_a=measured,
                last_setpoint_a=result.setpoint_a,
                last_setpoint_at_s=site.now_s,
                last_reason=result.reason,
                idle_since_s=result.idle_since_s,
            )
        )
    zones = tuple(
        replace(zone, meter_current_a=tuple(meters[zone.zone_id]))
        if zone.zone_id in meters
        else zone
        for zone in site.zones
    )
    return replace(
        site,
        zones=zones,
        previous_ranking=allocation.ranking,
        capacity_changed=False,
        sessions=tuple(sessions),
    )


@PROPERTY
@given(site=sites(max_sessions=40))
def test_feeding_back_an_allocation_changes_nothing(site: SiteSnapshot) -> None:
    """Nothing moved (no new readings, optimisation and idle suspension off): no flapping."""
    site = replace(
        without_history(site),
        settings=replace(site.settings, optimisation_enabled=False, idle_suspension_enabled=False),
    )
    first = allocate(site)
    second = allocate(_next_tick(site, first))
    check_safety(site, second)
    assert not second.reranked
    for before, after in zip(first.sessions, second.sessions, strict=True):
        assert after.setpoint_a == before.setpoint_a
        assert not after.changed


@PROPERTY
@given(site=sites(max_sessions=40), shift_s=st.integers(0, 3600))
def test_next_tick_with_history_stays_safe(site: SiteSnapshot, shift_s: int) -> None:
    """Deadband, optimisation and idle state fed back never break a limit."""
    first = allocate(site)
    later = replace(_next_tick(site, first), now_s=site.now_s + shift_s)
    second = allocate(later)
    check_safety(later, second)
    check_priorities(later, second)


@st.composite
def offline_cases(draw: st.DrawFn) -> tuple[tuple[Zone, ...], tuple[Connector, ...]]:
    zones = draw(zone_trees(max_zones=8, imbalance=False))
    count = draw(st.integers(0, 30))
    return zones, connectors_for(
        zones, draw(st.binary(min_size=count * 8, max_size=count * 8)), count
    )


@PROPERTY
@given(case=offline_cases())
def test_offline_currents_fit_every_zone_budget(
    case: tuple[tuple[Zone, ...], tuple[Connector, ...]],
) -> None:
    """Even if every station falls back at once, no zone's safe budget is exceeded."""
    zones, connectors = case
    settings_ = SiteSettings()
    offline = {item.key: item.current_a for item in offline_currents(zones, connectors, settings_)}
    site = SiteSnapshot(now_s=NOW_S, zones=zones)
    for zone in zones:
        budget = limit_of(zone)
        if zone.dynamic:
            budget = min(budget, zone.degraded_current_a)
        below = [c for c in connectors if zone.zone_id in ancestors(site, c.zone_id)]
        assert sum(offline[c.key] for c in below) <= budget + 1e-6
    for connector in connectors:
        value = offline[connector.key]
        assert connector.max_current_a is not None
        assert value == 0 or 6.0 <= value <= connector.max_current_a + 1e-6


def _counted_and_ramping(site: SiteSnapshot) -> tuple[dict, dict]:
    """Per zone and phase: what the EVs below count for, and their unsampled ramps."""
    counted: dict[int, list[float]] = {zone.zone_id: [0.0, 0.0, 0.0] for zone in site.zones}
    ramping: dict[int, list[float]] = {zone.zone_id: [0.0, 0.0, 0.0] for zone in site.zones}
    for session in site.sessions:
        measured = session.measured_current_a or (0.0, 0.0, 0.0)
        ramp = session.ramp_current_a or (0.0, 0.0, 0.0)
        in_force_a = (
            session.drawing_cap_a if session.drawing_cap_a is not None else session.last_setpoint_a
        )
        # AC and DC alike: a DC reading is its AC input, its setpoint_a the AC equivalent.
        cap = in_force_a if in_force_a is not None else float("inf")
        for zone_id in ancestors(site, session.connector.zone_id):
            for phase in range(3):
                session_counted = min(measured[phase], cap) if measured[phase] > 0 else 0.0
                counted[zone_id][phase] += session_counted
                if ramp[phase] > 0:
                    ramping[zone_id][phase] += max(0.0, min(ramp[phase], cap) - session_counted)
    return counted, ramping


def _metered_other_loads(site: SiteSnapshot, allocation):
    """``(zone, other loads, phase)`` of every zone phase with a meter reading."""
    figures_of = {figures.zone_id: figures for figures in allocation.zones}
    for zone in site.zones:
        other_a = figures_of[zone.zone_id].other_loads_a
        if other_a is None or zone.meter_current_a is None:
            continue
        for phase in range(3):
            yield zone, other_a[phase], phase


@PROPERTY
@given(site=sites(max_sessions=40))
def test_an_ev_counts_in_its_meter_at_no_more_than_its_setpoint(site: SiteSnapshot) -> None:
    """A reading above the setpoint in force is stale: the building is never made lighter by it.

    The setpoint in force when the meters were read is ``drawing_cap_a`` when
    given, else the last one sent; it caps DC sessions too (their AC input).
    Without ramps under way, other loads are the meter minus what the EVs
    count for.
    """
    site = replace(site, sessions=tuple(replace(s, ramp_current_a=None) for s in site.sessions))
    allocation = allocate(site)
    check_safety(site, allocation)
    counted, _ramping = _counted_and_ramping(site)
    for zone, other_a, phase in _metered_other_loads(site, allocation):
        # 0.1 A steps, rounded down per session, and other loads rounded up.
        slack_a = 0.1 * (len(site.sessions) + 1)
        assert other_a >= zone.meter_current_a[phase] - counted[zone.zone_id][phase] - slack_a


@PROPERTY
@given(site=sites(max_sessions=40))
def test_a_ramp_keeps_other_loads_within_what_the_meter_allows(site: SiteSnapshot) -> None:
    """While EVs follow raised setpoints, other loads stay at the previous estimate if they can.

    Never above the meter minus the samples (``high``), never below the meter
    minus the samples and every ramp complete (``low``): a building load rising
    beyond what the ramps explain is seen at once, and an EV's own ramp is not
    taken for building load.
    """
    allocation = allocate(site)
    check_safety(site, allocation)
    counted, ramping = _counted_and_ramping(site)
    for zone, other, phase in _metered_other_loads(site, allocation):
        slack_a = 0.1 * (2 * len(site.sessions) + 2)
        high = max(0.0, zone.meter_current_a[phase] - counted[zone.zone_id][phase])
        low = max(0.0, high - ramping[zone.zone_id][phase])
        assert low - slack_a <= other <= high + slack_a
        previous = zone.previous_other_loads_a
        if ramping[zone.zone_id][phase] > slack_a and previous is not None:
            expected = max(low, min(previous[phase], high))
            assert abs(other - expected) <= slack_a
