"""Where the consumers run their ORM code.

The station connections share one event loop; their handlers block on the
database. On PostgreSQL a small pool of threads (each keeping its own
connection) keeps one slow transaction — a row lock held by a worker — from
stalling every station; on SQLite one dedicated thread is the single writer
(the OCPP log is written there too). ``EVCE_OCPP_DB_THREADS=0`` runs
everything on Channels' shared thread-sensitive thread instead (what unit
tests use: they hold the data in one uncommitted transaction).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

_executor: ThreadPoolExecutor | None = None


def in_db_thread(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` as a coroutine function running in a database thread."""
    global _executor
    threads = settings.OCPP_DB_THREADS
    if threads < 0:
        # SQLite takes one writer at a time: more threads would only wait on its lock.
        threads = 1 if connections[DEFAULT_DB_ALIAS].vendor == "sqlite" else 4
    if threads == 0:
        return database_sync_to_async(func)
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ocpp-db")
    return sync_to_async(
        functools.partial(_keeping_connections, func), thread_sensitive=False, executor=_executor
    )


def _keeping_connections(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    # Each pool thread keeps its connection between calls: opening a SQLite
    # file per message costs more than the message. A broken connection (or a
    # server connection past CONN_MAX_AGE) is replaced, as Django does per request.
    try:
        return func(*args, **kwargs)
    finally:
        for connection in connections.all(initialized_only=True):
            if connection.errors_occurred or connection.vendor != "sqlite":
                connection.close_if_unusable_or_obsolete()
