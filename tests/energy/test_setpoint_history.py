"""Which setpoint a station was on while the meters were read."""

from datetime import UTC, datetime
from types import SimpleNamespace

from apps.energy.snapshot import ramping_to_a
from apps.energy.state import HISTORY_LENGTH, setpoint_in_force_a, with_history


def entry(setpoint_a: float, transaction_id: int = 7) -> dict:
    return {"transaction_id": transaction_id, "setpoint_a": setpoint_a}


def history_of(*items: tuple[float, float, float]) -> dict:
    """An accepted entry after ``(setpoint_a, sent_at_s, accepted_at_s)`` items, in order."""
    current = None
    for setpoint_a, sent_at_s, accepted_at_s in items:
        current = with_history(
            entry(setpoint_a), current, sent_at_s=sent_at_s, accepted_at_s=accepted_at_s
        )
    assert current is not None
    return current


def test_a_reading_before_the_lower_setpoint_was_sent_shows_the_ev_on_the_higher_one() -> None:
    last = history_of((16.0, 100.0, 100.1), (8.0, 200.0, 200.3))
    assert setpoint_in_force_a(last, 199.0, 199.2, first_before_a=6.0) == 16.0


def test_a_reading_after_it_was_accepted_shows_the_lower_one() -> None:
    last = history_of((16.0, 100.0, 100.1), (8.0, 200.0, 200.3))
    assert setpoint_in_force_a(last, 200.4, 200.5, first_before_a=6.0) == 8.0


def test_a_reading_while_it_was_on_its_way_takes_the_lower_of_the_two() -> None:
    lowered = history_of((16.0, 100.0, 100.1), (8.0, 200.0, 200.3))
    raised = history_of((8.0, 100.0, 100.1), (16.0, 200.0, 200.3))
    assert setpoint_in_force_a(lowered, 199.9, 200.1, first_before_a=6.0) == 8.0
    assert setpoint_in_force_a(raised, 199.9, 200.1, first_before_a=6.0) == 8.0
    # An increase accepted after the reading: the EV was still on the lower value.
    assert setpoint_in_force_a(raised, 199.0, 199.5, first_before_a=6.0) == 8.0


def test_every_setpoint_of_a_long_reading_counts() -> None:
    last = history_of((16.0, 100.0, 100.1), (10.0, 200.0, 200.1), (13.0, 300.0, 300.1))
    assert setpoint_in_force_a(last, 150.0, 350.0, first_before_a=6.0) == 10.0
    assert setpoint_in_force_a(last, 250.0, 350.0, first_before_a=6.0) == 10.0
    assert setpoint_in_force_a(last, 301.0, 350.0, first_before_a=6.0) == 13.0


def test_before_the_first_setpoint_the_station_was_on_its_fallback() -> None:
    last = history_of((16.0, 100.0, 100.1))
    assert setpoint_in_force_a(last, 99.0, 99.5, first_before_a=6.0) == 6.0
    assert setpoint_in_force_a(last, 99.0, 100.05, first_before_a=6.0) == 6.0
    assert setpoint_in_force_a(last, 100.2, 100.5, first_before_a=6.0) == 16.0


def test_a_renewal_keeps_the_moment_the_value_was_first_applied() -> None:
    last = history_of((16.0, 100.0, 100.1), (16.0, 160.0, 160.1))
    assert last["history"] == [[16.0, 100.0, 100.1]]
    assert setpoint_in_force_a(last, 150.0, 150.5, first_before_a=6.0) == 16.0


def test_a_new_transaction_starts_a_new_history() -> None:
    old = history_of((16.0, 100.0, 100.1))
    new = with_history(entry(10.0, transaction_id=8), old, sent_at_s=200.0, accepted_at_s=200.1)
    assert new["history"] == [[10.0, 200.0, 200.1]]
    assert new["history_complete"] is True


def test_a_forgotten_setpoint_may_have_been_anything() -> None:
    items = [(6.0 + n, 100.0 * n, 100.0 * n + 0.1) for n in range(1, HISTORY_LENGTH + 3)]
    last = history_of(*items)
    assert len(last["history"]) == HISTORY_LENGTH
    assert last["history_complete"] is False
    oldest_sent_s = last["history"][0][1]
    assert setpoint_in_force_a(last, oldest_sent_s - 1, oldest_sent_s, first_before_a=6.0) == 0.0


def test_no_history_means_no_estimate() -> None:
    assert setpoint_in_force_a(entry(16.0), 0.0, 1.0, first_before_a=6.0) is None


def sample_at(at_s: float):
    return SimpleNamespace(sampled_at=datetime.fromtimestamp(at_s, UTC))


def test_an_ev_is_taken_to_follow_an_increase_until_a_sample_shows_it(settings) -> None:
    settings.EV_RAMP_S = 3
    raised = history_of((8.0, 100.0, 100.1), (16.0, 200.0, 200.2))
    old_sample = sample_at(195.0)
    assert ramping_to_a(raised, old_sample, 201.0, first_before_a=6.0) == 16.0
    assert ramping_to_a(raised, None, 204.0, first_before_a=6.0) == 16.0
    # Once the EV had time to follow, a sample tells; without one, after the
    # time the triggered sample takes, the ramp is no longer assumed.
    assert ramping_to_a(raised, sample_at(203.5), 204.0, first_before_a=6.0) is None
    assert ramping_to_a(raised, old_sample, 205.5, first_before_a=6.0) is None


def test_no_ramp_is_assumed_after_a_decrease_or_a_renewal(settings) -> None:
    settings.EV_RAMP_S = 3
    lowered = history_of((16.0, 100.0, 100.1), (8.0, 200.0, 200.2))
    assert ramping_to_a(lowered, None, 201.0, first_before_a=6.0) is None
    renewed = history_of((16.0, 100.0, 100.1), (16.0, 200.0, 200.2))
    assert ramping_to_a(renewed, None, 201.0, first_before_a=6.0) is None
    # A first setpoint above the fallback the station was on is an increase.
    first = history_of((16.0, 200.0, 200.2))
    assert ramping_to_a(first, None, 201.0, first_before_a=6.0) == 16.0
    assert ramping_to_a(first, None, 201.0, first_before_a=20.0) is None
