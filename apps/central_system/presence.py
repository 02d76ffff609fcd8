"""Which stations are online, for the load manager and the dashboard.

SPEC §2.1: a station is online while its socket is open (on any web process)
and its last message is younger than twice the heartbeat interval.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from apps.central_system import hotstate
from apps.siteconfig.models import SiteSettings


def connected_identities(identities: Iterable[str], *, now: float | None = None) -> set[str]:
    """The subset of ``identities`` (as given) that are online now."""
    wanted = list(dict.fromkeys(identities))
    if not wanted:
        return set()
    window_s = 2 * SiteSettings.load().heartbeat_interval_s
    now = now or time.time()
    seen = hotstate.last_seen_many(wanted)
    return {i for i in wanted if i in seen and now - seen[i] <= window_s}
