"""A station on the real OCPP WebSocket consumer, answering what the API sends it.

The API call runs on the test's thread (its database transaction), the
station on the event loop: a command goes through the channel layer to the
consumer holding the station's socket, exactly as in production.
"""

from __future__ import annotations

import asyncio

from asgiref.sync import async_to_sync, sync_to_async
from rest_framework.test import APIClient

from tests.central_system.conftest import FakeStation


def request(client: APIClient, method: str, path: str, body=None):
    """The API call, on the test's thread, while the station answers on the loop."""
    return sync_to_async(getattr(client, method))(path, body, format="json")


def with_station(identity: str, exchange):
    """Connect a station, run ``exchange(cp)``, disconnect; return what it returned."""

    async def scenario():
        cp = FakeStation(identity)
        await cp.open()
        try:
            return await exchange(cp)
        finally:
            await cp.close()

    return async_to_sync(scenario)()


def answered(client, method, path, body, *, expect: list, answer, identity: str):
    """The API call; the station checks the CALL it gets and answers ``answer``."""

    async def exchange(cp):
        pending = asyncio.create_task(request(client, method, path, body))
        frame = await cp.receive()
        assert frame[0] == 2 and frame[2:] == expect
        if isinstance(answer, dict):
            await cp.answer(frame, answer)
        elif answer is not None:
            await cp.send_text(answer(frame[1]))
        return await pending

    return with_station(identity, exchange)
