"""Admission by priority and max-min fair water-filling on the zone tree.

Every quantity here is an ``int`` in deciamps. A *constraint* is one phase of one
zone, numbered ``zone_index * 3 + phase``; a session belongs to the constraints of
every zone of its chain (its zone and all ancestors) on every phase it loads, and
its setpoint counts fully in each of them.

Two steps, run for VIP sessions first and then for the others on what is left:

1. :func:`admit` gives each session its floor, in priority order, if the floor
   fits in every constraint and phase-imbalance limit it touches; the others get 0
   (load shedding). Admission only ever adds load that fits, so after it every
   constraint holds.
2. :func:`fill` raises the admitted sessions together ("water level") from their
   floors; a session stops when it reaches its cap, or when a constraint or an
   imbalance limit it is part of can no longer give one more deciamp to each of
   its rising sessions. Each step adds ``k × step`` to a constraint with ``k``
   rising sessions and ``step ≤ slack // k``, so no constraint is ever exceeded,
   and all sessions stopped by the same constraint end at the same value: the
   result is max-min fair to the deciamp.

A phase-imbalance limit couples phases rather than capping a sum, so sessions
stopped by one get extra passes (see :func:`fill`) instead of exact max-min
fairness; the limit itself always holds.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from .model import Reason

_WAITING, _ACTIVE, _FROZEN = 0, 1, 2


def constraint_indexes(chain: tuple[int, ...], phases: tuple[int, ...]) -> tuple[int, ...]:
    """The constraints a session in zone ``chain[0]`` loading ``phases`` counts against."""
    return tuple(zone * 3 + phase for zone in chain for phase in phases)


class Claim:
    """One session's working state during allocation (mutable, internal)."""

    __slots__ = (
        "cap_da",
        "cap_reason",
        "chain",
        "constraints",
        "floor_da",
        "key",
        "limit_phase",
        "limit_zone",
        "phases",
        "position",
        "reason",
        "state",
        "value_da",
    )

    def __init__(
        self,
        position: int,
        key: str,
        floor_da: int,
        cap_da: int,
        cap_reason: Reason,
        chain: tuple[int, ...],
        phases: tuple[int, ...],
        constraints: tuple[int, ...] | None = None,
    ) -> None:
        self.position = position
        self.key = key
        self.floor_da = floor_da
        self.cap_da = cap_da
        self.cap_reason = cap_reason
        self.chain = chain
        self.phases = phases
        self.constraints = (
            constraints if constraints is not None else constraint_indexes(chain, phases)
        )
        self.value_da = 0
        self.state = _WAITING
        self.reason = cap_reason
        self.limit_zone: int | None = None
        self.limit_phase: int | None = None

    def set_reason(self, reason: Reason, zone: int | None = None, phase: int | None = None) -> None:
        """Record why the claim stopped, and the zone/phase responsible if any."""
        self.reason = reason
        self.limit_zone = zone
        self.limit_phase = phase


class Grid:
    """Headroom and current load of every constraint, plus phase-imbalance limits.

    ``saturated`` remembers constraints that stopped rising sessions: they stay
    closed to anyone admitted later (non-VIP sessions after VIP ones), so the
    deciamps left over by integer division are never handed to a lower class.
    """

    __slots__ = ("headroom", "imbalance", "imbalance_limits", "load", "meter_lost", "saturated")

    def __init__(
        self, headroom: list[int], imbalance_limits: dict[int, int], meter_lost: Sequence[bool]
    ) -> None:
        self.headroom = headroom
        self.load = [0] * len(headroom)
        self.imbalance_limits = imbalance_limits
        self.imbalance = sorted(imbalance_limits.items())
        self.meter_lost = meter_lost
        self.saturated: set[int] = set()

    def violation(self, claim: Claim, amount_da: int) -> tuple[Reason, int, int] | None:
        """Why adding ``amount_da`` to ``claim`` would break a limit, or ``None`` if it fits.

        The reason is ``SHED_PRIORITY`` (others use the room), ``NO_CAPACITY`` (the
        constraint alone is too small) or ``IMBALANCE_LIMIT``, with zone and phase.
        """
        load, headroom, saturated = self.load, self.headroom, self.saturated
        for index in claim.constraints:  # the session's own zone first, then up the tree
            if load[index] + amount_da > headroom[index] or index in saturated:
                zone, phase = divmod(index, 3)
                if headroom[index] < amount_da:
                    return (Reason.NO_CAPACITY, zone, phase)
                return (Reason.SHED_PRIORITY, zone, phase)
        if len(claim.phases) < 3 and self.imbalance_limits:
            for zone in claim.chain:
                limit = self.imbalance_limits.get(zone)
                if limit is None:
                    continue
                base = zone * 3
                loads = [load[base + p] + (amount_da if p in claim.phases else 0) for p in range(3)]
                if max(loads) - min(loads) > limit:
                    return (Reason.IMBALANCE_LIMIT, zone, loads.index(max(loads)))
        return None


def admit(claims: Sequence[Claim], grid: Grid) -> list[Claim]:
    """Give each claim its floor, in the given (priority) order, if it fits; else 0.

    A claim that does not fit is skipped, not the end of admission: a lower-ranked
    session elsewhere in the tree, or with a smaller floor, may still fit.
    """
    admitted: list[Claim] = []
    load = grid.load
    for claim in claims:
        failure = grid.violation(claim, claim.floor_da)
        if failure is None:
            for index in claim.constraints:
                load[index] += claim.floor_da
            claim.value_da = claim.floor_da
            claim.set_reason(Reason.FLOOR)
            admitted.append(claim)
        else:
            claim.value_da = 0
            claim.set_reason(*failure)
    return admitted


