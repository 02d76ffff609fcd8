"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import socket

import pytest
from hypothesis import settings as hypothesis_settings

# Property-based tests run thousands of examples in CI and fewer locally.
hypothesis_settings.register_profile("ci", max_examples=2000, deadline=None)
hypothesis_settings.register_profile("dev", max_examples=200, deadline=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")


def free_port() -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    """Django's default hasher costs ~0.3 s a user; tests don't need that strength."""
    from django.conf import settings

    if settings.configured:  # the pure allocator tests run without Django
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def redis_url():
    """A reachable Redis: ``REDIS_URL`` when set, else the embedded server of the test data dir."""
    from django.conf import settings

    from evce_site import embedded_redis

    process = embedded_redis.start(settings.DATA_DIR) if settings.EMBEDDED_REDIS else None
    yield settings.REDIS_URL
    if process is not None:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def hot_state(redis_url):
    """A clean slate of evce's Redis keys (hot state, locks, flags) around a test."""
    from evce_site.hotstate import KEY_PREFIX, redis_client

    client = redis_client()

    def clear() -> None:
        keys = list(client.scan_iter(f"{KEY_PREFIX}*"))
        if keys:
            client.delete(*keys)

    clear()
    yield client
    clear()


@pytest.fixture
def meter_simulator():
    """A running Modbus meter simulator (pymodbus) with units 1 and 2 on a free port."""
    from apps.simulator.modbus_meter import MeterSimulator

    simulator = MeterSimulator(host="127.0.0.1", port=0)
    simulator.add_unit(1)
    simulator.add_unit(2)
    simulator.start_in_thread()
    yield simulator
    simulator.stop_thread()
