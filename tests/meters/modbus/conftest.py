"""Fixtures for the Modbus layer: a simulator, silent and closed TCP ports, a serial line.

These tests need no Django settings: the package under test is framework-free.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import tty
from collections.abc import Iterator

import pytest

from apps.simulator.modbus_meter import MeterSimulator


@pytest.fixture
def sim() -> Iterator[MeterSimulator]:
    """A simulator on 127.0.0.1 and a free port; add units, then ``start_in_thread()``."""
    simulator = MeterSimulator("127.0.0.1", 0)
    yield simulator
    simulator.stop_thread()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections but never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A TCP port nobody listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SerialLine:
    """Two pseudo-terminals joined like the two ends of an RS-485 cable.

    A single pty has only one end with a device path, so two are opened and a
    thread copies bytes between their controlling sides; each end then has a
    path that pyserial (client and server) can open.
    """

    def __init__(self) -> None:
        self._master_a, self._slave_a = os.openpty()
        self._master_b, self._slave_b = os.openpty()
        for fd in (self._slave_a, self._slave_b):
            tty.setraw(fd)
        self.end_a = os.ttyname(self._slave_a)
        self.end_b = os.ttyname(self._slave_b)
        self._stop_read, self._stop_write = os.pipe()
        self._thread = threading.Thread(target=self._pump, name="serial-line", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        peer = {self._master_a: self._master_b, self._master_b: self._master_a}
        while True:
            readable, _, _ = select.select(
                [self._master_a, self._master_b, self._stop_read], [], []
            )
            if self._stop_read in readable:
                return
            for fd in readable:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                os.write(peer[fd], data)

    def close(self) -> None:
        os.write(self._stop_write, b"x")
        self._thread.join(timeout=5)
        for fd in (
            self._master_a,
            self._slave_a,
            self._master_b,
            self._slave_b,
            self._stop_read,
            self._stop_write,
        ):
            os.close(fd)


@pytest.fixture
def serial_line() -> Iterator[SerialLine]:
    line = SerialLine()
    yield line
    line.close()
