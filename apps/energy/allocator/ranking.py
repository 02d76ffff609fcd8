"""Priority ranking of sessions for load shedding (SPEC §3.3).

The ranking decides who keeps charging when not every session can get its floor.
It is recomputed only every ``rerank_interval_s`` (15 min) or when a session
arrives or leaves or the capacity changes: a ranking recomputed on every tick
would let two cars with nearly equal energy swap places over and over, and each
swap suspends one car and wakes the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .model import Priority, Ranking, Session


def priority_order(sessions: Iterable[Session], priority: Priority) -> tuple[str, ...]:
    """Session keys, highest priority first: VIP sessions, then by the site's priority.

    ``energy``: least energy received first; ``duration``: shortest charging first.
    The other measure, then the connector key, break ties, so the order is total
    and does not depend on input order.
    """

    def sort_key(session: Session) -> tuple[bool, float, float, str]:
        if priority is Priority.DURATION:
            return (not session.vip, session.charging_duration_s, session.energy_wh, session.key)
        return (not session.vip, session.energy_wh, session.charging_duration_s, session.key)

    return tuple(session.key for session in sorted(sessions, key=sort_key))


def rerank_due(
    previous: Ranking | None,
    keys: frozenset[str],
    *,
    now_s: float,
    capacity_signature: str,
    capacity_changed: bool,
    rerank_interval_s: float,
) -> bool:
    """True when the previous ranking may no longer be kept.

    That is: no previous ranking, the interval has elapsed (or the clock went
    back), a session arrived or left, or the capacity changed (flagged by the
    caller or seen in the zones' limits and meter states).
    """
    if previous is None or capacity_changed:
        return True
    age_s = now_s - previous.ranked_at_s
    if age_s < 0 or age_s >= rerank_interval_s:
        return True
    if previous.capacity_signature != capacity_signature:
        return True
    return frozenset(previous.keys) != keys or len(previous.keys) != len(keys)


def update_ranking(
    sessions: Sequence[Session],
    priority: Priority,
    previous: Ranking | None,
    *,
    now_s: float,
    capacity_signature: str,
    capacity_changed: bool,
    rerank_interval_s: float,
) -> tuple[Ranking, bool]:
    """The ranking to use now, and whether it was recomputed."""
    keys = frozenset(session.connector.key for session in sessions)
    if not rerank_due(
        previous,
        keys,
        now_s=now_s,
        capacity_signature=capacity_signature,
        capacity_changed=capacity_changed,
        rerank_interval_s=rerank_interval_s,
    ):
        assert previous is not None
        return previous, False
    ranking = Ranking(
        keys=priority_order(sessions, priority),
        ranked_at_s=now_s,
        capacity_signature=capacity_signature,
    )
    return ranking, True
