"""The ordered queue of outgoing messages."""

from __future__ import annotations

import asyncio

import pytest

from apps.simulator.engine.outbox import Outbox, Outgoing, StationOffline


def test_outbox_keeps_order_and_only_durable_messages_survive_a_drop() -> None:
    async def scenario() -> None:
        outbox = Outbox(max_durable=2)
        waiting = asyncio.get_running_loop().create_future()
        first = Outgoing(build=lambda: "start", durable=True)
        status = Outgoing(build=lambda: "status", future=waiting)
        second = Outgoing(build=lambda: "stop", durable=True)
        for item in (first, status, second):
            assert outbox.put(item)
        assert not outbox.put(Outgoing(build=lambda: "more", durable=True))
        assert await outbox.head() is first
        outbox.drop_volatile()
        with pytest.raises(StationOffline):
            await waiting
        outbox.pop(first)
        assert await outbox.head() is second
        flushed = asyncio.create_task(outbox.wait_durable_sent())
        await asyncio.sleep(0)
        assert not flushed.done()
        status_again = Outgoing(build=lambda: "status")
        outbox.put(status_again)
        emptied = asyncio.create_task(outbox.wait_empty())
        outbox.pop(second)
        await asyncio.wait_for(flushed, 1)
        assert not emptied.done()
        outbox.pop(status_again)
        await asyncio.wait_for(emptied, 1)

    asyncio.run(scenario())
