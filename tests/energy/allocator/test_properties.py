"""Invariants of the allocator on random sites (hypothesis).

Example counts come from the active profile: 2000 per property with ``CI`` set.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
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

from .checks import (
    ancestors,
    check_fairness,
    check_priorities,
    check_safety,
    limit_of,
    ramping_a,
    surely_drawn_a,
)
from .strategies import NOW_S, Decoder, connectors_for, sites, without_history, zone_trees

# Pure and long: run once, not again on the PostgreSQL leg of CI.
pytestmark = pytest.mark.property

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

    Each zone gets the last estimate of its other loads and the meter level it
    stands for, as the control loop stores them.

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
        replace(
            zone,
            meter_current_a=tuple(meters[zone.zone_id]) if zone.zone_id in meters else None,
            previous_other_loads_a=allocation.zone(zone.zone_id).other_loads_a,
            held_meter_current_a=allocation.zone(zone.zone_id).held_meter_current_a,
        )
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


def _surely_drawn_below(site: SiteSnapshot) -> dict[int, list[float]]:
    """Per zone and phase: what the EVs below surely draw (samples, at most in force)."""
    counted: dict[int, list[float]] = {zone.zone_id: [0.0, 0.0, 0.0] for zone in site.zones}
    for session in site.sessions:
        drawn = surely_drawn_a(session)
        for zone_id in ancestors(site, session.connector.zone_id):
            for phase in range(3):
                counted[zone_id][phase] += drawn[phase]
    return counted


def _metered_other_loads(site: SiteSnapshot, allocation):
    """``(zone, other loads, phase)`` of every zone phase with a meter reading."""
    figures_of = {figures.zone_id: figures for figures in allocation.zones}
    for zone in site.zones:
        other_a = figures_of[zone.zone_id].other_loads_a
        if other_a is None or zone.meter_current_a is None:
            continue
        for phase in range(3):
            yield zone, other_a[phase], phase


def _slack_a(site: SiteSnapshot) -> float:
    """0.1 A steps, rounded down per session, and other loads rounded up."""
    return 0.1 * (len(site.sessions) + 2)


@PROPERTY
@given(site=sites(max_sessions=40))
def test_other_loads_are_never_below_the_meter_minus_what_evs_surely_draw(
    site: SiteSnapshot,
) -> None:
    """Neither a ramp, a stale sample nor a previous estimate makes the building lighter.

    An EV counts at its sample, at most the setpoint in force when the meters
    were read (a higher reading predates it); a raised setpoint it may be
    ramping up to is not subtracted, since it may still be on its sample.
    """
    allocation = allocate(site)
    check_safety(site, allocation)
    counted = _surely_drawn_below(site)
    slack_a = _slack_a(site)
    for zone, other_a, phase in _metered_other_loads(site, allocation):
        assert other_a >= zone.meter_current_a[phase] - counted[zone.zone_id][phase] - slack_a


@PROPERTY
@given(site=sites(max_sessions=40))
def test_ramps_are_reported_where_a_meter_counts_them(site: SiteSnapshot) -> None:
    """What EVs may be ramping up to is reported per zone, for zones that read a meter only.

    It is what the next reading may take from the available current though the
    building did not rise: raises keep it free (``transition.admit_raises``).
    """
    allocation = allocate(site)
    slack_a = _slack_a(site)
    by_id = {zone.zone_id: zone for zone in site.zones}
    for figures in allocation.zones:
        zone = by_id[figures.zone_id]
        metered = figures.other_loads_a is not None
        for phase in range(3):
            ramping = sum(
                ramping_a(s)[phase]
                for s in site.sessions
                if zone.zone_id in ancestors(site, s.connector.zone_id)
            )
            if not metered:
                assert figures.ramping_a[phase] == 0.0
            else:
                assert abs(figures.ramping_a[phase] - ramping) <= slack_a, (zone, phase)


@PROPERTY
@given(site=sites(max_sessions=40))
def test_a_hold_keeps_other_loads_between_the_meter_reading_and_the_previous_estimate(
    site: SiteSnapshot,
) -> None:
    """A fall of the meter not yet credited to the building keeps at most the previous estimate.

    Without a hold other loads are the meter minus what the EVs surely draw;
    with one they are never above the previous estimate when that is higher,
    nor above the meter itself; and the level fed back is the meter, or above
    it exactly while a fall is held.
    """
    allocation = allocate(site)
    counted = _surely_drawn_below(site)
    slack_a = _slack_a(site)
    figures_of = {figures.zone_id: figures for figures in allocation.zones}
    for zone, other_a, phase in _metered_other_loads(site, allocation):
        meter_a = zone.meter_current_a[phase]
        high_a = meter_a - counted[zone.zone_id][phase]
        if not zone.meter_net_of_production:  # a net meter's building may export
            high_a = max(0.0, high_a)
        held_a = figures_of[zone.zone_id].held_meter_current_a
        assert held_a is not None
        if zone.previous_other_loads_a is None or zone.held_meter_current_a is None:
            assert abs(other_a - high_a) <= slack_a
        else:
            assert other_a <= max(high_a, zone.previous_other_loads_a[phase]) + slack_a
        assert other_a <= max(high_a, meter_a) + slack_a
        # What the estimate stands for: the meter, plus what is held above it.
        assert held_a[phase] >= min(meter_a, counted[zone.zone_id][phase]) - slack_a
        if other_a > high_a + slack_a:
            assert held_a[phase] > meter_a


@PROPERTY
@given(site=sites(max_sessions=40), data=st.binary(min_size=60, max_size=60))
def test_a_dip_under_the_samples_is_not_handed_to_other_sessions(
    site: SiteSnapshot, data: bytes
) -> None:
    """EVs that draw less than their samples show no more than that in their meter.

    After an allocation, the meters fall by anything up to what the EVs below
    were counted for, their samples unchanged (they lag the dip). The next
    allocation, fed back the last one's estimate, must still be safe once the
    EVs draw their samples again: the meters back where they were. (Samples
    are within the setpoints in force here: an EV sampled above its setpoint
    is about to come down, a fall the hold rightly lets through.)
    """
    site = replace(
        site,
        zones=tuple(
            replace(
                zone,
                previous_other_loads_a=None,
                held_meter_current_a=None,
            )
            for zone in site.zones
        ),
        sessions=tuple(
            replace(session, measured_current_a=surely_drawn_a(session))
            if session.measured_current_a is not None
            else session
            for session in site.sessions
        ),
    )
    first = allocate(site)
    counted = _surely_drawn_below(site)
    decoder = Decoder(data)
    figures_of = {figures.zone_id: figures for figures in first.zones}
    dipped_zones = []
    for zone in site.zones:
        if zone.meter_current_a is None:
            dipped_zones.append(zone)
            continue
        margin_a = 0.1 * (len(site.sessions) + 1)
        fallen = [
            max(0.0, counted[zone.zone_id][phase] - margin_a) * (decoder.byte() / 255)
            for phase in range(3)
        ]
        meter = [max(0.0, zone.meter_current_a[phase] - fallen[phase]) for phase in range(3)]
        figures = figures_of[zone.zone_id]
        dipped_zones.append(
            replace(
                zone,
                meter_current_a=(meter[0], meter[1], meter[2]),
                previous_other_loads_a=figures.other_loads_a,
                held_meter_current_a=figures.held_meter_current_a,
            )
        )
    dipped = replace(site, zones=tuple(dipped_zones))
    second = allocate(dipped)
    check_safety(dipped, second)
    # The dip over, every meter reads what it read before: still within every limit.
    check_safety(site, second)
