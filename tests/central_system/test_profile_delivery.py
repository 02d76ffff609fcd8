"""The control loop's profile delivery, through the real consumer and channel layer."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import async_to_sync

from apps.energy import delivery, planning, profiles
from apps.energy.snapshot import ConnectorRef
from tests.stations.factories import StationFactory

pytestmark = pytest.mark.django_db


def _live(station, *, current_a: float) -> planning.Delivery:
    now_s = time.time()
    return planning.Delivery(
        ref=ConnectorRef(f"{station.identity}/1", station.pk, station.identity, 1, "AC", 7),
        payload=profiles.live_profile(
            1,
            transaction_id=7,
            current_a=current_a,
            power_w=None,
            now_s=now_s,
            valid_until_s=now_s + 60,
        ),
        kind="live",
        value_a=current_a,
    )


def test_an_accepted_increase_asks_for_a_fresh_sample(make_station, redis_url, monkeypatch):
    station = StationFactory()
    raised = _live(station, current_a=16)
    raised.raises = True
    renewed = _live(station, current_a=16)  # same value, new lease
    refused = _live(station, current_a=20)
    refused.raises = True
    asked: list = []
    monkeypatch.setattr(
        delivery.command_loop, "run_later", lambda delay_s, make: asked.append((delay_s, make))
    )
    delivery.ask_for_samples_after_ramp(
        [raised, renewed, refused], ["Accepted", "Accepted", "Rejected"]
    )
    # A sample once the EV had time to ramp, and a look once it may be in.
    assert [delay_s for delay_s, _make in asked] == [3.0, pytest.approx(5.1)]
    assert asked[1][1] is delivery._request_again

    async def scenario():
        cp = make_station(station.identity)
        await cp.open()
        asking = asyncio.create_task(asked[0][1]())
        frame = await cp.receive()
        assert frame[2:] == [
            "TriggerMessage",
            {"requestedMessage": "MeterValues", "connectorId": 1},
        ]
        await cp.answer(frame, {"status": "Accepted"})
        await asking
        await cp.close()

    async_to_sync(scenario)()
