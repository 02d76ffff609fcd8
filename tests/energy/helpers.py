"""Shared set-ups of the control-loop tests."""

from __future__ import annotations

import time

from apps.energy import state
from apps.energy.allocator.envelope import ConnectorProfiles, Slot


def confirm_fallbacks(keys, *, fallback_a: float = 0.0, ago_s: float = 60.0) -> None:
    """Each connector's station accepted a fallback of ``fallback_a`` a while ago.

    Without it a connector's profiles are unknown, and the load manager counts
    it at its maximum instead of allocating it (see ``allocator.envelope``).
    """
    now_s = time.time()
    state.save_profiles(
        {
            key: ConnectorProfiles(
                fallback=Slot().accepted(fallback_a, at_s=now_s - ago_s, response_s=5)
            )
            for key in keys
        },
        since_s=now_s,
    )
