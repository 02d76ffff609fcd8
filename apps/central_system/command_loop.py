"""One long-lived event loop per process for commands sent from synchronous code.

A Celery task that sends many commands (the control loop's profiles, the
authentication sync) could run each batch in a fresh ``asyncio.run``, but then
every run opens its Redis connections (channel layer, hot state) again and
closes them at the end: for 250 profiles that is most of the time spent. Here
the loop, and with it the connection pools, lives as long as the process; the
channel layer receives answers on this single loop, whatever thread submits.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_owner_pid: int | None = None
_background: set[asyncio.Task] = set()


def _running_loop() -> asyncio.AbstractEventLoop:
    """This process's command loop, started on first use (and again after a fork)."""
    global _loop, _owner_pid
    with _lock:
        if _loop is None or _owner_pid != os.getpid() or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="evce-command-loop", daemon=True
            )
            thread.start()
            _loop, _owner_pid = loop, os.getpid()
        return _loop


def run(coroutine: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
    """Run ``coroutine`` on the command loop and wait for its result (from any thread)."""
    loop = _running_loop()
    if _in_loop_thread(loop):
        coroutine.close()
        raise RuntimeError("command_loop.run() called from the command loop itself")
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout_s)


def run_later(delay_s: float, make: Callable[[], Coroutine[Any, Any, Any]]) -> None:
    """Start ``make()`` on the command loop in ``delay_s`` without waiting for it."""
    loop = _running_loop()

    def start() -> None:
        task = loop.create_task(make())
        _background.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(_background.discard)

    loop.call_soon_threadsafe(loop.call_later, delay_s, start)


def _in_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
