"""The CALLs evce sends one station: one outstanding at a time, in order, each with a deadline.

OCPP-J allows a single CALL in flight per direction. Commands come from
callers in any process (they wait on a reply channel) and from evce itself
(configuration after boot); each ends exactly once — with the station's
CALLRESULT or CALLERROR, its deadline, or "offline" when the connection goes.
The station's consumer owns one outbox and feeds it what arrives.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ocpp.v16.enums import Action, ConfigurationStatus, MessageTrigger, TriggerMessageStatus

from apps.central_system import hotstate, ocpp_log, protocol, services
from apps.central_system.db import in_db_thread
from apps.central_system.messages import CommandMessage
from apps.central_system.protocol import OcppError
from apps.stations.models import Direction

logger = logging.getLogger(__name__)

IN, OUT = Direction.IN.value, Direction.OUT.value
OWN_CALL_TIMEOUT_S = 30.0  # commands evce sends on its own (configuration after boot)
# Request ids remembered to drop channel-layer redeliveries of a command.
RECENT_REQUESTS = 64


# Answers to evce's own commands that mean "done" (a ChangeConfiguration may need a reboot).
_SUCCESSFUL_STATUSES = (None, ConfigurationStatus.accepted, ConfigurationStatus.reboot_required)


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


class Outbox:
    """The outgoing queue of one station connection."""

    def __init__(
        self,
        identity: str,
        *,
        channel_layer: Any,
        send_text: Callable[[str], Awaitable[None]],
        is_open: Callable[[], bool],
    ) -> None:
        self.identity = identity
        self.channel_layer = channel_layer
        self._send_text = send_text
        self._is_open = is_open
        self.loop = asyncio.get_running_loop()
        self.queue: deque[PendingCall] = deque()
        self.recent_requests: deque[str] = deque(maxlen=RECENT_REQUESTS)
        self.outstanding: PendingCall | None = None
        self.background: set[asyncio.Task] = set()

    def is_redelivery(self, request_id: str) -> bool:
        return request_id in self.recent_requests

    async def add_command(self, event: CommandMessage) -> None:
        """Queue a caller's command (an ``ocpp.command`` message) and send when the line is free."""
        self.recent_requests.append(event["request_id"])
        self.queue.append(
            PendingCall(
                event["action"],
                event["payload"],
                self.loop.time() + float(event["timeout_s"]),
                reply_to=event["reply_to"],
                request_id=event["request_id"],
            )
        )
        await self.pump()

    def add_own(self, action: str, payload: dict[str, Any]) -> None:
        """Queue a command evce sends on its own; a failure lands in the device log."""
        self.queue.append(PendingCall(action, payload, self.loop.time() + OWN_CALL_TIMEOUT_S))

    async def pump(self) -> None:
        """Send the next queued CALL if none is outstanding (dropping those past their deadline)."""
        while self._is_open() and self.outstanding is None and self.queue:
            call = self.queue.popleft()
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
            await self._send_text(protocol.encode_call(call.unique_id, call.action, call.payload))

    async def fail_all(self, *, reason: str) -> None:
        """The connection is gone: every waiting command ends "offline"."""
        pending = [self.outstanding] if self.outstanding else []
        pending += list(self.queue)
        self.outstanding = None
        self.queue.clear()
        for call in pending:
            await self._finish(call, "offline", reason=reason)

    async def on_answer(self, frame: protocol.CallResult | protocol.CallError) -> None:
        """A CALLRESULT or CALLERROR from the station: end the outstanding CALL it answers."""
        call = self.outstanding
        matches = call is not None and call.unique_id == frame.unique_id
        action = call.action if matches else ""
        if isinstance(frame, protocol.CallResult):
            kind, payload = protocol.CALLRESULT, frame.payload
        else:
            kind, payload = (
                protocol.CALLERROR,
                {
                    "errorCode": frame.code,
                    "errorDescription": frame.description,
                    "errorDetails": frame.details,
                },
            )
        ocpp_log.record(
            self.identity, IN, kind, unique_id=frame.unique_id, action=action, payload=payload
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
            if _sample_promised(call, frame.payload):
                last_id = await in_db_thread(services.last_sample_id)()
                await hotstate.mark_samples_asked(self.identity, last_id)
            await self._finish(call, "result", payload=frame.payload)
        else:
            await self._finish(
                call,
                "call_error",
                error_code=frame.code,
                error_description=frame.description,
                error_details=frame.details,
            )
        await self.pump()

    async def reply(self, reply_to: str, message: dict[str, Any]) -> None:
        """Post an outcome to a caller's reply channel (the caller may be gone)."""
        try:
            await self.channel_layer.send(reply_to, {"type": "ocpp.reply", **message})
        except Exception:  # the caller may be gone (full or expired channel)
            logger.warning("Could not answer %s for %s", reply_to, self.identity, exc_info=True)

    def _on_timer(self, call: PendingCall) -> None:
        if self.outstanding is call:
            self.outstanding = None
            task = self.loop.create_task(self._expire(call))
            # The loop keeps only a weak reference to tasks.
            self.background.add(task)
            task.add_done_callback(self.background.discard)

    async def _expire(self, call: PendingCall) -> None:
        await self._finish(call, "timeout")
        await self.pump()

    async def _finish(self, call: PendingCall, outcome: str, **fields: Any) -> None:
        if call.timer is not None:
            call.timer.cancel()
        if call.reply_to is not None:
            await self.reply(
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


def _sample_promised(call: PendingCall, answer: dict[str, Any]) -> bool:
    """An accepted TriggerMessage for MeterValues: the station's next samples follow it."""
    return (
        call.action == Action.trigger_message
        and call.payload.get("requestedMessage") == MessageTrigger.meter_values
        and answer.get("status") == TriggerMessageStatus.accepted
    )
