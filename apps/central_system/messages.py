"""Every message evce sends over the channel layer, declared once.

The station consumer (:class:`apps.central_system.consumers.OcppConsumer`)
receives them on its own channel or on its station's group
(``station.<key>``, :func:`apps.central_system.hotstate.station_group`);
callers of :mod:`apps.central_system.commands` receive the replies on a
channel of their own. A message's ``type`` names the consumer method that
handles it (``ocpp.command`` → ``ocpp_command``).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

StationChange = Literal["installed", "refused", "deleted"]
ReplyOutcome = Literal["result", "call_error", "timeout", "offline"]


class CommandMessage(TypedDict):
    """A CALL to send to the station, answered with a :class:`ReplyMessage` on ``reply_to``.

    ``request_id`` makes a redelivery harmless; ``timeout_s`` bounds the wait
    for the station's answer; ``channel`` names the consumer a command of a
    :class:`CommandsMessage` batch is for.
    """

    type: Literal["ocpp.command"]
    request_id: str
    action: str
    payload: dict[str, Any]
    reply_to: str
    timeout_s: float
    channel: NotRequired[str]


class CommandsMessage(TypedDict):
    """A batch of commands for the consumers of one web process, carried by one of them."""

    type: Literal["ocpp.commands"]
    commands: list[CommandMessage]


class ReplyMessage(TypedDict):
    """What became of a :class:`CommandMessage`.

    ``result``: the station's CALLRESULT ``payload``; ``call_error``: its
    CALLERROR (``error_code``, ``error_description``, ``error_details``);
    ``timeout``: no answer in time; ``offline``: the socket is gone
    (``reason`` says why).
    """

    type: Literal["ocpp.reply"]
    outcome: ReplyOutcome
    request_id: NotRequired[str]
    payload: NotRequired[dict[str, Any]]
    error_code: NotRequired[str]
    error_description: NotRequired[str]
    error_details: NotRequired[dict[str, Any]]
    reason: NotRequired[str]


class ReplaceMessage(TypedDict):
    """Sent to the station's group by a new connection: older ones close (not ``channel``)."""

    type: Literal["ocpp.replace"]
    channel: str


class StationChangedMessage(TypedDict):
    """Sent to the station's group when an admin installed, refused or deleted the station."""

    type: Literal["ocpp.station.changed"]
    change: StationChange
