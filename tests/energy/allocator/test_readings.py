"""What a session's sample may count for in a meter reading (pure)."""

from __future__ import annotations

from apps.energy.allocator.envelope import ConnectorProfiles, Slot
from apps.energy.allocator.readings import lowest_in_force_a, sample_cap

LOWERED = [(16.0, 100.0, 100.1), (10.0, 200.0, 200.2)]  # 16 A, then 10 A accepted at 200.2


def cap(history, read_from_s, *, envelope_a=16.0, read_to_s=None):
    return sample_cap(
        history,
        read_from_s,
        read_from_s if read_to_s is None else read_to_s,
        first_before_a=6.0,
        envelope_a=envelope_a,
        response_s=5.0,
        ramp_s=3.0,
    )


def test_an_ev_following_a_decrease_counts_up_to_the_higher_value_and_is_not_raised():
    result = cap(LOWERED, 201.0)
    assert (result.cap_a, result.lowest_a, result.raise_limit_a) == (16.0, 10.0, 10.0)


def test_once_the_response_time_is_over_the_lower_value_counts():
    assert cap(LOWERED, 205.3).cap_a == 10.0
    assert cap(LOWERED, 205.3).raise_limit_a is None


def test_never_above_the_envelope_the_connector_is_budgeted_at():
    assert cap(LOWERED, 201.0, envelope_a=12.0).cap_a == 12.0
    assert cap(LOWERED, 201.0, envelope_a=8.0).cap_a == 10.0


def test_a_raise_after_the_decrease_keeps_the_lowest_value():
    history = [*LOWERED, (14.0, 201.0, 201.1)]
    result = cap(history, 201.5)
    assert (result.cap_a, result.raise_limit_a) == (14.0, None)


def test_a_value_the_ev_may_still_be_ramping_up_to_is_not_lifted_to():
    ramping = [(6.0, 100.0, 100.1), (16.0, 199.0, 199.1), (10.0, 200.0, 200.2)]
    assert cap(ramping, 201.0).cap_a == 10.0
    ramped = [(6.0, 100.0, 100.1), (16.0, 190.0, 190.1), (10.0, 200.0, 200.2)]
    assert cap(ramped, 201.0).cap_a == 16.0


def test_without_history_nothing_is_known():
    assert cap([], 201.0) is None
    assert lowest_in_force_a([], 1.0, 2.0, first_before_a=6.0) is None


def test_a_connectors_lowest_limit_includes_values_sent_but_not_confirmed():
    live = Slot().accepted(10.0, at_s=100.0, response_s=5.0)
    live = live.accepted(0.0, at_s=190.0, response_s=5.0).sending(15.0, at_s=199.0)
    profiles = ConnectorProfiles(
        fallback=Slot().accepted(6.0, at_s=0.0, response_s=5.0),
        live=live.unanswered(15.0),
        live_transaction_id=7,
    )
    assert profiles.lowest_a(200.0, 7) == 0.0
    assert profiles.envelope_a(200.0, 7) == 15.0
    assert profiles.lowest_a(200.0, 8) == 6.0  # another transaction: its fallback governs
