"""The WebSocket consumer of one station connection (OCPP 1.6-J).

Thin on purpose: it admits the connection, parses and validates frames,
hands CALLs to the handlers (in a worker thread, they use the ORM), answers,
and runs the station's outgoing command queue (one CALL outstanding, FIFO).
It joins the channel-layer group ``station.<identity>`` so commands reach it
from any process, and logs every frame in and out.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from ocpp.v16.enums import ConfigurationStatus

from apps.central_system import handlers, hotstate, ocpp_log, protocol, security, services
from apps.central_system.daphne_ext import EXTENSION as DENIAL_EXTENSION
from apps.central_system.db import in_db_thread
from apps.central_system.protocol import ErrorCode, OcppError
from apps.stations.models import Direction
from apps.stations.services import station_touch

logger = logging.getLogger(__name__)

IN, OUT = Direction.IN.value, Direction.OUT.value
# Answers that must never be CALLERRORs: stations retry those forever.
ALWAYS_ACKNOWLEDGED = {"StopTransaction": {}, "MeterValues": {}}
# How repeats of each CALL are recognised (REPLAY for the others).
DEDUP = {
    "BootNotification": hotstate.Dedup.NONE,  # answers depend on the moment
    "Heartbeat": hotstate.Dedup.NONE,
    "DataTransfer": hotstate.Dedup.NONE,  # no side effect
    "MeterValues": hotstate.Dedup.CLAIM,  # constant answers: claimed, never stored
    "StatusNotification": hotstate.Dedup.CLAIM,
    "DiagnosticsStatusNotification": hotstate.Dedup.CLAIM,
    "FirmwareStatusNotification": hotstate.Dedup.CLAIM,
    "SecurityEventNotification": hotstate.Dedup.CLAIM,
    "SignedFirmwareStatusNotification": hotstate.Dedup.CLAIM,
    "LogStatusNotification": hotstate.Dedup.CLAIM,
}
# The online state needs the last-seen time to a few seconds, not per message.
TOUCH_INTERVAL_S = 5.0
# Close codes (the WebSocket server only lets applications send 1000 or 3000–4999).
CLOSE_REPLACED = 4000  # a newer connection of the same station took over
CLOSE_REMOVED = 4001  # an admin refused or deleted the station
CLOSE_NO_SUBPROTOCOL = 4002  # the station does not speak ocpp1.6
CLOSE_NOT_OCPP_J = 4003  # binary or non-JSON frame: OCPP-J cannot answer it
GROUP_REFRESH_S = 1800.0  # channel-layer group memberships expire after a day
DB_TOUCH_INTERVAL_S = 60.0
# Answers to evce's own commands that mean "done" (a ChangeConfiguration may need a reboot).
_SUCCESSFUL_STATUSES = (None, ConfigurationStatus.accepted, ConfigurationStatus.reboot_required)
OWN_CALL_TIMEOUT_S = 30.0  # commands evce sends on its own (configuration after boot)
_HTTP_REASONS = {401: b"Unauthorized", 403: b"Forbidden", 404: b"Not Found"}


@dataclass(eq=False)
class PendingCall:
    """A CALL to the station: from a caller's reply channel, or evce's own."""

    action: str
    payload: dict[str, Any]
    deadline: float  # event-loop time
    reply_to: str | None = None
    request_id: str = ""
    unique_id: str = ""
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


_process_keepers: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}
# The consumers of this process by channel name, for commands that come in batches.
_local_consumers: dict[str, OcppConsumer] = {}


async def _keep_process_alive(channel_name: str) -> None:
    """Mark this process alive now, and keep refreshing it (one task per event loop)."""
    loop = asyncio.get_running_loop()
    task = _process_keepers.get(loop)
    if task is None or task.done():
        for old in [lp for lp in _process_keepers if lp.is_closed()]:
            del _process_keepers[old]
        process = hotstate.process_of(channel_name)
        await hotstate.process_alive(process)
        _process_keepers[loop] = loop.create_task(
            _refresh_process(process), name="ocpp-process-alive"
        )


def _forget_consumer(consumer: OcppConsumer) -> None:
    channel = getattr(consumer, "channel_name", "")
    if _local_consumers.get(channel) is consumer:
        del _local_consumers[channel]


async def _refresh_process(process: str) -> None:
    while True:
        await asyncio.sleep(hotstate.PROCESS_REFRESH_S)
        try:
            await hotstate.process_alive(process)
        except Exception:  # Redis away: records look stale until it is back
            logger.warning("Could not refresh the process liveness key", exc_info=True)


def ocpp_ports() -> set[int]:
    ports = {settings.OCPP_PORT}
    if settings.OCPP_TLS_ENABLED:
        ports.add(settings.OCPP_TLS_PORT)
    return ports


class OcppConsumer(AsyncWebsocketConsumer):
    """One charge point connected at ``/<identity>`` or ``/ocpp/<identity>``."""

    identity = ""
    station_id: int | None = None
    accepted = False
    is_open = False
    replaced = False

    async def dispatch(self, message):
        # Every database call goes through in_db_thread, which looks after its
        # connections: skip the base class's extra thread hop on every frame.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            logger.warning("Ignored channel message of type %s", message.get("type"))
            return
        await handler(message)

    # --- connection -------------------------------------------------------------

    async def __call__(self, scope, receive, send):
        """Admit the connection before any channel-layer resource is made for it."""
        self.scope = scope
        self.base_send = send
        first = await receive()
        if first.get("type") == "websocket.connect" and not await self._admit():
            return
        handed_over = False

        async def receive_after_admission():
            nonlocal handed_over
            if not handed_over:
                handed_over = True
                return first
            return await receive()

        await super().__call__(scope, receive_after_admission, send)

    async def _admit(self) -> bool:
        """Check port, identity, credentials and subprotocol; refuse with HTTP when wrong."""
        self.identity = self.scope["url_route"]["kwargs"]["identity"]
        client = self.scope.get("client") or [None]
        self.remote_addr = client[0]
        server = self.scope.get("server")
        port = server[1] if server else None
        if port is not None and port not in ocpp_ports():
            await self._deny(404)
            return False
        self.tls = settings.OCPP_TLS_ENABLED and port == settings.OCPP_TLS_PORT
        access = await in_db_thread(security.station_access)(self.identity)
        admission = await sync_to_async(security.admit, thread_sensitive=False)(
            access,
            credentials=security.basic_credentials(self.scope.get("headers", [])),
            tls=self.tls,
        )
        if not admission.allowed:
            await in_db_thread(security.record_refusal)(
                self.identity, admission, remote_addr=self.remote_addr
            )
            await self._deny(admission.http_status)
            return False
        if protocol.SUBPROTOCOL not in self.scope.get("subprotocols", []):
            # OCPP-J: finish the handshake without a subprotocol, then close at once.
            await self.accept()
            await self.close(code=CLOSE_NO_SUBPROTOCOL)
            return False
        self.access = access
        self.canonical_identity = access.identity
        return True

    async def websocket_connect(self, message):
        access = self.access
        self.outbox: deque[PendingCall] = deque()
        self.recent_requests: deque[str] = deque(maxlen=64)
        self.outstanding: PendingCall | None = None
        self.background: set[asyncio.Task] = set()
        self.loop = asyncio.get_running_loop()
        self.station_id, self.accepted = access.station_id, access.installed
        self.group = hotstate.station_group(self.identity)
        # Tell an older connection of this station to go away before joining,
        # so a command is never delivered to both.
        await self.channel_layer.group_send(
            self.group, {"type": "ocpp.replace", "channel": self.channel_name}
        )
        await self.channel_layer.group_add(self.group, self.channel_name)
        await hotstate.connection_open(
            self.identity, self.channel_name, remote_addr=self.remote_addr
        )
        await _keep_process_alive(self.channel_name)
        _local_consumers[self.channel_name] = self
        self.group_refreshed_at = self.db_touched_at = self.touched_at = self.loop.time()
        await self.accept(protocol.SUBPROTOCOL)
        self.is_open = True
        await in_db_thread(services.connection_event)(
            self.identity, connected=True, remote_addr=self.remote_addr, tls=self.tls
        )

    async def _deny(self, status: int) -> None:
        """Refuse the handshake with an HTTP status (403 where the server cannot say more)."""
        if DENIAL_EXTENSION not in self.scope.get("extensions", {}):
            await self.close()
            return
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        if status == 401:
            headers.append((b"www-authenticate", b'Basic realm="evce OCPP", charset="UTF-8"'))
        await self.base_send(
            {"type": "websocket.http.response.start", "status": status, "headers": headers}
        )
        await self.base_send(
            {"type": "websocket.http.response.body", "body": _HTTP_REASONS.get(status, b"")}
        )

    async def websocket_disconnect(self, message):
        _forget_consumer(self)
        if self.is_open:
            self.is_open = False
            await self._release(reason="connection closed")
            await in_db_thread(services.connection_event)(
                self.identity,
                connected=False,
                remote_addr=self.remote_addr,
                code=message.get("code"),
                replaced=self.replaced,
            )
        raise StopConsumer

    async def _release(self, *, reason: str) -> None:
        """Leave the group, give up the connection record, fail what waits on this socket."""
        _forget_consumer(self)
        pending = [self.outstanding] if self.outstanding else []
        pending += list(self.outbox)
        self.outstanding = None
        self.outbox.clear()
        for call in pending:
            await self._finish(call, "offline", reason=reason)
        try:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await hotstate.connection_close(self.identity, self.channel_name)
        except Exception:
            logger.warning("Could not release the connection of %s", self.identity, exc_info=True)

    # --- frames from the station ---------------------------------------------

    async def websocket_receive(self, message):
        if not self.is_open:
            return
        try:
            text = message.get("text")
            if text is None:
                ocpp_log.record(
                    self.identity,
                    IN,
                    protocol.UNPARSABLE,
                    payload={"binary_bytes": len(message.get("bytes") or b"")},
                )
                await self.close(code=CLOSE_NOT_OCPP_J)  # OCPP-J frames are text
                return
            await self._on_text(text)
            await self._keep_alive()
        except Exception:
            logger.exception("Frame from %s could not be handled", self.identity)

    async def _on_text(self, text: str) -> None:
        try:
            frame = protocol.parse_frame(text)
        except protocol.NotJson:
            ocpp_log.record(self.identity, IN, protocol.UNPARSABLE, payload={"raw": text[:2000]})
            await self.close(code=CLOSE_NOT_OCPP_J)  # no way to answer it in OCPP-J
            return
        except protocol.FrameError as exc:
            ocpp_log.record(self.identity, IN, protocol.UNPARSABLE, payload={"raw": text[:2000]})
            if exc.answerable:
                await self._send_error(exc.unique_id, exc)
            return
        if isinstance(frame, protocol.Call):
            ocpp_log.record(
                self.identity,
                IN,
                protocol.CALL,
                unique_id=frame.unique_id,
                action=frame.action,
                payload=frame.payload,
            )
            await self._on_call(frame)
        else:
            await self._on_answer(frame)

    async def _on_call(self, call: protocol.Call) -> None:
        action = call.action
        touch = self._touch_due()
        try:
            if action not in protocol.ALL_ACTIONS:
                raise OcppError(ErrorCode.NOT_IMPLEMENTED, f"Unknown action {action}.")
            if action not in protocol.CP_TO_CS_ACTIONS:
                raise OcppError(
                    ErrorCode.NOT_SUPPORTED, f"{action} is sent by a central system, not to it."
                )
            if not self.accepted and action != "BootNotification":
                raise OcppError(
                    ErrorCode.SECURITY_ERROR,
                    "The station is not accepted: only BootNotification is allowed.",
                )
            protocol.validate_payload(action, call.payload)
        except OcppError as exc:
            if touch:
                await hotstate.touch(self.identity)
            await self._send_error(call.unique_id, exc)
            return
        dedup = DEDUP.get(action, hotstate.Dedup.REPLAY)
        repeat, answer = await hotstate.note_call(
            self.identity, call.unique_id, action, call.payload, dedup=dedup, touch=touch
        )
        if repeat:
            await self._send_result(call.unique_id, action, answer or {})
            return
        session = handlers.Session(self.canonical_identity, self.station_id, self.remote_addr)
        handle = handlers.handle
        if handlers.uses_database(action):
            handle = in_db_thread(handle)
        try:
            outcome = handle(action, session, call.payload)
            if not isinstance(outcome, handlers.Outcome):
                outcome = await outcome
        except OcppError as exc:
            await self._send_error(call.unique_id, exc)
            return
        except Exception:
            logger.exception("%s from %s failed", action, self.identity)
            if action not in ALWAYS_ACKNOWLEDGED:
                await self._send_error(
                    call.unique_id, OcppError(ErrorCode.INTERNAL_ERROR, "The CALL failed.")
                )
                return
            outcome = handlers.Outcome(ALWAYS_ACKNOWLEDGED[action])
            dedup = hotstate.Dedup.NONE  # nothing worth replaying
        if outcome.station_id is not None:
            self.station_id = outcome.station_id
        if outcome.accepted is not None:
            self.accepted = outcome.accepted
        await self._send_result(call.unique_id, action, outcome.response)
        if dedup == hotstate.Dedup.REPLAY:
            await hotstate.cache_answer(
                self.identity, call.unique_id, action, call.payload, outcome.response
            )
        for command in outcome.followups:
            self.outbox.append(
                PendingCall(command.action, command.payload, self.loop.time() + OWN_CALL_TIMEOUT_S)
            )
        await self._pump()

    def _touch_due(self) -> bool:
        """Whether to refresh the station's last-seen time (throttled: it is the hot path)."""
        now = self.loop.time()
        if now - self.touched_at < TOUCH_INTERVAL_S:
            return False
        self.touched_at = now
        return True

    async def _send_result(self, unique_id: str, action: str, payload: dict[str, Any]) -> None:
        ocpp_log.record(
            self.identity,
            OUT,
            protocol.CALLRESULT,
            unique_id=unique_id,
            action=action,
            payload=payload,
        )
        await self.send(text_data=protocol.encode_result(unique_id, payload))

    async def _send_error(self, unique_id: str, error: OcppError) -> None:
        ocpp_log.record(
            self.identity,
            OUT,
            protocol.CALLERROR,
            unique_id=unique_id,
            payload={
                "errorCode": str(error.code),
                "errorDescription": error.description,
                "errorDetails": error.details,
            },
        )
        await self.send(text_data=protocol.encode_error(unique_id, error))

    async def _keep_alive(self) -> None:
        now = self.loop.time()
        if now - self.group_refreshed_at > GROUP_REFRESH_S:
            self.group_refreshed_at = now
            await self.channel_layer.group_add(self.group, self.channel_name)
            await hotstate.connection_refresh(self.identity)
        if self.station_id is not None and now - self.db_touched_at > DB_TOUCH_INTERVAL_S:
            self.db_touched_at = now
            await in_db_thread(station_touch)(station_id=self.station_id)

    # --- commands to the station -------------------------------------------------

    async def ocpp_command(self, event: dict[str, Any]) -> None:
        """A command from any process: queue it, send it when the line is free."""
        reply_to = event["reply_to"]
        if event["request_id"] in self.recent_requests:
            return  # a channel-layer redelivery
        if self.replaced or not self.is_open:
            reason = "replaced by a newer connection" if self.replaced else "connection closed"
            await self._reply(reply_to, {"outcome": "offline", "reason": reason})
            return
        self.recent_requests.append(event["request_id"])
        self.outbox.append(
            PendingCall(
                event["action"],
                event["payload"],
                self.loop.time() + float(event["timeout_s"]),
                reply_to=reply_to,
                request_id=event["request_id"],
            )
        )
        await self._pump()

    async def ocpp_commands(self, event: dict[str, Any]) -> None:
        """A batch of commands for consumers of this process, carried by this one.

        A run of the load manager sends hundreds of profiles at once: one
        channel-layer message per web process instead of one per station,
        and the frames leave before the first answers are read.
        """
        for command in event.get("commands", []):
            consumer = _local_consumers.get(command.get("channel", ""))
            if consumer is None:
                await self._reply(
                    command["reply_to"],
                    {
                        "request_id": command.get("request_id", ""),
                        "outcome": "offline",
                        "reason": "connection closed",
                    },
                )
                continue
            await consumer.ocpp_command(command)

    async def _pump(self) -> None:
        while self.is_open and self.outstanding is None and self.outbox:
            call = self.outbox.popleft()
            remaining = call.deadline - self.loop.time()
            if remaining <= 0:
                await self._finish(call, "timeout")
                continue
            call.unique_id = str(uuid.uuid4())
            self.outstanding = call
            call.timer = self.loop.call_later(remaining, self._on_timer, call)
            ocpp_log.record(
                self.identity,
                OUT,
                protocol.CALL,
                unique_id=call.unique_id,
                action=call.action,
                payload=call.payload,
            )
            await self.send(
                text_data=protocol.encode_call(call.unique_id, call.action, call.payload)
            )

    def _on_timer(self, call: PendingCall) -> None:
        if self.outstanding is call:
            self.outstanding = None
            task = self.loop.create_task(self._expire(call))
            # The loop keeps only a weak reference to tasks.
            self.background.add(task)
            task.add_done_callback(self.background.discard)

    async def _expire(self, call: PendingCall) -> None:
        await self._finish(call, "timeout")
        await self._pump()

    async def _on_answer(self, frame: protocol.CallResult | protocol.CallError) -> None:
        call = self.outstanding
        matches = call is not None and call.unique_id == frame.unique_id
        action = call.action if matches else ""
        if isinstance(frame, protocol.CallResult):
            ocpp_log.record(
                self.identity,
                IN,
                protocol.CALLRESULT,
                unique_id=frame.unique_id,
                action=action,
                payload=frame.payload,
            )
        else:
            ocpp_log.record(
                self.identity,
                IN,
                protocol.CALLERROR,
                unique_id=frame.unique_id,
                action=action,
                payload={
                    "errorCode": frame.code,
                    "errorDescription": frame.description,
                    "errorDetails": frame.details,
                },
            )
        if not matches:
            logger.info(
                "Answer %s from %s matches no outstanding CALL", frame.unique_id, self.identity
            )
            return
        if call.timer is not None:
            call.timer.cancel()
        self.outstanding = None
        if isinstance(frame, protocol.CallResult):
            try:
                protocol.validate_payload(action, frame.payload, response=True)
            except OcppError as exc:
                logger.warning("%s answered %s off-schema: %s", self.identity, action, exc)
            await self._finish(call, "result", payload=frame.payload)
        else:
            await self._finish(
                call,
                "call_error",
                error_code=frame.code,
                error_description=frame.description,
                error_details=frame.details,
            )
        await self._pump()

    async def _finish(self, call: PendingCall, outcome: str, **fields: Any) -> None:
        if call.timer is not None:
            call.timer.cancel()
        if call.reply_to is not None:
            await self._reply(
                call.reply_to,
                {"request_id": call.request_id, "outcome": outcome, **fields},
            )
            return
        status = (fields.get("payload") or {}).get("status")
        if outcome != "result" or status not in _SUCCESSFUL_STATUSES:
            detail = {"payload": call.payload, "outcome": outcome, **fields}
            await in_db_thread(services.command_failed_event)(
                self.identity, call.action, status or outcome, detail
            )

    async def _reply(self, reply_to: str, message: dict[str, Any]) -> None:
        try:
            await self.channel_layer.send(reply_to, {"type": "ocpp.reply", **message})
        except Exception:  # the caller may be gone (full or expired channel)
            logger.warning("Could not answer %s for %s", reply_to, self.identity, exc_info=True)

    # --- messages from other processes -----------------------------------------------

    async def ocpp_replace(self, event: dict[str, Any]) -> None:
        """A newer connection of this station took over: close this one."""
        if event.get("channel") == self.channel_name or not self.is_open:
            return
        self.replaced = True
        self.is_open = False
        await self._release(reason="replaced by a newer connection")
        await self.close(code=CLOSE_REPLACED)
        await in_db_thread(services.connection_event)(
            self.identity, connected=False, remote_addr=self.remote_addr, replaced=True
        )

    async def ocpp_station_changed(self, event: dict[str, Any]) -> None:
        """An admin installed, refused or deleted the station."""
        if not self.is_open:
            return
        change = event.get("change")
        if change == "installed" and not self.accepted:
            # Ask for a new boot: the answer is now Accepted, and the
            # configuration follows without waiting for the station's retry.
            self.outbox.append(
                PendingCall(
                    "TriggerMessage",
                    {"requestedMessage": "BootNotification"},
                    self.loop.time() + OWN_CALL_TIMEOUT_S,
                )
            )
            await self._pump()
        elif change in ("refused", "deleted"):
            self.accepted = False
            self.is_open = False
            await self._release(reason=f"station {change}")
            await self.close(code=CLOSE_REMOVED)
