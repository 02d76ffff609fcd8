"""A real OCPP 1.6-J charge point for live tests: the ``ocpp`` library over ``websockets``."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result


class TestChargePoint(ChargePoint):
    """Accepts every command and remembers what it received (action → list of payloads)."""

    __test__ = False  # not a pytest test class

    def __init__(self, identity: str, connection) -> None:
        super().__init__(identity, connection, response_timeout=15)
        self.received: dict[str, list[dict[str, Any]]] = {}
        self.configuration: dict[str, str] = {"HeartbeatInterval": "300"}
        self.got = asyncio.Event()

    def _note(self, action: str, **payload: Any) -> None:
        self.received.setdefault(action, []).append(payload)
        self.got.set()

    async def wait_for(self, action: str, count: int = 1, timeout_s: float = 15) -> list[dict]:
        async with asyncio.timeout(timeout_s):
            while len(self.received.get(action, [])) < count:
                self.got.clear()
                await self.got.wait()
        return self.received[action]

    @on("RemoteStartTransaction")
    def on_remote_start(self, **payload):
        self._note("RemoteStartTransaction", **payload)
        return call_result.RemoteStartTransaction(status="Accepted")

    @on("RemoteStopTransaction")
    def on_remote_stop(self, **payload):
        self._note("RemoteStopTransaction", **payload)
        return call_result.RemoteStopTransaction(status="Accepted")

    @on("Reset")
    def on_reset(self, **payload):
        self._note("Reset", **payload)
        return call_result.Reset(status="Accepted")

    @on("UnlockConnector")
    def on_unlock(self, **payload):
        self._note("UnlockConnector", **payload)
        return call_result.UnlockConnector(status="Unlocked")

    @on("ChangeAvailability")
    def on_change_availability(self, **payload):
        self._note("ChangeAvailability", **payload)
        return call_result.ChangeAvailability(status="Accepted")

    @on("ChangeConfiguration")
    def on_change_configuration(self, key, value, **payload):
        self._note("ChangeConfiguration", key=key, value=value)
        self.configuration[key] = value
        return call_result.ChangeConfiguration(status="Accepted")

    @on("GetConfiguration")
    def on_get_configuration(self, key=None, **payload):
        self._note("GetConfiguration", key=key)
        keys = key or list(self.configuration)
        return call_result.GetConfiguration(
            configuration_key=[
                {"key": k, "readonly": False, "value": self.configuration[k]}
                for k in keys
                if k in self.configuration
            ],
            unknown_key=[k for k in keys if k not in self.configuration] or None,
        )

    @on("TriggerMessage")
    def on_trigger_message(self, **payload):
        self._note("TriggerMessage", **payload)
        return call_result.TriggerMessage(status="Accepted")

    @on("SetChargingProfile")
    def on_set_charging_profile(self, **payload):
        self._note("SetChargingProfile", **payload)
        return call_result.SetChargingProfile(status="Accepted")

    @on("ReserveNow")
    def on_reserve_now(self, **payload):
        self._note("ReserveNow", **payload)
        return call_result.ReserveNow(status="Accepted")

    @on("CancelReservation")
    def on_cancel_reservation(self, **payload):
        self._note("CancelReservation", **payload)
        return call_result.CancelReservation(status="Accepted")

    async def boot(self) -> call_result.BootNotification:
        return await self.call(
            call.BootNotification(charge_point_model="Wallbox 22", charge_point_vendor="Acme")
        )


@contextlib.asynccontextmanager
async def connected(
    url: str, identity: str, *, ssl_context: ssl.SSLContext | None = None, **connect_kwargs: Any
):
    """A started ``TestChargePoint`` on an open connection."""
    async with websockets.connect(
        f"{url}/{identity}", subprotocols=["ocpp1.6"], ssl=ssl_context, **connect_kwargs
    ) as connection:
        charge_point = TestChargePoint(identity, connection)
        runner = asyncio.create_task(charge_point.start())
        try:
            yield charge_point
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await runner
