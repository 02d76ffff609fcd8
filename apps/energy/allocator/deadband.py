"""Deadband against the last sent setpoint, subordinate to every limit.

Sending a new charging profile for a 0.3 A change floods a thousand stations for
nothing, so a session keeps its last sent setpoint while the new one differs by
less than the deadband (1 A). Keeping it never breaks a limit: whenever the kept
values would overload a zone phase or break an imbalance limit, the sessions
kept in that zone go to their new values (which are known to fit), until every
limit holds again.
"""

from __future__ import annotations

from collections.abc import Sequence

from .fairness import Claim, Grid


def apply_deadband(
    claims: Sequence[Claim],
    last_da: Sequence[int | None],
    connector_max_da: Sequence[int],
    grid: Grid,
    deadband_da: int,
) -> set[int]:
    """Set held claims back to their last sent value; return their positions.

    ``last_da``/``connector_max_da`` are indexed by claim position. A value is only
    kept when both old and new are non-zero (starting and suspending are always
    sent) and the old one is still a valid setpoint: at least the floor and at
    most the connector maximum.
    """
    held: dict[int, tuple[Claim, int]] = {}
    for claim in claims:
        last = last_da[claim.position]
        new = claim.value_da
        if last is None or new == 0 or last == new:
            continue
        if (
            abs(last - new) < deadband_da
            and claim.floor_da <= last <= connector_max_da[claim.position]
        ):
            held[claim.position] = (claim, new)
    if not held:
        return set()

    load = list(grid.load)
    for claim, new in held.values():
        last = last_da[claim.position]
        assert last is not None
        for index in claim.constraints:
            load[index] += last - new
        claim.value_da = last

    headroom = grid.headroom
    while True:
        to_release: set[int] = set()
        for index, value in enumerate(load):
            if value > headroom[index]:
                zone, phase = divmod(index, 3)
                to_release.update(
                    position
                    for position, (claim, _new) in held.items()
                    if zone in claim.chain and phase in claim.phases
                )
        for zone, limit in grid.imbalance:
            loads = load[zone * 3 : zone * 3 + 3]
            if max(loads) - min(loads) > limit:
                to_release.update(
                    position for position, (claim, _new) in held.items() if zone in claim.chain
                )
        if not to_release:
            return set(held)
        for position in to_release:
            claim, new = held.pop(position)
            for index in claim.constraints:
                load[index] += new - claim.value_da
            claim.value_da = new
