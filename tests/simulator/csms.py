"""A minimal OCPP 1.6 central system for the simulator's integration tests.

Built on the ``ocpp`` library's server side and ``websockets``, on an
ephemeral port: it records every CALL a station sends, answers like a
lenient central system, and lets a test send CALLs, drop connections and
refuse new ones.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response


@dataclass(frozen=True)
class Received:
    identity: str
    action: str
    payload: dict[str, Any]
    connection: int


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class _StationLink(ChargePoint):
    def __init__(self, identity: str, connection: ServerConnection, cs: CentralSystem, n: int):
        super().__init__(identity, connection, response_timeout=10)
        self.cs = cs
        self.connection_number = n

    def _record(self, action: str, payload: dict[str, Any]) -> None:
        self.cs.received.append(Received(self.id, action, payload, self.connection_number))

    @on(Action.boot_notification)
    def on_boot_notification(self, **payload: Any) -> call_result.BootNotification:
        self._record("BootNotification", payload)
        statuses = self.cs.boot_statuses
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        interval = self.cs.heartbeat_interval_s if status == "Accepted" else self.cs.retry_s
        return call_result.BootNotification(current_time=_now(), interval=interval, status=status)

    @on(Action.heartbeat)
    def on_heartbeat(self, **payload: Any) -> call_result.Heartbeat:
        self._record("Heartbeat", payload)
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)
    def on_status_notification(self, **payload: Any) -> call_result.StatusNotification:
        self._record("StatusNotification", payload)
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_tag: str, **payload: Any) -> call_result.Authorize:
        self._record("Authorize", {"id_tag": id_tag, **payload})
        return call_result.Authorize(id_tag_info={"status": self.cs.tag_status(id_tag)})

    @on(Action.start_transaction)
    def on_start_transaction(self, **payload: Any) -> call_result.StartTransaction:
        self._record("StartTransaction", payload)
        return call_result.StartTransaction(
            transaction_id=next(self.cs.transaction_ids),
            id_tag_info={"status": self.cs.tag_status(payload["id_tag"])},
        )

    @on(Action.stop_transaction)
    def on_stop_transaction(self, **payload: Any) -> call_result.StopTransaction:
        self._record("StopTransaction", payload)
        return call_result.StopTransaction()

    @on(Action.meter_values)
    def on_meter_values(self, **payload: Any) -> call_result.MeterValues:
        self._record("MeterValues", payload)
        return call_result.MeterValues()

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status(self, **payload: Any) -> call_result.DiagnosticsStatusNotification:
        self._record("DiagnosticsStatusNotification", payload)
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, **payload: Any) -> call_result.FirmwareStatusNotification:
        self._record("FirmwareStatusNotification", payload)
        return call_result.FirmwareStatusNotification()


class CentralSystem:
    """Start with ``async with CentralSystem(...) as cs``; stations connect to ``cs.url``."""

    def __init__(
        self,
        *,
        boot_statuses: tuple[str, ...] = ("Accepted",),
        heartbeat_interval_s: int = 300,
        retry_s: int = 10,
        passwords: dict[str, str] | None = None,
        rejected_tags: frozenset[str] = frozenset(),
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.boot_statuses = list(boot_statuses)
        self.heartbeat_interval_s = heartbeat_interval_s
        self.retry_s = retry_s
        self.passwords = passwords
        self.rejected_tags = rejected_tags
        self.ssl_context = ssl_context
        self.refuse_connections = False
        self.received: list[Received] = []
        self.links: dict[str, _StationLink] = {}
        self.connection_count = 0
        self.refused_count = 0
        self.transaction_ids = itertools.count(1001)
        self._server: Server | None = None

    async def __aenter__(self) -> CentralSystem:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            subprotocols=["ocpp1.6"],
            process_request=self._process_request,
            ssl=self.ssl_context,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        scheme = "wss" if self.ssl_context else "ws"
        return f"{scheme}://127.0.0.1:{port}/ocpp"

    def tag_status(self, id_tag: str) -> str:
        return "Invalid" if id_tag in self.rejected_tags else "Accepted"

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.refuse_connections:
            self.refused_count += 1
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Not now\n")
        if self.passwords is not None:
            identity = request.path.rstrip("/").rsplit("/", 1)[-1]
            expected = base64.b64encode(
                f"{identity}:{self.passwords.get(identity, '')}".encode()
            ).decode()
            if request.headers.get("Authorization") != f"Basic {expected}":
                self.refused_count += 1
                return connection.respond(HTTPStatus.UNAUTHORIZED, "Bad credentials\n")
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        identity = connection.request.path.rstrip("/").rsplit("/", 1)[-1]
        self.connection_count += 1
        link = _StationLink(identity, connection, self, self.connection_count)
        self.links[identity] = link
        try:
            await link.start()
        except ConnectionClosed:
            pass
        finally:
            if self.links.get(identity) is link:
                del self.links[identity]

    # ------------------------------------------------------------------ for tests

    def messages(self, identity: str, action: str | None = None) -> list[Received]:
        return [
            m
            for m in self.received
            if m.identity == identity and (action is None or m.action == action)
        ]

    def payloads(self, identity: str, action: str) -> list[dict[str, Any]]:
        return [m.payload for m in self.messages(identity, action)]

    async def call(self, identity: str, payload: Any) -> Any:
        return await self.links[identity].call(payload, suppress=False)

    async def drop(self, identity: str) -> None:
        """Break the station's connection from the central system's side."""
        link = self.links.get(identity)
        if link is not None:
            link._connection.transport.abort()

    async def wait_for(
        self, predicate: Callable[[], object], timeout_s: float = 10.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or predicate}")
            await asyncio.sleep(0.01)
