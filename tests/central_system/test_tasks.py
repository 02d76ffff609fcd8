"""Celery entry points of the central system, run against a station on the real consumer."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from apps.central_system import services
from apps.central_system.models import CommandResult, CommandStatus
from apps.central_system.tasks import station_command_task
from tests.stations.factories import StationFactory

pytestmark = pytest.mark.django_db


def test_a_redelivered_command_task_sends_the_command_once(make_station, redis_url):
    station = StationFactory()
    request = services.command_request(
        identity=station.identity, action="Reset", payload={"type": "Hard"}
    )

    def deliver() -> str:
        # What the broker hands a worker, each time it delivers the task.
        return station_command_task(
            station.identity,
            "Reset",
            {"type": "Hard"},
            request_id=str(request.request_id),
            timeout_s=5,
        )

    async def scenario():
        cp = make_station(station.identity)
        await cp.open()
        first = asyncio.create_task(sync_to_async(deliver)())
        frame = await cp.receive()
        assert frame[0] == 2 and frame[2:] == ["Reset", {"type": "Hard"}]
        await cp.answer(frame, {"status": "Accepted"})
        assert await first == CommandStatus.ANSWERED
        # The same task again (a redelivery): nothing reaches the station.
        assert await sync_to_async(deliver)() == CommandStatus.ANSWERED
        assert await cp.nothing_more(timeout=1.0)
        await cp.close()

    async_to_sync(scenario)()
    result = CommandResult.objects.get()
    assert (result.status, result.response) == (CommandStatus.ANSWERED, {"status": "Accepted"})