def fill(participants: Sequence[Claim], grid: Grid) -> None:
    """Raise ``participants`` max-min fairly from their current values (already in ``grid``).

    Runs a few extra passes for sessions stopped by a phase-imbalance limit: that
    limit can loosen when sessions on the other phases rise afterwards.
    """
    _fill_once(participants, grid)
    for _ in range(3):
        stopped = [
            claim
            for claim in participants
            if claim.reason is Reason.IMBALANCE_LIMIT and claim.value_da < claim.cap_da
        ]
        if not stopped:
            return
        before = [
            (claim.value_da, claim.reason, claim.limit_zone, claim.limit_phase) for claim in stopped
        ]
        _fill_once(stopped, grid)
        rose = False
        for claim, (value, reason, zone, phase) in zip(stopped, before, strict=True):
            if claim.value_da == value:
                claim.set_reason(reason, zone, phase)
            else:
                rose = True
        if not rose:
            return


def _fill_once(participants: Sequence[Claim], grid: Grid) -> None:
    if not participants:
        return
    headroom, load, saturated = grid.headroom, grid.load, grid.saturated

    members: dict[int, list[Claim]] = {}
    zones_seen: set[int] = set()
    for claim in participants:
        claim.state = _WAITING
        zones_seen.update(claim.chain)
        for index in claim.constraints:
            members.setdefault(index, []).append(claim)
    touched = sorted(members)
    imbalance = [(zone, limit) for zone, limit in grid.imbalance if zone in zones_seen]
    active_count = dict.fromkeys(touched, 0)

    waiting = sorted(participants, key=lambda claim: (claim.value_da, claim.position))
    next_waiting = 0
    caps: list[tuple[int, int, Claim]] = []
    level = waiting[0].value_da
    active = 0

    def freeze(claim: Claim, reason: Reason, zone: int | None, phase: int | None) -> None:
        nonlocal active
        claim.state = _FROZEN
        claim.value_da = level
        active -= 1
        for index in claim.constraints:
            active_count[index] -= 1
        claim.set_reason(reason, zone, phase)

    def zone_reason(claim: Claim, zone: int) -> Reason:
        if level == claim.floor_da:
            return Reason.FLOOR
        return Reason.DEGRADED if grid.meter_lost[zone] else Reason.ZONE_LIMIT

    while True:
        # Sessions whose starting value the water level has reached start rising.
        while next_waiting < len(waiting) and waiting[next_waiting].value_da <= level:
            claim = waiting[next_waiting]
            next_waiting += 1
            claim.state = _ACTIVE
            active += 1
            for index in claim.constraints:
                active_count[index] += 1
            heapq.heappush(caps, (claim.cap_da, claim.position, claim))

        # Stop whoever cannot rise by one more deciamp; repeat until stable, because
        # stopping sessions on one phase can tighten an imbalance limit.
        while True:
            frozen_any = False
            while caps and caps[0][0] <= level:
                claim = heapq.heappop(caps)[2]
                if claim.state == _ACTIVE:
                    freeze(claim, claim.cap_reason, None, None)
            for index in touched:
                count = active_count[index]
                if count and (index in saturated or headroom[index] - load[index] < count):
                    saturated.add(index)
                    zone, phase = divmod(index, 3)
                    for claim in members[index]:
                        if claim.state == _ACTIVE:
                            freeze(claim, zone_reason(claim, zone), zone, phase)
                            frozen_any = True
            for zone, limit in imbalance:
                base = zone * 3
                for high in range(3):
                    for low in range(3):
                        rising = active_count.get(base + high, 0) - active_count.get(base + low, 0)
                        gap = load[base + high] - load[base + low]
                        if high == low or rising <= 0 or limit - gap >= rising:
                            continue
                        for claim in members[base + high]:
                            if claim.state == _ACTIVE and low not in claim.phases:
                                freeze(claim, Reason.IMBALANCE_LIMIT, zone, high)
                                frozen_any = True
            if not frozen_any:
                break

        if active == 0:
            if next_waiting == len(waiting):
                return
            level = waiting[next_waiting].value_da
            continue

        # The largest uniform rise that keeps every limit.
        while caps[0][2].state != _ACTIVE:
            heapq.heappop(caps)
        step = caps[0][0] - level
        if next_waiting < len(waiting):
            step = min(step, waiting[next_waiting].value_da - level)
        for index in touched:
            count = active_count[index]
            if count:
                step = min(step, (headroom[index] - load[index]) // count)
        for zone, limit in imbalance:
            base = zone * 3
            for high in range(3):
                for low in range(3):
                    rising = active_count.get(base + high, 0) - active_count.get(base + low, 0)
                    if high != low and rising > 0:
                        gap = load[base + high] - load[base + low]
                        step = min(step, (limit - gap) // rising)
        if step <= 0:  # cannot happen: every binding limit was frozen just above
            raise RuntimeError("water-filling made no progress")
        level += step
        for index in touched:
            count = active_count[index]
            if count:
                load[index] += count * step
