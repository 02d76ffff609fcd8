"""What a connector may be drawing, from what its station is known to hold."""

from __future__ import annotations

from apps.energy.allocator.envelope import CLOCK_SKEW_S, ConnectorProfiles, Slot
from apps.energy.allocator.transition import raises_envelope

T = 1_000_000.0
RESPONSE_S = 5.0


def test_a_value_being_sent_counts_at_once_and_an_accepted_one_after_the_response_time():
    slot = Slot().accepted(16, at_s=T - 60, response_s=RESPONSE_S)
    raising = slot.sending(32, at_s=T)
    assert raising.at(T) == 32  # the station may apply it before it answers
    lowered = slot.sending(6, at_s=T).accepted(6, at_s=T + 1, response_s=RESPONSE_S)
    assert lowered.at(T + 1) == 16  # the EV may still draw the old limit…
    assert lowered.at(T + 1 + RESPONSE_S - 0.01) == 16
    assert lowered.at(T + 1 + RESPONSE_S) == 6  # …until it had time to follow
    assert lowered.settled_a() == 6
    assert lowered.released_at(T + 1) == T + 1 + RESPONSE_S


def test_a_refused_decrease_keeps_the_old_value_and_holds_the_slot():
    slot = Slot().accepted(32, at_s=T - 60, response_s=RESPONSE_S)
    refused = slot.sending(16, at_s=T).refused(16)
    assert refused.at(T + 100) == 32
    assert refused.held and refused.attempt_a == 16


def test_a_refused_increase_changes_nothing_the_budget_does_not_hold():
    slot = Slot().accepted(16, at_s=T - 60, response_s=RESPONSE_S)
    refused = slot.sending(32, at_s=T).refused(32)
    assert refused.at(T) == 16 and not refused.held


def test_an_unanswered_change_counts_as_applied_until_a_later_one_is_accepted():
    slot = Slot().accepted(16, at_s=T - 60, response_s=RESPONSE_S)
    lost = slot.sending(32, at_s=T).unanswered(32)
    assert lost.at(T + 3600) == 32 and lost.held
    settled = lost.sending(10, at_s=T + 10).accepted(10, at_s=T + 10, response_s=RESPONSE_S)
    assert settled.at(T + 10 + RESPONSE_S) == 10 and not settled.held


def test_unknown_profiles_count_at_the_connector_maximum():
    profiles = ConnectorProfiles.unknown(32, fallback_attempt_a=8)
    assert profiles.envelope_a(T, None) == 32
    assert profiles.held(None, T)
    assert profiles.fallback.attempt_a == 8


def test_the_fallback_always_counts_a_live_profile_only_for_its_transaction():
    profiles = ConnectorProfiles(
        fallback=Slot().accepted(6, at_s=T - 60, response_s=RESPONSE_S),
        live=Slot().accepted(20, at_s=T - 60, response_s=RESPONSE_S),
        live_transaction_id=7,
        live_valid_until_s=T + 60,
    )
    assert profiles.envelope_a(T, 7) == 20
    assert profiles.envelope_a(T, 8) == 6  # another transaction: only the fallback applies
    assert profiles.envelope_a(T, None) == 6


def test_a_station_clock_behind_keeps_a_lapsed_live_profile_counted_a_minute_more():
    """A live profile's validTo is read by the station's clock; one a minute behind
    keeps applying it after evce's own clock has passed it."""
    profiles = ConnectorProfiles(
        fallback=Slot().accepted(6, at_s=T - 600, response_s=RESPONSE_S),
        live=Slot().accepted(20, at_s=T - 600, response_s=RESPONSE_S),
        live_transaction_id=7,
        live_valid_until_s=T,
    )
    assert profiles.envelope_a(T + CLOCK_SKEW_S - 1, 7) == 20
    assert profiles.envelope_a(T + CLOCK_SKEW_S + 1, 7) == 6
    # A clock ahead lets the live profile lapse early: the station then applies
    # its fallback, which is always counted.
    assert profiles.envelope_a(T - 30, 7) >= profiles.fallback.at(T - 30)


def test_resending_a_value_that_only_lingers_is_a_raise():
    """At 6 A for good, 16 A still possible for two seconds: 16 A again would keep it."""
    slot = (
        Slot()
        .accepted(16, at_s=T - 60, response_s=RESPONSE_S)
        .sending(6, at_s=T - 3)
        .accepted(6, at_s=T - 3, response_s=RESPONSE_S)
    )
    assert slot.at(T) == 16
    assert raises_envelope(16, slot.settled_a())
    assert not raises_envelope(6, slot.settled_a())


def test_profiles_survive_their_json_form():
    profiles = ConnectorProfiles(
        fallback=Slot().accepted(6, at_s=T, response_s=RESPONSE_S).sending(0, at_s=T + 1),
        live=Slot.unknown(32, 16),
        live_transaction_id=None,
        live_valid_until_s=T + 120,
    )
    assert ConnectorProfiles.from_dict(profiles.as_dict()) == profiles
