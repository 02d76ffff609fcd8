"""Available current of a zone: the worked examples of SPEC §3.2 and §3.5."""

from __future__ import annotations

import pytest

from apps.energy.allocator import (
    ProductionMode,
    Reason,
    Reduction,
    ReductionSource,
    Reserve,
    SiteSettings,
    Zone,
    zone_capacity,
    zone_limit_a,
)

from .helpers import ac, dynamic, run, setpoints, static

GRID_LOCAL = SiteSettings(production_mode=ProductionMode.GRID_LOCAL)


def test_worked_example_grid_plus_local_gives_27_a_each() -> None:
    """Dynamic zone 70 A, solar 30 A, building 19 A, three three-phase sessions."""
    zone = dynamic(1, 70, 19, has_production_meter=True, production_current_a=(30, 30, 30))
    allocation = run([zone], [ac("a"), ac("b"), ac("c")], settings=GRID_LOCAL)

    assert setpoints(allocation) == {"a": 27.0, "b": 27.0, "c": 27.0}
    assert {item.reason for item in allocation.sessions} == {Reason.ZONE_LIMIT}
    figures = allocation.zone(1)
    assert figures.other_loads_a == (19.0, 19.0, 19.0)
    assert figures.production_a == (30.0, 30.0, 30.0)
    assert figures.grid_available_a == (51.0, 51.0, 51.0)
    assert figures.available_a == (81.0, 81.0, 81.0)
    assert figures.allocated_a == (81.0, 81.0, 81.0)
    assert figures.headroom_a == (0.0, 0.0, 0.0)


def test_chargers_measured_current_is_not_building_load() -> None:
    """The meter sees the chargers too: 19 A of building + 3 × 20 A of EVs still gives 27 A."""
    zone = dynamic(1, 70, 79, has_production_meter=True, production_current_a=(30, 30, 30))
    sessions = [ac(key, measured_current_a=(20, 20, 20)) for key in "abc"]
    allocation = run([zone], sessions, settings=GRID_LOCAL)
    assert setpoints(allocation) == {"a": 27.0, "b": 27.0, "c": 27.0}
    assert allocation.zone(1).other_loads_a == (19.0, 19.0, 19.0)


def test_production_is_ignored_in_grid_only_mode() -> None:
    zone = dynamic(1, 70, 19, has_production_meter=True, production_current_a=(30, 30, 30))
    allocation = run([zone], [ac("a"), ac("b"), ac("c")])
    assert setpoints(allocation) == {"a": 17.0, "b": 17.0, "c": 17.0}


def test_local_only_charges_on_production_minus_building_load() -> None:
    zone = dynamic(1, 70, 5, has_production_meter=True, production_current_a=(30, 30, 30))
    settings = SiteSettings(production_mode=ProductionMode.LOCAL)
    assert setpoints(run([zone], [ac("a")], settings=settings)) == {"a": 25.0}


def test_local_only_with_lost_production_meter_suspends_charging() -> None:
    zone = dynamic(1, 70, 5, has_production_meter=True, production_current_a=None)
    allocation = run([zone], [ac("a")], settings=SiteSettings(production_mode=ProductionMode.LOCAL))
    assert allocation.session("a").setpoint_a == 0
    assert allocation.session("a").reason is Reason.NO_CAPACITY
    assert allocation.zone(1).production_lost


LOCAL = SiteSettings(production_mode=ProductionMode.LOCAL)


def test_local_only_without_any_production_meter_gives_nothing() -> None:
    """Green charging with nothing produced must not charge from the grid."""
    for zone in (static(1, 63), dynamic(1, 70, 5)):
        allocation = run([zone], [ac("a")], settings=LOCAL)
        assert allocation.session("a").setpoint_a == 0
        assert allocation.zone(1).available_a == (0.0, 0.0, 0.0)


def test_local_only_counts_a_production_meter_above_the_zone() -> None:
    """A sub-zone below a production meter is bounded by that production; a sibling
    tree without one gets nothing."""
    top = dynamic(1, 100, 5, has_production_meter=True, production_current_a=(20, 20, 20))
    zones = [top, static(2, 63, parent_id=1), static(3, 200), static(4, 63, parent_id=3)]
    allocation = run([*zones], [ac("a", 2), ac("b", 4)], settings=LOCAL)
    assert setpoints(allocation) == {"a": 15.0, "b": 0.0}
    assert allocation.zone(2).available_a == (63.0, 63.0, 63.0)
    assert allocation.zone(4).available_a == (0.0, 0.0, 0.0)


