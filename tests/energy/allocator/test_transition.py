"""Break before make and fallbacks within the budget, on small examples."""

from __future__ import annotations

from apps.energy.allocator import Zone
from apps.energy.allocator.transition import (
    Budgeted,
    IdleConnector,
    Raise,
    admit_raises,
    fallback_targets,
    session_fallback_a,
)

ZONES = (Zone(zone_id=1, max_current_a=32),)
ALL = (0, 1, 2)


def _budget(**envelopes: float) -> list[Budgeted]:
    return [Budgeted(key, 1, ALL, value) for key, value in envelopes.items()]


def test_a_raise_waits_while_the_capacity_it_needs_is_not_released():
    available = {1: (32.0, 32.0, 32.0)}
    # B still may draw 16 A (its decrease not yet followed): A may not go from 16 to 32.
    assert (
        admit_raises(ZONES, available, _budget(A=16, B=16), [Raise("A", 32, 6, settled_a=16)]) == {}
    )
    # Once B is at 0 for good, A may.
    granted = admit_raises(ZONES, available, _budget(A=16, B=0), [Raise("A", 32, 6, settled_a=16)])
    assert granted == {("A", "live"): 32}


def test_a_raise_gets_what_is_left_or_nothing_below_its_floor():
    available = {1: (32.0, 32.0, 32.0)}
    wanted = [Raise("A", 16, 6), Raise("B", 16, 6, priority=1)]
    granted = admit_raises(ZONES, available, _budget(A=0, B=0, C=22), wanted)
    assert granted == {("A", "live"): 10.0}  # B: nothing is left


def test_nothing_is_raised_where_envelopes_already_exceed_the_zone():
    available = {1: (32.0, 32.0, 32.0)}
    granted = admit_raises(ZONES, available, _budget(A=20, B=20), [Raise("A", 20, 6)])
    assert granted == {}


def test_a_live_and_a_fallback_raise_of_one_connector_are_told_apart():
    available = {1: (32.0, 32.0, 32.0)}
    granted = admit_raises(
        ZONES,
        available,
        _budget(A=0),
        [Raise("A", 16, 6, kind="live"), Raise("A", 10, 6, priority=9, kind="fallback")],
    )
    assert granted == {("A", "live"): 16, ("A", "fallback"): 10}


def test_idle_fallbacks_share_what_the_sessions_leave_within_their_offline_current():
    idle = [
        IdleConnector("A", 1, ALL, offline_a=10.6, floor_a=6, current_a=None),
        IdleConnector("B", 1, ALL, offline_a=10.6, floor_a=6, current_a=None),
        IdleConnector("C", 1, ALL, offline_a=10.6, floor_a=6, current_a=10.6),
    ]
    targets = fallback_targets(ZONES, {1: (12.0, 12.0, 12.0)}, idle)
    # Served by key: A gets 10.6, B the 1.4 left is below its floor: 0, C too.
    assert targets == {"A": 10.6, "B": 0.0, "C": 0.0}


def test_a_fallback_is_not_raised_for_less_than_the_deadband():
    idle = [IdleConnector("A", 1, ALL, offline_a=16, floor_a=6, current_a=8.5)]
    assert fallback_targets(ZONES, {1: (9.0, 9.0, 9.0)}, idle) == {"A": 8.5}
    assert fallback_targets(ZONES, {1: (20.0, 20.0, 20.0)}, idle) == {"A": 16.0}


def test_a_charging_connectors_fallback_stays_within_its_live_setpoint():
    assert session_fallback_a(16, offline_a=16, live_a=6) == 6  # lowered at once
    assert session_fallback_a(6, offline_a=16, live_a=6.5) == 6  # small raises cost nothing
    assert session_fallback_a(6, offline_a=16, live_a=20) == 16  # back to the offline current
    assert session_fallback_a(None, offline_a=16, live_a=0) == 0
