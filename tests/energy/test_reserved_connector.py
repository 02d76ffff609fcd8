"""A reserved connector is budgeted as an arriving session would be: at its fallback.

A reservation holds a connector empty until its driver arrives; the car then
charges at once at the connector's fallback (TxDefaultProfile), before the
control loop runs. So the load manager counts it as any connected connector
without a session: at the fallback it granted it from what the sessions leave.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync

from apps.central_system import hotstate as cs_hotstate
from apps.energy.allocator import allocate
from apps.energy.planning import plan_deliveries
from apps.energy.snapshot import build_snapshot
from tests.energy.helpers import confirm_fallbacks
from tests.stations.factories import ConnectorFactory, StationFactory
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db


def test_a_reserved_connector_gets_and_counts_a_fallback_like_an_idle_one(hot_state):
    zone = ZoneFactory(max_current_a=Decimal("40"))
    station = StationFactory(zone=zone)
    ConnectorFactory(station=station, connector_id=1, status="Reserved")
    ConnectorFactory(station=station, connector_id=2, status="Available")
    async_to_sync(cs_hotstate.connection_open)(
        station.identity, f"specific.test!{station.identity}", remote_addr=None
    )
    reserved, available = f"{station.identity}/1", f"{station.identity}/2"
    confirm_fallbacks([reserved, available], fallback_a=16.0)

    context = build_snapshot()
    assert set(context.idle) == {reserved, available}
    fallbacks = {
        delivery.ref.key: delivery.value_a
        for delivery in plan_deliveries(context, allocate(context.snapshot))
        if delivery.kind == "fallback"
    }
    # Both get their offline current (20 A each: the 40 A zone split between them),
    # so the reserved one's arriving car is within the zone's budget at once.
    assert fallbacks == {reserved: 20.0, available: 20.0}
    assert context.offline_a[reserved] == 20.0
