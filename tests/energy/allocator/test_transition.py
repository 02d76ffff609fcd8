"""Break before make and fallbacks within the budget, on small examples."""

from __future__ import annotations

from apps.energy.allocator import Zone
from apps.energy.allocator.transition import (
    Budgeted,
    IdleConnector,
    Raise,
    admit_raises,
    decreases_that_may_wait,
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


METERED = (Zone(zone_id=1, max_current_a=100, dynamic=True, meter_current_a=(40.0, 40.0, 40.0)),)


def test_a_raise_that_makes_an_ev_ramp_below_a_meter_fits_twice():
    """60 A available below a meter: A (at 10 A) is raised by 25 A, not 50 A.

    The meter will show the ramp before a sample does: for a few seconds the
    25 A count as building load too, and A's 35 A still fit in what is then
    left (60 − 25 A).
    """
    available = {1: (60.0, 60.0, 60.0)}
    raise_a = Raise("A", 60, 6, settled_a=10, ramps=True)
    assert admit_raises(METERED, available, _budget(A=10), [raise_a]) == {("A", "live"): 35.0}
    # Without a meter nothing counts twice; nor for a profile no EV ramps up to.
    assert admit_raises(ZONES, {1: (60.0,) * 3}, _budget(A=10), [raise_a]) == {("A", "live"): 60}
    plain = Raise("A", 60, 6, settled_a=10)
    assert admit_raises(METERED, available, _budget(A=10), [plain]) == {("A", "live"): 60}


def test_ramps_under_way_are_kept_free_and_small_parts_are_not_sent():
    available = {1: (60.0, 60.0, 60.0)}
    raise_a = Raise("B", 30, 6, ramps=True, min_step_a=1.0)
    # A ramps to 35 A (25 A no sample shows yet): 60 − 35 − 25 = 0 A for B.
    ramping = {1: (25.0, 25.0, 25.0)}
    assert admit_raises(METERED, available, _budget(A=35, B=0), [raise_a], ramping_a=ramping) == {}
    # Once a sample shows the ramp, B gets half of the 25 A left.
    granted = admit_raises(METERED, available, _budget(A=35, B=0), [raise_a])
    assert granted == {("B", "live"): 12.5}
    # Half of 1.5 A left is not worth a profile.
    assert admit_raises(METERED, available, _budget(A=35, B=23.5), [raise_a]) == {}


def test_a_decrease_only_ramps_ask_for_waits_while_every_envelope_fits():
    """The meter shows A's ramp as building load; B would be lowered for it, and raised back."""
    ramping = {1: (20.0, 20.0, 20.0)}
    envelopes = _budget(A=30, B=25)
    assert decreases_that_may_wait(METERED, {1: (60.0,) * 3}, envelopes, ramping, ["B"]) == {"B"}
    # No ramp under way: the decrease goes.
    assert decreases_that_may_wait(METERED, {1: (60.0,) * 3}, envelopes, {}, ["B"]) == set()
    # The building rose: what the zone holds no longer fits, every decrease goes at once.
    assert decreases_that_may_wait(METERED, {1: (50.0,) * 3}, envelopes, ramping, ["B"]) == set()


def test_idle_fallbacks_share_what_the_sessions_leave_within_their_offline_current():
    idle = [
        IdleConnector("A", 1, ALL, offline_a=10.6, floor_a=6, current_a=None),
        IdleConnector("B", 1, ALL, offline_a=10.6, floor_a=6, current_a=None),
        IdleConnector("C", 1, ALL, offline_a=10.6, floor_a=6, current_a=10.6),
    ]
    targets = fallback_targets(ZONES, {1: (12.0, 12.0, 12.0)}, idle)
    # C keeps its 10.6 A; the 1.4 A left is below A's and B's floor.
    assert targets == {"A": 0.0, "B": 0.0, "C": 10.6}
    # Without C's, served by key: A gets 10.6 A, B nothing.
    idle[2] = IdleConnector("C", 1, ALL, offline_a=10.6, floor_a=6, current_a=None)
    assert fallback_targets(ZONES, {1: (12.0, 12.0, 12.0)}, idle) == {"A": 10.6, "B": 0.0, "C": 0.0}


def test_below_a_meter_an_idle_fallback_is_raised_only_as_far_as_it_fits_twice():
    """An EV nobody knows of draws its fallback, which the meter counts as building load too."""
    idle = [IdleConnector("A", 1, ALL, offline_a=16, floor_a=6, current_a=6.0)]
    # 8 A free besides its 6 A: raised by 4 A, to 10 A.
    assert fallback_targets(METERED, {1: (14.0, 14.0, 14.0)}, idle) == {"A": 10.0}
    # Its EV then draws 10 A, 4 A more in the meter: 10 A is left besides; it stays.
    assert fallback_targets(
        METERED,
        {1: (10.0, 10.0, 10.0)},
        [IdleConnector("A", 1, ALL, offline_a=16, floor_a=6, current_a=10.0)],
    ) == {"A": 10.0}
    assert fallback_targets(ZONES, {1: (14.0, 14.0, 14.0)}, idle) == {"A": 14.0}


def test_a_fallback_is_not_raised_for_less_than_the_deadband():
    idle = [IdleConnector("A", 1, ALL, offline_a=16, floor_a=6, current_a=8.5)]
    assert fallback_targets(ZONES, {1: (9.0, 9.0, 9.0)}, idle) == {"A": 8.5}
    assert fallback_targets(ZONES, {1: (20.0, 20.0, 20.0)}, idle) == {"A": 16.0}


def test_a_charging_connectors_fallback_stays_within_its_live_setpoint():
    assert session_fallback_a(16, offline_a=16, live_a=6) == 6  # lowered at once
    assert session_fallback_a(6, offline_a=16, live_a=6.5) == 6  # small raises cost nothing
    assert session_fallback_a(6, offline_a=16, live_a=20) == 16  # back to the offline current
    assert session_fallback_a(None, offline_a=16, live_a=0) == 0
