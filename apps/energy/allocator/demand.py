"""What an EV wants: consumption optimisation and idle suspension (SPEC §3.3).

Both work from the measured current and the last setpoint sent, and keep no
state of their own: the caller feeds back ``last_reason`` and ``idle_since_s``.
"""

from __future__ import annotations

import math

from .model import Reason, Session, SiteSettings
from .units import deciamps_down, deciamps_up


def measured_draw_a(session: Session, phases: tuple[int, ...]) -> float | None:
    """The EV's current (A): the highest over the building phases it loads (``None``: unknown)."""
    measured = session.measured_current_a
    if measured is None:
        return None
    # Unrolled: this runs for every session of every allocation.
    if len(phases) == 3:
        value = max(measured)
    elif len(phases) == 1:
        value = measured[phases[0]]
    else:
        value = max(measured[phase] for phase in phases)
    return value if value > 0.0 else 0.0


def demand_cap_da(
    session: Session,
    draw_a: float | None,
    *,
    floor_da: int,
    now_s: float,
    settings: SiteSettings,
) -> int | None:
    """Upper bound from consumption optimisation (deciamps), or ``None`` to offer more.

    ``draw_a`` is the EV's current from :func:`measured_draw_a` (``None``: unknown).

    - EV draws less than its setpoint by more than the reduction trigger: cap at
      consumption + reduction gap, so the current it leaves goes to others.
    - EV draws within the increase gap of its setpoint: no cap (offered more).
    - In between, an already optimised session keeps its setpoint as cap
      (hysteresis, no flapping); any other session is not capped.
    - Until ``optimisation_settle_s`` has passed since the setpoint was sent the
      EV may still be ramping, so only an already optimised cap is kept.

    The cap is never below the floor: a car drawing a little still charges.
    """
    last_a = session.last_setpoint_a
    if not settings.optimisation_enabled or last_a is None or last_a <= 0:
        return None
    last_da = deciamps_down(last_a)
    optimised = session.last_reason is Reason.EV_DEMAND
    keep_da = max(floor_da, last_da) if optimised else None
    sent_at_s = session.last_setpoint_at_s
    if sent_at_s is not None and now_s - sent_at_s < settings.optimisation_settle_s:
        return keep_da
    if draw_a is None:
        return keep_da
    draw_da = deciamps_up(draw_a)
    shortfall_da = last_da - draw_da
    if shortfall_da > deciamps_down(settings.reduction_trigger_a):
        return max(floor_da, draw_da + deciamps_up(settings.reduction_gap_a))
    if shortfall_da <= deciamps_up(settings.increase_gap_a):
        return None
    return keep_da


def idle_state(
    session: Session, draw_a: float | None, *, now_s: float, settings: SiteSettings
) -> tuple[float | None, bool]:
    """``(idle_since_s, suspended)`` for a session drawing ``draw_a`` (``None``: unknown).

    A session becomes idle when, having been offered current (last setpoint > 0),
    it draws less than ``idle_threshold_a``; it stops being idle as soon as it
    draws that much. A session suspended for capacity is not idle by its own
    choice and does not start the clock. With idle suspension enabled, a session
    idle for ``idle_after_s`` is suspended; every ``wake_up_interval_s`` after
    that it is offered current again for ``wake_up_probe_s`` to see whether it
    now wants to charge (if it does, it is no longer idle).
    """
    previous_s = session.idle_since_s
    if draw_a is None:
        since_s = previous_s
    elif draw_a >= settings.idle_threshold_a:
        since_s = None
    elif previous_s is not None:
        since_s = previous_s
    elif (session.last_setpoint_a or 0.0) > 0:
        since_s = now_s
    else:
        since_s = None

    if not settings.idle_suspension_enabled or since_s is None:
        return since_s, False
    suspended_for_s = now_s - since_s - settings.idle_after_s
    if suspended_for_s < 0:
        return since_s, False
    wake_ups = math.floor(suspended_for_s / settings.wake_up_interval_s)
    probing = (
        wake_ups >= 1
        and suspended_for_s - wake_ups * settings.wake_up_interval_s < settings.wake_up_probe_s
    )
    return since_s, not probing
