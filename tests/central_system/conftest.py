"""Fixtures of the central-system tests: a station talking to the real consumer."""

from __future__ import annotations

import json
import uuid
from typing import Any
from unittest import mock

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings

from apps.central_system import ocpp_log
from apps.central_system.daphne_ext import EXTENSION
from evce_site.routing import websocket_urlpatterns

application = URLRouter(websocket_urlpatterns)


@pytest.fixture(autouse=True)
def _keep_test_connection():
    # The consumer recycles database connections between messages; inside a
    # test transaction that would close the test's own connection.
    with mock.patch("channels.db.close_old_connections", lambda: None):
        yield


@pytest.fixture
def identity() -> str:
    return f"T{uuid.uuid4().hex[:12].upper()}"


class FakeStation:
    """A charge point driving the consumer frame by frame (raw OCPP-J)."""

    def __init__(
        self,
        identity: str,
        *,
        subprotocols: list[str] | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        port: int | None = None,
        path: str | None = None,
    ) -> None:
        self.identity = identity
        self.communicator = WebsocketCommunicator(
            application,
            path or f"/ocpp/{identity}",
            headers=headers or [],
            subprotocols=["ocpp1.6"] if subprotocols is None else subprotocols,
        )
        self.communicator.scope["server"] = ("127.0.0.1", port or settings.OCPP_PORT)
        self.communicator.scope["client"] = ("127.0.0.1", 50000)
        self.communicator.scope["extensions"] = {EXTENSION: {}}
        self._next_id = 0

    async def connect(self) -> dict[str, Any]:
        """The first message of the application: accept, close or an HTTP denial."""
        await self.communicator.send_input({"type": "websocket.connect"})
        return await self.communicator.receive_output(timeout=5)

    async def open(self) -> None:
        answer = await self.connect()
        assert answer == {"type": "websocket.accept", "subprotocol": "ocpp1.6"}, answer

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout: float = 5) -> list:
        return json.loads(await self.communicator.receive_from(timeout=timeout))

    async def call(
        self, action: str, payload: dict[str, Any], unique_id: str | None = None
    ) -> list:
        """Send a CALL and return the answer frame (CALLRESULT or CALLERROR)."""
        if unique_id is None:
            self._next_id += 1
            unique_id = f"m{self._next_id}"
        await self.send_text(json.dumps([2, unique_id, action, payload]))
        while True:
            frame = await self.receive()
            if frame[0] in (3, 4) and frame[1] == unique_id:
                return frame
            await self.on_call(frame)

    async def on_call(self, frame: list) -> None:
        """A CALL from the central system arrived meanwhile: accept it."""
        await self.answer(frame, {"status": "Accepted"})

    async def answer(self, frame: list, payload: dict[str, Any]) -> None:
        await self.send_text(json.dumps([3, frame[1], payload]))

    async def boot(self, vendor: str = "Acme", model: str = "Wallbox", **extra: Any) -> list:
        return await self.call(
            "BootNotification", {"chargePointVendor": vendor, "chargePointModel": model, **extra}
        )

    async def output(self, timeout: float = 5) -> dict[str, Any]:
        return await self.communicator.receive_output(timeout=timeout)

    async def nothing_more(self, timeout: float = 0.2) -> bool:
        return await self.communicator.receive_nothing(timeout=timeout)

    async def close(self) -> None:
        await self.communicator.disconnect()
        await ocpp_log.flush()


@pytest.fixture
def make_station():
    return FakeStation


@pytest.fixture(autouse=True)
def _handlers_in_the_test_transaction(settings):
    # The test's data lives in its uncommitted transaction: keep the handlers
    # on the thread that holds it.
    settings.OCPP_DB_THREADS = 0