def test_without_the_chain_a_zone_counts_only_its_own_production_meter() -> None:
    sub = static(2, 63, parent_id=1)
    assert zone_capacity(sub, (0, 0, 0), ProductionMode.LOCAL).available_da == (0, 0, 0)
    below = zone_capacity(sub, (0, 0, 0), ProductionMode.LOCAL, chain_has_production_meter=True)
    assert below.available_da == (630, 630, 630)


def _input(percent: float) -> Reduction:
    return Reduction(source=ReductionSource.INPUT, percent=percent)


@pytest.mark.parametrize(
    ("zone", "expected_a"),
    [
        # Nominal 100 A, input 70 %, the meter leaves 90 A → 70 A.
        (dynamic(1, 100, 10, reductions=(_input(70),)), 70.0),
        # Same reduction, the meter leaves 50 A → 50 A.
        (dynamic(1, 100, 50, reductions=(_input(70),)), 50.0),
        # Input 10 %, meter lost with a degraded setpoint of 30 A → 10 A.
        (dynamic(1, 100, None, degraded_current_a=30, reductions=(_input(10),)), 10.0),
        # Static 60 A reduced to 80 % → 48 A.
        (
            static(1, 60, reductions=(Reduction(source=ReductionSource.TOU, percent=80),)),
            48.0,
        ),
    ],
    ids=["input-70%-meter-90", "input-70%-meter-50", "input-10%-meter-lost", "static-80%"],
)
def test_reduction_examples(zone: Zone, expected_a: float) -> None:
    allocation = run([zone], [ac("big", max_a=100)])
    assert allocation.zone(1).available_a == (expected_a, expected_a, expected_a)
    assert allocation.session("big").setpoint_a == expected_a


def test_an_active_input_overrides_time_of_use_periods() -> None:
    tou = Reduction(source=ReductionSource.TOU, percent=50)
    assert zone_limit_a(static(1, 100, reductions=(tou,))) == 50
    assert zone_limit_a(static(1, 100, reductions=(tou, _input(70)))) == 70


def test_the_lowest_reduction_applies_including_absolute_ones() -> None:
    tou = Reduction(source=ReductionSource.TOU, percent=80)
    ebms_percent = Reduction(source=ReductionSource.EBMS, percent=60)
    ebms_current = Reduction(source=ReductionSource.EBMS, current_a=25)
    assert zone_limit_a(static(1, 100, reductions=(tou, ebms_percent))) == 60
    assert zone_limit_a(static(1, 100, reductions=(tou, ebms_current))) == 25


def test_zero_percent_input_suspends_all_charging() -> None:
    allocation = run([static(1, 100, reductions=(_input(0),))], [ac("a")])
    assert allocation.session("a").setpoint_a == 0


def test_reductions_never_apply_to_production() -> None:
    zone = dynamic(
        1,
        100,
        0,
        has_production_meter=True,
        production_current_a=(20, 20, 20),
        reductions=(_input(10),),
    )
    allocation = run([zone], [ac("a", max_a=63)], settings=GRID_LOCAL)
    assert allocation.session("a").setpoint_a == 30.0


def test_lost_meter_is_never_read_as_zero_load() -> None:
    """Degraded setpoint, not the 100 A maximum; and production is not added (fail closed)."""
    zone = dynamic(
        1,
        100,
        None,
        degraded_current_a=12,
        has_production_meter=True,
        production_current_a=(50, 50, 50),
    )
    allocation = run([zone], [ac("a"), ac("b")], settings=GRID_LOCAL)
    assert setpoints(allocation) == {"a": 6.0, "b": 6.0}
    assert {item.reason for item in allocation.sessions} == {Reason.FLOOR}
    assert allocation.zone(1).meter_lost
    assert allocation.zone(1).production_a == (0.0, 0.0, 0.0)


def test_degraded_zone_reports_degraded_reason() -> None:
    zone = dynamic(1, 100, None, degraded_current_a=20)
    allocation = run([zone], [ac("a"), ac("b")])
    assert setpoints(allocation) == {"a": 10.0, "b": 10.0}
    assert allocation.session("a").reason is Reason.DEGRADED


def test_overloaded_building_leaves_nothing() -> None:
    """Other loads above the maximum: no charging, never a negative availability."""
    allocation = run([dynamic(1, 63, (70, 20, 20))], [ac("a")])
    assert allocation.zone(1).available_a == (0.0, 43.0, 43.0)
    assert allocation.session("a").setpoint_a == 0
    assert allocation.session("a").limiting_zone_id == 1


def test_every_ancestor_bounds_the_sessions_below_it() -> None:
    """Parent 40 A over two 32 A sub-zones holding three sessions: 40 / 3 each."""
    zones = [static(1, 40), static(2, 32, parent_id=1), static(3, 32, parent_id=1)]
    allocation = run(zones, [ac("a", 2), ac("b", 2), ac("c", 3)])
    assert setpoints(allocation) == {"a": 13.3, "b": 13.3, "c": 13.3}
    assert allocation.session("c").limiting_zone_id == 1


