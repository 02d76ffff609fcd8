"""How much of a meter reading a session's sample may account for.

A zone meter is read twice a second, a station samples its EV every few
seconds: the sample is older than the reading. The allocator subtracts each
EV from the meter at its sample, capped by the setpoint its station was on
while the meter was read, so that a stale sample never hides building load.

``history`` holds a session's accepted setpoints, oldest first, as
``(setpoint_a, sent_at_s, accepted_at_s)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

HistoryItem = Sequence[float]


def lowest_in_force_a(
    history: Sequence[HistoryItem],
    read_from_s: float,
    read_to_s: float,
    *,
    first_before_a: float,
    history_complete: bool = True,
) -> float | None:
    """The lowest setpoint the station may have been on while meters were read.

    A setpoint could be in force at some moment of ``[read_from_s, read_to_s]``
    unless it was replaced for sure before the reading began (its successor
    accepted) or sent only after it ended. Before a session's first setpoint
    the station was on ``first_before_a`` (its fallback); before a forgotten
    one, on anything (0). ``None`` without any history.
    """
    if not history:
        return None
    candidates = []
    if history[0][1] > read_from_s:
        candidates.append(first_before_a if history_complete else 0.0)
    for position, (setpoint_a, sent_at_s, _accepted_at_s) in enumerate(history):
        if sent_at_s > read_to_s:
            break
        successor = history[position + 1] if position + 1 < len(history) else None
        if successor is not None and successor[2] <= read_from_s:
            continue
        candidates.append(float(setpoint_a))
    return min(candidates)


@dataclass(frozen=True, slots=True)
class SampleCap:
    """What a session's sample may count for (``cap_a``) and what it may be raised to.

    ``lowest_a`` is the lowest setpoint in force during the reading. A cap
    above it (an EV following decreases) holds only while the EV's limit does
    not rise again: such a session is not raised above ``lowest_a`` by the
    allocation that uses the reading (``raise_limit_a``).
    """

    cap_a: float
    lowest_a: float

    @property
    def raise_limit_a(self) -> float | None:
        return self.lowest_a if self.cap_a > self.lowest_a else None


def sample_cap(
    history: Sequence[HistoryItem],
    read_from_s: float,
    read_to_s: float,
    *,
    first_before_a: float,
    history_complete: bool = True,
    envelope_a: float,
    response_s: float,
    ramp_s: float,
) -> SampleCap | None:
    """What a session's sample may count for in a reading of ``[read_from_s, read_to_s]``.

    In general, the lowest setpoint in force during the reading
    (:func:`lowest_in_force_a`): the EV may already be on it, and counting
    it higher would take building load for the EV's.

    One case is different: an EV following decreases. For ``response_s``
    after a decrease was accepted the EV may still draw the higher value, and
    the connector is budgeted at it (its envelope) all that time. Its sample
    then counts up to the highest value it may still be following, never
    above ``envelope_a``: were the EV already lower, the building load is
    under-estimated by at most what the envelope over-counts the EV, and,
    its limit only falling, the EV does not draw it again. Counting it at the
    lower value instead counts the same amps twice, once as building load,
    once in the envelope, and a zone whose sessions were all just lowered
    would shed them all for the response time.

    This holds only while the EV's limit falls: from the highest value on,
    every later setpoint is lower, and that value was reached (accepted at
    least ``ramp_s`` before the reading, or itself a decrease); and the
    allocation that uses the reading must not raise the session above the
    lowest value (:class:`SampleCap`). A fall of the meter below what the EV
    is counted for is a dip, which the allocator's dip hold covers
    (:func:`apps.energy.allocator.capacity.other_loads_da`).
    """
    lowest = lowest_in_force_a(
        history,
        read_from_s,
        read_to_s,
        first_before_a=first_before_a,
        history_complete=history_complete,
    )
    if lowest is None:
        return None
    top: int | None = None
    for position, (setpoint_a, sent_at_s, _accepted_at_s) in enumerate(history):
        if sent_at_s > read_to_s:
            break
        successor = history[position + 1] if position + 1 < len(history) else None
        if successor is not None:
            lingers_s = response_s if successor[0] < setpoint_a else 0.0
            if successor[2] + lingers_s < read_from_s:
                continue  # the EV was off it before the reading began
        if top is None or setpoint_a > history[top][0]:
            top = position
    if top is None:
        return SampleCap(lowest, lowest)
    top_a = float(history[top][0])
    if any(history[k][0] > history[k - 1][0] for k in range(top + 1, len(history))):
        return SampleCap(lowest, lowest)  # a raise after it: the EV may draw more later
    before_a = history[top - 1][0] if top > 0 else (first_before_a if history_complete else None)
    reached = before_a is not None and top_a <= before_a
    if not reached and history[top][2] + ramp_s > read_from_s:
        return SampleCap(lowest, lowest)  # the EV may still be ramping up to it
    return SampleCap(max(lowest, min(top_a, envelope_a)), lowest)


def ramping_to_a(
    history: Sequence[HistoryItem],
    sampled_at_s: float | None,
    now_s: float,
    *,
    first_before_a: float,
    ramp_s: float,
    confirm_s: float,
) -> float | None:
    """The raised setpoint an EV is taken to be ramping up to, while no sample shows it.

    Right after an increase the last sample still shows the EV on its old
    setpoint while a meter already sees it draw more. For ``ramp_s`` plus the
    time a sample asked for then takes to come (``confirm_s``) the EV may be
    drawing its new setpoint; a sample taken ``ramp_s`` after the increase was
    accepted (``sampled_at_s``) shows where it is, and after that window only
    samples count again. ``None``: no ramp (the last setpoint is no increase).
    """
    if not history:
        return None
    value_a, _sent_at_s, accepted_at_s = history[-1]
    before_a = history[-2][0] if len(history) > 1 else first_before_a
    if value_a <= before_a or now_s - accepted_at_s > ramp_s + confirm_s:
        return None
    if sampled_at_s is not None and sampled_at_s >= accepted_at_s + ramp_s:
        return None
    return float(value_a)
