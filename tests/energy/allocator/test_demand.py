"""Consumption optimisation and idle suspension (SPEC §3.3)."""

from __future__ import annotations

from apps.energy.allocator import Reason, Session, SiteSettings

from .helpers import NOW_S, ac, run, setpoints, static

SETTLED_S = NOW_S - 120  # the last setpoint was sent two minutes ago
IDLE = SiteSettings(idle_suspension_enabled=True, idle_after_s=300, wake_up_interval_s=600)


def test_an_ev_drawing_far_below_its_setpoint_is_capped_and_others_get_the_rest() -> None:
    """Draws 10 A of 20 A (more than 4 A below): capped at 10 + 2 A; the other gets 28 A."""
    slow = ac(
        "slow", last_setpoint_a=20, last_setpoint_at_s=SETTLED_S, measured_current_a=(10,) * 3
    )
    busy = ac(
        "busy", last_setpoint_a=20, last_setpoint_at_s=SETTLED_S, measured_current_a=(19.5,) * 3
    )
    allocation = run([static(1, 40)], [slow, busy])
    assert setpoints(allocation) == {"slow": 12.0, "busy": 28.0}
    assert allocation.session("slow").reason is Reason.EV_DEMAND
    assert allocation.session("slow").max_a == 12.0
    assert allocation.session("busy").reason is Reason.ZONE_LIMIT


def test_an_optimised_ev_keeps_its_cap_until_it_comes_within_the_increase_gap() -> None:
    def optimised(measured_a: float) -> Session:
        return ac(
            "ev",
            last_setpoint_a=12,
            last_setpoint_at_s=SETTLED_S,
            last_reason=Reason.EV_DEMAND,
            measured_current_a=(measured_a,) * 3,
        )

    # 2 A below: neither far enough to lower again nor close enough to raise.
    assert run([static(1, 40)], [optimised(10)]).session("ev").setpoint_a == 12.0
    # Within 1 A: offered more again.
    assert run([static(1, 40)], [optimised(11.5)]).session("ev").setpoint_a == 32.0


def test_a_session_not_optimised_is_not_held_back_by_a_small_shortfall() -> None:
    ev = ac("ev", last_setpoint_a=16, last_setpoint_at_s=SETTLED_S, measured_current_a=(14,) * 3)
    assert run([static(1, 40)], [ev]).session("ev").setpoint_a == 32.0


def test_optimisation_waits_for_the_ev_to_follow_a_new_setpoint() -> None:
    """Ten seconds after a raise the EV is still ramping: its low draw is not demand."""
    ev = ac("ev", last_setpoint_a=32, last_setpoint_at_s=NOW_S - 10, measured_current_a=(6,) * 3)
    assert run([static(1, 40)], [ev]).session("ev").setpoint_a == 32.0


def test_optimisation_cap_never_goes_below_the_floor() -> None:
    ev = ac("ev", last_setpoint_a=32, last_setpoint_at_s=SETTLED_S, measured_current_a=(2,) * 3)
    allocation = run([static(1, 40)], [ev])
    assert allocation.session("ev").setpoint_a == 6.0
    assert allocation.session("ev").reason is Reason.EV_DEMAND


def test_optimisation_can_be_disabled() -> None:
    ev = ac("ev", last_setpoint_a=20, last_setpoint_at_s=SETTLED_S, measured_current_a=(10,) * 3)
    settings = SiteSettings(optimisation_enabled=False)
    assert run([static(1, 40)], [ev], settings=settings).session("ev").setpoint_a == 32.0


def _idle_ev(
    idle_since_s: float | None,
    measured_a: float = 0.2,
    key: str = "idle",
    last_setpoint_a: float = 16,
) -> Session:
    return ac(
        key,
        last_setpoint_a=last_setpoint_a,
        last_setpoint_at_s=SETTLED_S,
        measured_current_a=(measured_a,) * 3,
        idle_since_s=idle_since_s,
    )


def test_an_idle_session_starts_its_idle_clock() -> None:
    allocation = run([static(1, 32)], [_idle_ev(None)], settings=IDLE)
    assert allocation.session("idle").idle_since_s == NOW_S
    assert allocation.session("idle").setpoint_a > 0


def test_a_session_idle_for_too_long_is_suspended_and_its_current_goes_to_others() -> None:
    busy = ac(
        "busy", measured_current_a=(16,) * 3, last_setpoint_a=16, last_setpoint_at_s=SETTLED_S
    )
    idle = _idle_ev(NOW_S - 301)
    allocation = run([static(1, 32)], [idle, busy], settings=IDLE)
    assert allocation.session("idle").setpoint_a == 0
    assert allocation.session("idle").reason is Reason.IDLE_SUSPENDED
    assert allocation.session("idle").idle_since_s == NOW_S - 301
    assert allocation.session("busy").setpoint_a == 32.0


def test_a_suspended_idle_session_is_woken_up_periodically() -> None:
    # Suspended at idle_since + 300 s; woken up 600 s later for 60 s.
    suspended = _idle_ev(NOW_S - 300 - 600 + 10, last_setpoint_a=0)
    probing = _idle_ev(NOW_S - 300 - 600 - 10, last_setpoint_a=0)
    after_probe = _idle_ev(NOW_S - 300 - 600 - 70, last_setpoint_a=32)
    for ev, expected_a in ((suspended, 0.0), (probing, 32.0), (after_probe, 0.0)):
        allocation = run([static(1, 32)], [ev], settings=IDLE)
        assert allocation.session("idle").setpoint_a == expected_a


def test_a_session_that_draws_again_is_no_longer_idle() -> None:
    allocation = run([static(1, 32)], [_idle_ev(NOW_S - 5000, measured_a=15.5)], settings=IDLE)
    assert allocation.session("idle").idle_since_s is None
    assert allocation.session("idle").setpoint_a == 32.0


def test_a_session_shed_for_capacity_is_not_counted_idle() -> None:
    shed = ac("shed", last_setpoint_a=0, measured_current_a=(0,) * 3)
    allocation = run([static(1, 32)], [shed], settings=IDLE)
    assert allocation.session("shed").idle_since_s is None


def test_idle_suspension_disabled_keeps_offering_current() -> None:
    allocation = run([static(1, 32)], [_idle_ev(NOW_S - 5000)])
    assert allocation.session("idle").setpoint_a > 0
