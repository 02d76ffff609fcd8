"""Shared set-ups of the control-loop tests."""

from __future__ import annotations

import time
from decimal import Decimal

from asgiref.sync import async_to_sync

from apps.central_system import commands
from apps.central_system import hotstate as cs_hotstate
from apps.energy import state
from apps.energy.allocator.envelope import ConnectorProfiles, Slot
from tests.stations.factories import ConnectorFactory, StationFactory, TransactionFactory


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


async def all_accepted(calls, *, timeout_s):
    """Stand-in for ``commands.call_many``: every station accepts at once."""
    return [commands.Outcome({"status": "Accepted"}, time.time()) for _call in calls]


def charging_station(zone):
    """A connected station of ``zone`` with a 32 A connector, a session and a confirmed fallback."""
    station = StationFactory(zone=zone)
    ConnectorFactory(station=station, connector_id=1, max_current_a=Decimal("32"))
    async_to_sync(cs_hotstate.connection_open)(
        station.identity, f"specific.test!{station.identity}", remote_addr=None
    )
    tx = TransactionFactory(station=station, connector_id=1)
    confirm_fallbacks([f"{station.identity}/1"])
    return station, tx
