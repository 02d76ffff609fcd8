"""The ordered queue of messages a charge point sends to its central system.

One queue and one sender per station keep OCPP's ordering (StartTransaction
before its MeterValues before its StopTransaction, a TriggerMessage's answer
before the triggered message) and its rule of one outstanding CALL.

Transaction messages are *durable*: they wait in the queue while the station
is offline and go out in order after it reconnects — a station that drops
them loses billing data. The others are *volatile*: they are dropped when
the link goes down (the station sends fresh statuses after its next boot).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class StationOffline(ConnectionError):
    """The station has no accepted connection to send this message on."""


@dataclass(slots=True, eq=False)
class Outgoing:
    """A message waiting to be sent.

    ``build`` makes the OCPP payload when the message reaches the head of the
    queue — so a MeterValues queued offline gets the transaction id that
    the earlier StartTransaction received — or returns None to skip it.
    """

    build: Callable[[], Any | None]
    durable: bool = False
    on_result: Callable[[Any], None] | None = None
    future: asyncio.Future[Any] | None = None
    attempts: int = 0
    label: str = field(default="")


class Outbox:
    def __init__(self, max_durable: int = 10_000) -> None:
        self.max_durable = max_durable
        self._items: deque[Outgoing] = deque()
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def durable_count(self) -> int:
        return sum(1 for item in self._items if item.durable)

    def put(self, item: Outgoing) -> bool:
        """Queue ``item``; False (and nothing queued) when the offline buffer is full."""
        if item.durable and self.durable_count >= self.max_durable:
            return False
        self._items.append(item)
        self._changed.set()
        return True

    async def head(self) -> Outgoing:
        """The next message to send, waiting until there is one."""
        while not self._items:
            self._changed.clear()
            await self._changed.wait()
        return self._items[0]

    def pop(self, item: Outgoing) -> None:
        """Remove ``item`` once it has been answered (or given up on)."""
        if self._items and self._items[0] is item:
            self._items.popleft()
        else:
            self._items.remove(item)
        self._changed.set()

    def drop_volatile(self) -> None:
        """The link is down: volatile messages will never go out on it."""
        kept: deque[Outgoing] = deque()
        for item in self._items:
            if item.durable:
                kept.append(item)
            elif item.future is not None and not item.future.done():
                item.future.set_exception(StationOffline("connection lost"))
        self._items = kept
        self._changed.set()

    async def wait_durable_sent(self) -> None:
        """Wait until no durable message is queued."""
        while self.durable_count:
            self._changed.clear()
            await self._changed.wait()

    async def wait_empty(self) -> None:
        """Wait until every queued message has been sent (or given up on)."""
        while self._items:
            self._changed.clear()
            await self._changed.wait()
