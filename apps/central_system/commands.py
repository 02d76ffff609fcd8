"""Commands to stations (CS → CP), usable from any process.

A caller — a view, an API call, a Celery task, the load manager — names the
station by its box identity; the consumer that holds the station's socket,
in whichever web process, is reached through its channel-layer channel::

    from apps.central_system import commands

    answer = commands.send_sync("CP001", commands.reset("Hard"))
    answer["status"]  # "Accepted" or "Rejected": the station's own answer

A station is offline when no live web process holds its socket (Redis
records which one does, and whether that process is alive): the call fails
at once. Otherwise the consumer owning the socket queues the request behind
the station's outstanding CALL (one at a time, FIFO), sends it and posts the
CALLRESULT or CALLERROR — or its own timeout, or "disconnected" — back to
this caller's reply channel. :func:`call_many` sends a batch (the load
manager's profiles) as one message per web process.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime
from typing import Any, NamedTuple

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from ocpp.v16.enums import Action, ResetType

from apps.central_system import hotstate, protocol
from apps.central_system.messages import CommandMessage, CommandsMessage, ReplyMessage

DEFAULT_TIMEOUT_S = 30.0
# The consumer answers "timeout" itself at the deadline; this covers transit.
REPLY_GRACE_S = 2.0


class CommandError(Exception):
    """Base of every failure of a command."""


class InvalidCommand(CommandError, ValueError):
    """The command is not a CS→CP action or its payload breaks the OCPP schema."""


class StationOffline(CommandError):
    """No connection holds the station's socket (or it closed before answering)."""


class CallTimeout(CommandError):
    """The station did not answer in time."""


class CallError(CommandError):
    """The station answered with a CALLERROR."""

    def __init__(self, code: str, description: str = "", details: dict | None = None) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description
        self.details = details or {}


class Command(NamedTuple):
    action: str
    payload: dict[str, Any]


