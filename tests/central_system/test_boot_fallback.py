"""After a boot the fallback profile is sent once: by the boot follow-up, not again by the loop."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from apps.energy.allocator import allocate
from apps.energy.planning import plan_deliveries
from apps.energy.snapshot import build_snapshot
from tests.stations.factories import ConnectorFactory, DcConnectorFactory, StationFactory
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db


def _plan():
    context = build_snapshot()
    return context, plan_deliveries(context, allocate(context.snapshot))


@pytest.mark.parametrize("answer", ["Accepted", "Rejected"])
def test_the_loop_leaves_the_boot_fallback_to_the_boot(make_station, hot_state, answer):
    zone = ZoneFactory(max_current_a=Decimal("40"))
    installed = StationFactory(zone=zone)
    ConnectorFactory(station=installed, connector_id=1)
    ConnectorFactory(station=installed, connector_id=2)
    keys = {f"{installed.identity}/1", f"{installed.identity}/2"}

    async def scenario():
        cp = make_station(installed.identity)
        await cp.open()
        await cp.boot()
        clear = await cp.receive()
        assert clear[2] == "ClearChargingProfile"
        await cp.answer(clear, {"status": "Accepted"})
        first = await cp.receive()
        assert first[2] == "SetChargingProfile"
        # Sent, not answered yet: the loop does not send it again meanwhile.
        _context, in_flight = await sync_to_async(_plan)()
        await cp.answer(first, {"status": answer})
        second = await cp.receive()
        await cp.answer(second, {"status": answer})
        for _ in range(3):
            await cp.answer(await cp.receive(), {"status": "Accepted"})
        await asyncio.sleep(0.3)  # the answers are recorded off the event loop
        context, after = await sync_to_async(_plan)()
        await cp.close()
        return in_flight, context, after, [first, second]

    in_flight, context, after, sent = async_to_sync(scenario)()
    assert not [d for d in in_flight if d.kind == "fallback" and d.ref.key in keys]
    limits = {
        f[3]["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]
        for f in sent
    }
    if answer == "Accepted":
        # Recorded as the station's: counted at it, and nothing to send again.
        for key in keys:
            assert context.profiles[key].fallback.confirmed_a in limits
            assert not context.profiles[key].fallback.held
        assert not [d for d in after if d.kind == "fallback" and d.ref.key in keys]
    else:
        # Refused: still held (counted at what it may draw), asked again after the retry delay.
        for key in keys:
            assert context.profiles[key].fallback.held
            assert context.profiles[key].fallback.confirmed_a is None


def test_a_dc_fallback_is_recorded_in_amps(make_station, hot_state):
    zone = ZoneFactory(max_current_a=Decimal("200"))
    installed = StationFactory(zone=zone)
    DcConnectorFactory(station=installed, connector_id=1)
    key = f"{installed.identity}/1"

    async def scenario():
        cp = make_station(installed.identity)
        await cp.open()
        await cp.boot()
        frames = []
        for _ in range(5):
            frame = await cp.receive()
            frames.append(frame)
            await cp.answer(frame, {"status": "Accepted"})
        await asyncio.sleep(0.3)
        context = await sync_to_async(build_snapshot)()
        await cp.close()
        return frames, context

    frames, context = async_to_sync(scenario)()
    [profile] = [f[3]["csChargingProfiles"] for f in frames if f[2] == "SetChargingProfile"]
    assert profile["chargingSchedule"]["chargingRateUnit"] == "W"
    # The slot holds amps per phase, as the control loop's own deliveries record them.
    confirmed_a = context.profiles[key].fallback.confirmed_a
    assert confirmed_a == pytest.approx(context.offline_a[key], abs=0.1)
