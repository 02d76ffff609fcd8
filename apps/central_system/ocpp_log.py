"""The station OCPP log: every frame in and out, written in batches.

Frames are the hot path (a thousand stations send a few hundred per second):
rows are buffered in memory and inserted with one ``bulk_create`` per flush
interval, off the event loop. A crash loses at most one interval of log,
never a transaction or a meter sample (those are written by the handlers).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from django.utils import timezone
from redis.exceptions import RedisError

from apps.central_system import hotstate
from apps.central_system.db import in_db_thread
from apps.central_system.redaction import redact, redact_text
from apps.stations.models import OcppMessage

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.5
MAX_BUFFERED_ROWS = 20_000  # beyond this (database stalled) the oldest rows are dropped

_buffer: list[OcppMessage] = []
_flushers: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}
_flush_lock: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}


def record(
    identity: str,
    direction: str,
    message_type: int,
    *,
    unique_id: str = "",
    action: str = "",
    payload: Any = None,
) -> None:
    """Queue one frame for the log (never blocks, never raises); secrets are redacted."""
    if not isinstance(payload, dict):
        payload = {} if payload is None else {"value": payload}
    elif isinstance(payload.get("raw"), str) and message_type not in (2, 3, 4):
        payload = {**payload, "raw": redact_text(payload["raw"])}
    else:
        payload = redact(action, payload)
    _buffer.append(
        OcppMessage(
            station_identity=identity[:30],
            at=timezone.now(),
            direction=direction,
            message_type=message_type,
            unique_id=unique_id[:36],
            action=action[:40],
            payload=payload,
        )
    )
    if len(_buffer) > MAX_BUFFERED_ROWS:
        del _buffer[: len(_buffer) - MAX_BUFFERED_ROWS]
    _ensure_flusher()


def _ensure_flusher() -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    task = _flushers.get(loop)
    if task is None or task.done():
        for old in [lp for lp in _flushers if lp.is_closed()]:
            _flushers.pop(old, None)
            _flush_lock.pop(old, None)
        _flushers[loop] = loop.create_task(_flush_forever(), name="ocpp-log-flusher")


async def _flush_forever() -> None:
    while True:
        await asyncio.sleep(FLUSH_INTERVAL_S)
        try:
            await flush()
        except Exception:  # the log must never take the consumers down
            logger.exception("Could not write the OCPP log")


async def flush() -> int:
    """Write the buffered frames now; returns how many rows were written."""
    loop = asyncio.get_running_loop()
    lock = _flush_lock.setdefault(loop, asyncio.Lock())
    async with lock:
        if not _buffer:
            return 0
        rows = _buffer[:]
        del _buffer[: len(rows)]
        await in_db_thread(_write)(rows)
        return len(rows)


def _write(rows: list[OcppMessage]) -> None:
    OcppMessage.objects.bulk_create(rows, batch_size=500)
    counts = Counter((row.direction, row.action or "none") for row in rows)
    try:
        hotstate.messages_count(dict(counts))
    except (RedisError, OSError):  # counters for monitoring: the log itself is written
        logger.warning("Could not count OCPP messages", exc_info=True)