async def call(
    identity: str, action: str, payload: dict[str, Any], *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> dict[str, Any]:
    """Send ``action`` to the station and return its CALLRESULT payload.

    Raises ``InvalidCommand``, ``StationOffline``, ``CallTimeout`` or
    ``CallError``; a status such as ``Rejected`` is the station's answer and
    comes back in the payload.
    """
    payload = checked_payload(action, payload)
    channel = await hotstate.connection_channel(identity)
    if channel is None:
        raise StationOffline(f"Station {identity} is not connected.")
    layer = get_channel_layer()
    # The default prefix: channels_redis shares one inbox per process for these.
    reply_to = await layer.new_channel()
    # Straight to the consumer holding the socket (one Redis round trip; a
    # group send costs three). Should a newer connection have replaced it
    # meanwhile, that consumer answers "offline".
    command: CommandMessage = {
        "type": "ocpp.command",
        "request_id": uuid.uuid4().hex,
        "action": action,
        "payload": payload,
        "reply_to": reply_to,
        "timeout_s": float(timeout_s),
    }
    await layer.send(channel, command)
    try:
        message = await asyncio.wait_for(layer.receive(reply_to), timeout_s + REPLY_GRACE_S)
    except TimeoutError:
        raise CallTimeout(f"{action} to {identity}: no answer within {timeout_s:g} s.") from None
    return _outcome(identity, action, message, timeout_s)


class Outcome(NamedTuple):
    """What :func:`call_many` got for one command, and when (``time.time()``)."""

    result: dict[str, Any] | CommandError
    at_s: float


async def call_many(
    calls: list[tuple[str, str, dict[str, Any]]], *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[Outcome]:
    """Send many ``(identity, action, payload)`` commands at once; one outcome each.

    The same as :func:`call` for each, in one channel-layer message per web
    process holding the sockets (a load-manager run sends hundreds of
    profiles: they leave the web process one after the other, before the
    first answer is read). An outcome is the CALLRESULT payload or the
    ``CommandError`` that :func:`call` would have raised.
    """
    outcomes: list[dict[str, Any] | CommandError | None] = [None] * len(calls)
    answered_at_s = [time.time()] * len(calls)
    checked: dict[int, dict[str, Any]] = {}
    for position, (_identity, action, payload) in enumerate(calls):
        try:
            checked[position] = checked_payload(action, payload)
        except InvalidCommand as exc:
            outcomes[position] = exc
    channels = await hotstate.connection_channels(sorted({calls[i][0] for i in checked}))
    layer = get_channel_layer()
    batches: dict[str, list[CommandMessage]] = {}
    waiting: list[tuple[int, str]] = []
    for position, payload in checked.items():
        identity, action, _payload = calls[position]
        channel = channels.get(identity)
        if channel is None:
            outcomes[position] = StationOffline(f"Station {identity} is not connected.")
            continue
        reply_to = await layer.new_channel()
        batches.setdefault(hotstate.process_of(channel), []).append(
            {
                "type": "ocpp.command",
                "channel": channel,
                "request_id": uuid.uuid4().hex,
                "action": action,
                "payload": payload,
                "reply_to": reply_to,
                "timeout_s": float(timeout_s),
            }
        )
        waiting.append((position, reply_to))
    for commands_ in batches.values():
        # Carried by the first of the process's consumers, which hands each on.
        batch: CommandsMessage = {"type": "ocpp.commands", "commands": commands_}
        await layer.send(commands_[0]["channel"], batch)

    async def answer(position: int, reply_to: str) -> None:
        identity, action, _payload = calls[position]
        try:
            message = await asyncio.wait_for(layer.receive(reply_to), timeout_s + REPLY_GRACE_S)
            outcomes[position] = _outcome(identity, action, message, timeout_s)
        except TimeoutError:
            outcomes[position] = CallTimeout(
                f"{action} to {identity}: no answer within {timeout_s:g} s."
            )
        except CommandError as exc:
            outcomes[position] = exc
        answered_at_s[position] = time.time()

    await asyncio.gather(*(answer(position, reply_to) for position, reply_to in waiting))
    return [
        Outcome(outcome if outcome is not None else CommandError("no outcome"), at_s)
        for outcome, at_s in zip(outcomes, answered_at_s, strict=True)
    ]


def call_sync(
    identity: str, action: str, payload: dict[str, Any], *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> dict[str, Any]:
    """``call`` for synchronous code (Celery tasks, sync views, shell)."""
    return async_to_sync(call)(identity, action, payload, timeout_s=timeout_s)


async def close_layer() -> None:
    """Release this event loop's Redis connections.

    For callers that run commands in a short-lived loop (a Celery task doing
    ``asyncio.run``), so connections do not outlive their loop.
    """
    layer = get_channel_layer()
    if hasattr(layer, "wait_received"):
        await layer.wait_received()  # its clean-up tasks still use those connections
    loop_layer = getattr(layer, "_layers", {}).pop(asyncio.get_running_loop(), None)
    if loop_layer is not None:
        await loop_layer.flush()
    await hotstate.close_async_client()


async def send(
    identity: str, command: Command, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> dict[str, Any]:
    return await call(identity, command.action, command.payload, timeout_s=timeout_s)


def send_sync(
    identity: str, command: Command, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> dict[str, Any]:
    return call_sync(identity, command.action, command.payload, timeout_s=timeout_s)


def checked_payload(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as it will be sent; ``InvalidCommand`` unless ``action`` is a CS→CP
    action and the payload is valid against its OCPP 1.6 JSON schema."""
    if action not in protocol.CS_TO_CP_ACTIONS:
        raise InvalidCommand(f"{action} is not a command a central system sends.")
    plain = protocol.plain_json(payload)
    try:
        protocol.validate_payload(action, plain)
    except protocol.OcppError as exc:
        raise InvalidCommand(f"{action}: {exc.description}") from None
    return plain


def _outcome(identity: str, action: str, message: ReplyMessage, timeout_s: float) -> dict[str, Any]:
    outcome = message.get("outcome")
    if outcome == "result":
        return message.get("payload") or {}
    if outcome == "call_error":
        raise CallError(
            message.get("error_code", "GenericError"),
            message.get("error_description", ""),
            message.get("error_details") or {},
        )
    if outcome == "timeout":
        raise CallTimeout(f"{action} to {identity}: no answer within {timeout_s:g} s.")
    raise StationOffline(
        f"Station {identity} disconnected before answering {action}"
        + (f" ({message['reason']})." if message.get("reason") else ".")
    )


# --- one builder per CS→CP action ---------------------------------------------------


def _compact(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _when(value: datetime | str | None) -> str | None:
    if isinstance(value, datetime):
        return protocol.format_datetime(value)
    return value


def remote_start(
    id_tag: str, *, connector_id: int | None = None, charging_profile: dict | None = None
) -> Command:
    return Command(
        Action.remote_start_transaction,
        _compact(idTag=id_tag, connectorId=connector_id, chargingProfile=charging_profile),
    )


def remote_stop(transaction_id: int) -> Command:
    return Command(Action.remote_stop_transaction, {"transactionId": transaction_id})


def reset(kind: str = ResetType.soft) -> Command:
    """``Soft`` is the UI's "reboot", ``Hard`` its "reset"."""
    return Command(Action.reset, {"type": kind})


def change_availability(connector_id: int, kind: str) -> Command:
    """``kind``: ``Operative`` or ``Inoperative``; connector 0 is the whole station."""
    return Command(Action.change_availability, {"connectorId": connector_id, "type": kind})


def change_configuration(key: str, value: str) -> Command:
    return Command(Action.change_configuration, {"key": key, "value": value})


def get_configuration(keys: list[str] | None = None) -> Command:
    return Command(Action.get_configuration, _compact(key=keys))


def set_charging_profile(connector_id: int, profile: dict[str, Any]) -> Command:
    return Command(
        Action.set_charging_profile, {"connectorId": connector_id, "csChargingProfiles": profile}
    )


def clear_charging_profile(
    *,
    profile_id: int | None = None,
    connector_id: int | None = None,
    purpose: str | None = None,
    stack_level: int | None = None,
) -> Command:
    return Command(
        Action.clear_charging_profile,
        _compact(
            id=profile_id,
            connectorId=connector_id,
            chargingProfilePurpose=purpose,
            stackLevel=stack_level,
        ),
    )


def get_composite_schedule(
    connector_id: int, duration_s: int, *, charging_rate_unit: str | None = None
) -> Command:
    return Command(
        Action.get_composite_schedule,
        _compact(
            connectorId=connector_id, duration=duration_s, chargingRateUnit=charging_rate_unit
        ),
    )


def trigger_message(requested_message: str, *, connector_id: int | None = None) -> Command:
    return Command(
        Action.trigger_message,
        _compact(requestedMessage=requested_message, connectorId=connector_id),
    )


def extended_trigger_message(requested_message: str, *, connector_id: int | None = None) -> Command:
    return Command(
        Action.extended_trigger_message,
        _compact(requestedMessage=requested_message, connectorId=connector_id),
    )


def unlock_connector(connector_id: int) -> Command:
    return Command(Action.unlock_connector, {"connectorId": connector_id})


def data_transfer(
    vendor_id: str, *, message_id: str | None = None, data: str | None = None
) -> Command:
    return Command(
        Action.data_transfer, _compact(vendorId=vendor_id, messageId=message_id, data=data)
    )


def send_local_list(
    list_version: int, update_type: str, entries: list[dict[str, Any]] | None = None
) -> Command:
    """``update_type``: ``Full`` or ``Differential``; entries are ``{idTag, idTagInfo?}``."""
    return Command(
        Action.send_local_list,
        _compact(listVersion=list_version, updateType=update_type, localAuthorizationList=entries),
    )


def get_local_list_version() -> Command:
    return Command(Action.get_local_list_version, {})


def clear_cache() -> Command:
    return Command(Action.clear_cache, {})


def get_diagnostics(
    location: str,
    *,
    retries: int | None = None,
    retry_interval_s: int | None = None,
    start_time: datetime | None = None,
    stop_time: datetime | None = None,
) -> Command:
    return Command(
        Action.get_diagnostics,
        _compact(
            location=location,
            retries=retries,
            retryInterval=retry_interval_s,
            startTime=_when(start_time),
            stopTime=_when(stop_time),
        ),
    )


def update_firmware(
    location: str,
    retrieve_date: datetime,
    *,
    retries: int | None = None,
    retry_interval_s: int | None = None,
) -> Command:
    return Command(
        Action.update_firmware,
        _compact(
            location=location,
            retrieveDate=_when(retrieve_date),
            retries=retries,
            retryInterval=retry_interval_s,
        ),
    )


def reserve_now(
    connector_id: int,
    expiry_date: datetime,
    id_tag: str,
    reservation_id: int,
    *,
    parent_id_tag: str | None = None,
) -> Command:
    return Command(
        Action.reserve_now,
        _compact(
            connectorId=connector_id,
            expiryDate=_when(expiry_date),
            idTag=id_tag,
            reservationId=reservation_id,
            parentIdTag=parent_id_tag,
        ),
    )


def cancel_reservation(reservation_id: int) -> Command:
    return Command(Action.cancel_reservation, {"reservationId": reservation_id})


# --- security extension -------------------------------------------------------------


def get_log(
    log_type: str,
    request_id: int,
    remote_location: str,
    *,
    oldest: datetime | None = None,
    latest: datetime | None = None,
    retries: int | None = None,
    retry_interval_s: int | None = None,
) -> Command:
    """``log_type``: ``DiagnosticsLog`` or ``SecurityLog``."""
    log = _compact(
        remoteLocation=remote_location,
        oldestTimestamp=_when(oldest),
        latestTimestamp=_when(latest),
    )
    return Command(
        Action.get_log,
        _compact(
            logType=log_type,
            requestId=request_id,
            log=log,
            retries=retries,
            retryInterval=retry_interval_s,
        ),
    )


def signed_update_firmware(
    request_id: int,
    *,
    location: str,
    retrieve_date: datetime,
    signing_certificate: str,
    signature: str,
    install_date: datetime | None = None,
    retries: int | None = None,
    retry_interval_s: int | None = None,
) -> Command:
    firmware = _compact(
        location=location,
        retrieveDateTime=_when(retrieve_date),
        installDateTime=_when(install_date),
        signingCertificate=signing_certificate,
        signature=signature,
    )
    return Command(
        Action.signed_update_firmware,
        _compact(
            requestId=request_id,
            firmware=firmware,
            retries=retries,
            retryInterval=retry_interval_s,
        ),
    )


def install_certificate(certificate_type: str, certificate_pem: str) -> Command:
    """``certificate_type``: ``CentralSystemRootCertificate`` or ``ManufacturerRootCertificate``."""
    return Command(
        Action.install_certificate,
        {"certificateType": certificate_type, "certificate": certificate_pem},
    )


def certificate_signed(certificate_chain_pem: str) -> Command:
    return Command(Action.certificate_signed, {"certificateChain": certificate_chain_pem})


def get_installed_certificate_ids(certificate_type: str) -> Command:
    return Command(Action.get_installed_certificate_ids, {"certificateType": certificate_type})


def delete_certificate(hash_data: dict[str, str]) -> Command:
    """``hash_data``: ``hashAlgorithm``, ``issuerNameHash``, ``issuerKeyHash``, ``serialNumber``."""
    return Command(Action.delete_certificate, {"certificateHashData": hash_data})
