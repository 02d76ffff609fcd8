"""Every channel-layer message declared in one place has its handler on the station consumer."""

from __future__ import annotations

from typing import get_args, get_type_hints

from channels.consumer import get_handler_name

from apps.central_system import messages
from apps.central_system.consumers import OcppConsumer

TO_THE_CONSUMER = (
    messages.CommandMessage,
    messages.CommandsMessage,
    messages.ReplaceMessage,
    messages.StationChangedMessage,
)


def _message_type(declaration) -> str:
    (value,) = get_args(get_type_hints(declaration)["type"])
    return value


def test_each_message_to_a_station_reaches_a_handler_that_takes_it():
    for declaration in TO_THE_CONSUMER:
        handler = getattr(OcppConsumer, get_handler_name({"type": _message_type(declaration)}))
        assert get_type_hints(handler)["event"] is declaration