def test_reserves_of_disconnected_stations_are_held_in_every_ancestor() -> None:
    zones = [static(1, 40), static(2, 32, parent_id=1), static(3, 32, parent_id=1)]
    reserve = Reserve(zone_id=3, current_a=(10, 10, 10), key="offline/1")
    allocation = run(zones, [ac("a", 2), ac("b", 3)], reserves=(reserve,))
    assert setpoints(allocation) == {"a": 15.0, "b": 15.0}
    assert allocation.zone(1).reserved_a == (10.0, 10.0, 10.0)
    assert allocation.zone(2).reserved_a == (0.0, 0.0, 0.0)


def test_reserves_above_the_available_current_leave_zero_below() -> None:
    reserve = Reserve(zone_id=1, current_a=(40, 40, 40))
    allocation = run([static(1, 32)], [ac("a")], reserves=(reserve,))
    assert allocation.session("a").setpoint_a == 0
    assert allocation.session("a").reason is Reason.NO_CAPACITY


def test_meter_below_the_chargers_own_readings_does_not_create_current() -> None:
    """A timing skew (meter 10 A, chargers 30 A) counts as 0 A of other loads, not −20 A."""
    zone = dynamic(1, 32, 10)
    allocation = run([zone], [ac("a", measured_current_a=(30, 30, 30))])
    assert allocation.zone(1).other_loads_a == (0.0, 0.0, 0.0)
    assert allocation.session("a").setpoint_a == 32.0


# A zone meter at the grid connection with the solar inverter behind it reads
# building + EVs − production. The worked example again: 70 A zone, 30 A of
# solar, 19 A of building, three sessions not drawing yet: the meter reads −11 A.
NET_READING_A = 19 - 30


def _net_zone(meter_a: float = NET_READING_A, **fields) -> Zone:
    fields.setdefault("production_current_a", (30, 30, 30))
    return dynamic(
        1, 70, meter_a, has_production_meter=True, meter_net_of_production=True, **fields
    )


def _grid_current_a(building_a: float, production_a: float, allocation) -> float:
    """What the zone then takes from the grid on L1, every EV at its setpoint."""
    return building_a + sum(item.setpoint_a for item in allocation.sessions) - production_a


def test_a_net_meter_read_as_consumption_counts_production_twice() -> None:
    """Without the option the zone takes 85 A from the grid on a 70 A maximum."""
    net_as_consumption = dynamic(
        1, 70, NET_READING_A, has_production_meter=True, production_current_a=(30, 30, 30)
    )
    sessions = [ac("a"), ac("b"), ac("c")]
    wrong = run([net_as_consumption], sessions, settings=GRID_LOCAL)
    assert _grid_current_a(19, 30, wrong) > 70

    allocation = run([_net_zone()], sessions, settings=GRID_LOCAL)
    assert setpoints(allocation) == {"a": 27.0, "b": 27.0, "c": 27.0}
    assert _grid_current_a(19, 30, allocation) == 70
    figures = allocation.zone(1)
    assert figures.other_loads_a == (-11.0, -11.0, -11.0)
    assert figures.production_a == (30.0, 30.0, 30.0)
    assert figures.grid_available_a == (51.0, 51.0, 51.0)
    assert figures.available_a == (81.0, 81.0, 81.0)


def test_a_net_meter_gives_the_same_while_the_evs_draw() -> None:
    """Steady state: 19 + 81 − 30 = 70 A on the meter, the EVs at 27 A each."""
    sessions = [
        ac(key, measured_current_a=(27, 27, 27), last_setpoint_a=27) for key in ("a", "b", "c")
    ]
    allocation = run([_net_zone(70)], sessions, settings=GRID_LOCAL)
    assert setpoints(allocation) == {"a": 27.0, "b": 27.0, "c": 27.0}


def test_grid_only_with_a_net_meter_gives_no_production() -> None:
    """17 A each as with a consumption meter: the zone stays within 70 A if the sun goes."""
    sessions = [ac("a"), ac("b"), ac("c")]
    allocation = run([_net_zone()], sessions)
    assert setpoints(allocation) == {"a": 17.0, "b": 17.0, "c": 17.0}
    assert 19 + 3 * 17 <= 70
    assert allocation.zone(1).production_a == (0.0, 0.0, 0.0)

    net_as_consumption = dynamic(
        1, 70, NET_READING_A, has_production_meter=True, production_current_a=(30, 30, 30)
    )
    wrong = run([net_as_consumption], sessions)
    assert _grid_current_a(19, 0, wrong) > 70  # had the production stopped


