"""The live feed's broadcaster: tells the open dashboards what just changed.

Whatever stores something a page shows (a setpoint, a station's status, a
session's figures, a meter reading, a command's answer) ends in
:func:`live_changed` — through the receivers of :mod:`apps.dashboard.receivers`,
after the transaction commits. The message names *topics* only; each page
fetches its own figures again from the selectors, so there is one way to
render them and the feed carries no data a user may not see.

Changes come in bursts (a control-loop run touches hundreds of sessions, a
fleet sends MeterValues all the time): a sender thread per process coalesces
them and sends at most one group message every :data:`MIN_INTERVAL_S`. The
caller never waits on Redis and never fails because of it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from enum import StrEnum
from typing import Literal, TypedDict

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

#: The channel-layer group every live consumer joins.
GROUP = "dashboard.live"
#: At most one group message per process this often: bounds the load while
#: keeping the pages well within the 2 s of SPEC §7.
MIN_INTERVAL_S = 0.25
_WARN_EVERY_S = 60.0


class LiveTopic(StrEnum):
    SETPOINTS = "setpoints"  # a control-loop run stored setpoints and zone figures
    STATIONS = "stations"  # a station connected, left, or a status changed
    SESSIONS = "sessions"  # a session started, stopped, or its figures moved
    METERS = "meters"  # the zone meters were read
    COMMANDS = "commands"  # a remote command was queued or answered
    DEVICE_LOG = "devicelog"  # an entry was added to the device log


class LiveMessage(TypedDict):
    """What the group carries (``type`` names the consumer's handler)."""

    type: Literal["live.changed"]
    topics: list[str]
    at_s: float


class _Sender:
    """Coalesces topics and sends them from a thread with its own event loop."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.pending: set[str] = set()
        self.wake = threading.Event()
        self.warned_at = 0.0
        self.thread = threading.Thread(target=self._run, name="live-feed", daemon=True)
        self.thread.start()

    def add(self, topics: set[str]) -> None:
        with self.lock:
            self.pending |= topics
        self.wake.set()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        while True:
            self.wake.wait()
            with self.lock:
                topics, self.pending = self.pending, set()
                self.wake.clear()
            if topics:
                message: LiveMessage = {
                    "type": "live.changed",
                    "topics": sorted(topics),
                    "at_s": time.time(),
                }
                try:
                    loop.run_until_complete(get_channel_layer().group_send(GROUP, message))
                except Exception as exc:  # the feed is best effort: pages resync on reconnect
                    now = time.monotonic()
                    if now - self.warned_at >= _WARN_EVERY_S:
                        self.warned_at = now
                        logger.warning("Live feed not sent: %s", exc)
            time.sleep(MIN_INTERVAL_S)


_sender: _Sender | None = None
_sender_lock = threading.Lock()


def live_changed(*topics: LiveTopic) -> None:
    """Tell the open dashboards that ``topics`` changed (non-blocking, never raises)."""
    global _sender
    if not topics:
        return
    with _sender_lock:
        if _sender is None or _sender.pid != os.getpid():  # a forked worker starts its own
            _sender = _Sender()
        sender = _sender
    sender.add({str(topic) for topic in topics})
