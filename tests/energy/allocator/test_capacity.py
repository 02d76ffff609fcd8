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