def test_local_only_with_a_net_meter_gives_the_surplus_once() -> None:
    """Building 5 A, solar 30 A: the meter reads −25 A and 25 A are free, not 30 A."""
    allocation = run([_net_zone(5 - 30)], [ac("a")], settings=LOCAL)
    assert setpoints(allocation) == {"a": 25.0}
    assert _grid_current_a(5, 30, allocation) == 0

    net_as_consumption = dynamic(
        1, 70, 5 - 30, has_production_meter=True, production_current_a=(30, 30, 30)
    )
    wrong = run([net_as_consumption], [ac("a")], settings=LOCAL)
    assert _grid_current_a(5, 30, wrong) > 0  # charging from the grid


def test_a_net_meter_keeps_the_export_while_an_ev_draws() -> None:
    """Meter −5 A with an EV drawing 20 A: 25 A go out, so 25 A may charge (not clamped)."""
    session = ac("a", measured_current_a=(20, 20, 20), last_setpoint_a=20)
    allocation = run([_net_zone(-5)], [session], settings=LOCAL)
    assert allocation.zone(1).other_loads_a == (-25.0, -25.0, -25.0)
    assert setpoints(allocation) == {"a": 25.0}


def test_reductions_never_apply_to_production_with_a_net_meter() -> None:
    """100 A zone at 10 %, no building, 20 A of solar: 10 A of grid + 20 A of production."""
    zone = dynamic(
        1,
        100,
        -20,
        has_production_meter=True,
        production_current_a=(20, 20, 20),
        meter_net_of_production=True,
        reductions=(_input(10),),
    )
    allocation = run([zone], [ac("a", max_a=63)], settings=GRID_LOCAL)
    assert allocation.session("a").setpoint_a == 30.0


def test_grid_only_with_a_net_meter_and_no_production_reading_runs_degraded() -> None:
    """The building load is unknown: the degraded setpoint, as with a lost meter."""
    zone = _net_zone(production_current_a=None, degraded_current_a=20)
    allocation = run([zone], [ac("a"), ac("b")])
    assert setpoints(allocation) == {"a": 10.0, "b": 10.0}
    figures = allocation.zone(1)
    assert figures.meter_lost
    assert figures.production_lost
    assert figures.available_a == (20.0, 20.0, 20.0)
    assert allocation.session("a").reason is Reason.DEGRADED


def test_grid_plus_local_with_a_net_meter_and_no_production_reading_uses_the_meter() -> None:
    """The meter shows −11 A: 70 + 11 A keep the grid within 70 A, capped by the 70 A limit."""
    zone = _net_zone(production_current_a=None)
    allocation = run([zone], [ac("a"), ac("b"), ac("c")], settings=GRID_LOCAL)
    figures = allocation.zone(1)
    assert figures.available_a == (70.0, 70.0, 70.0)
    assert figures.production_a == (0.0, 0.0, 0.0)
    assert figures.production_lost
    assert not figures.meter_lost
    assert _grid_current_a(19, 30, allocation) <= 70


def test_local_only_with_a_net_meter_and_no_production_reading_gives_the_export() -> None:
    zone = _net_zone(5 - 30, production_current_a=None)
    allocation = run([zone], [ac("a")], settings=LOCAL)
    assert setpoints(allocation) == {"a": 25.0}
    assert allocation.zone(1).production_a == (25.0, 25.0, 25.0)
    assert allocation.zone(1).grid_available_a == (0.0, 0.0, 0.0)


def test_a_lost_net_meter_runs_degraded_without_production() -> None:
    zone = _net_zone(None, degraded_current_a=20)
    allocation = run([zone], [ac("a")], settings=GRID_LOCAL)
    assert allocation.zone(1).available_a == (20.0, 20.0, 20.0)
    assert allocation.zone(1).production_a == (0.0, 0.0, 0.0)


def test_net_of_production_is_ignored_on_a_static_zone() -> None:
    zone = static(1, 63, meter_net_of_production=True)
    capacity = zone_capacity(zone, (0, 0, 0), ProductionMode.GRID)
    assert capacity.available_da == (630, 630, 630)
    assert not capacity.meter_lost


def test_a_net_meter_that_reads_magnitudes_errs_on_the_safe_side() -> None:
    """An export of 11 A read as +11 A counts as load: less than with the sign, never more."""
    signed = run([_net_zone()], [ac("a", max_a=63)], settings=GRID_LOCAL)
    magnitude = run([_net_zone(-NET_READING_A)], [ac("a", max_a=63)], settings=GRID_LOCAL)
    assert magnitude.session("a").setpoint_a < signed.session("a").setpoint_a
