"""The Redis connection for hot state (latest readings, locks, dirty flags).

One client per process, re-created after a fork (Celery prefork workers), on
the same Redis as the channel layer and the broker.
"""

from __future__ import annotations

import os

import redis
from django.conf import settings

_client: redis.Redis | None = None
_client_pid: int | None = None

KEY_PREFIX = "evce:"


def redis_client() -> redis.Redis:
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        _client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True, socket_timeout=5)
        _client_pid = os.getpid()
    return _client


def key(*parts: object) -> str:
    """A namespaced key, e.g. ``key("meter", 3)`` → ``evce:meter:3``."""
    return KEY_PREFIX + ":".join(str(p) for p in parts)
