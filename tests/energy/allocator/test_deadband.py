"""Deadband against the last sent setpoint, never at the expense of a limit."""

from __future__ import annotations

from apps.energy.allocator import Reduction, ReductionSource

from .helpers import ac, run, setpoints, static


def test_a_change_below_1_a_is_not_sent() -> None:
    allocation = run([static(1, 16.5)], [ac("a", last_setpoint_a=16.0)])
    result = allocation.session("a")
    assert result.setpoint_a == 16.0
    assert result.deadband_held
    assert not result.changed


def test_a_change_of_1_a_or_more_is_sent() -> None:
    result = run([static(1, 17.0)], [ac("a", last_setpoint_a=16.0)]).session("a")
    assert result.setpoint_a == 17.0
    assert result.changed
    assert not result.deadband_held


def test_starting_and_suspending_are_always_sent() -> None:
    started = run([static(1, 6)], [ac("a", last_setpoint_a=0)]).session("a")
    assert started.setpoint_a == 6.0 and started.changed
    suspended = run([static(1, 5.5)], [ac("a", last_setpoint_a=6.0)]).session("a")
    assert suspended.setpoint_a == 0.0 and suspended.changed


def test_a_last_setpoint_below_the_new_floor_is_not_kept() -> None:
    """The floor can change (EV detected three-phase in EV/ZE mode): 13.5 A is no longer valid."""
    from apps.energy.allocator import FloorMode, SiteSettings

    settings = SiteSettings(floor_mode=FloorMode.EVZE)
    result = run(
        [static(1, 14.3)], [ac("a", ev_phases=3, last_setpoint_a=13.5)], settings=settings
    ).session("a")
    assert result.setpoint_a == 14.3


def test_the_deadband_never_keeps_a_zone_overloaded() -> None:
    """A reduction lowers the zone from 33 to 32 A: 16.5 A each would overload it."""
    tou = Reduction(source=ReductionSource.TOU, percent=32 / 33 * 100)
    sessions = [ac("a", last_setpoint_a=16.5), ac("b", last_setpoint_a=16.5)]
    allocation = run([static(1, 33, reductions=(tou,))], sessions)
    assert setpoints(allocation) == {"a": 16.0, "b": 16.0}
    assert not allocation.session("a").deadband_held


def test_keeping_a_lower_value_is_fine() -> None:
    sessions = [ac("a", last_setpoint_a=15.5), ac("b", last_setpoint_a=16.0)]
    allocation = run([static(1, 32)], sessions)
    assert setpoints(allocation) == {"a": 15.5, "b": 16.0}


def test_the_deadband_never_breaks_an_imbalance_limit() -> None:
    from apps.energy.allocator import PhaseWiring

    zone = static(1, 100, phase_imbalance_limit_a=10)
    sessions = [
        ac("l1", wiring=PhaseWiring.MONO1, last_setpoint_a=16.5),
        ac("l2", wiring=PhaseWiring.MONO2, max_a=6, last_setpoint_a=6.0),
    ]
    allocation = run([zone], sessions)
    loads = allocation.zone(1).allocated_a
    assert max(loads) - min(loads) <= 10
