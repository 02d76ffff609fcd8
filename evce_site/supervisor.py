"""Runs every evce process under one parent: Redis (embedded), web, worker, beat.

The parent restarts nothing silently: if a child dies, everything is stopped
and the exit code says so, because a controller without its control loop must
not look healthy. Ctrl-C (SIGINT) or SIGTERM stops all children cleanly.

A full start sends the children's output (the worker's banner, access lines,
warnings) to a rotating log file in the data folder, so that the terminal shows
what an operator needs: where evce answers and how to log in.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import logging.handlers
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from evce_site import embedded_redis


@dataclass
class Child:
    """A supervised process; evce stops when a critical one dies."""

    name: str
    argv: list[str]
    critical: bool = True
    process: subprocess.Popen | None = field(default=None, repr=False)


# What daphne does to a station's socket, stated here so that no default (or
# a change of one in a daphne release) decides it. A station stays connected
# for months: daphne's default maximum connection age (24 h) would drop every
# station once a day, so there is none. Keepalive pings go out every 20 s
# (they also keep NAT and cellular mappings open) and a socket is closed only
# when a ping goes unanswered for a minute — the peer is gone, not old.
WEBSOCKET_MAX_AGE_S = -1  # daphne: -1 = no limit
WEBSOCKET_PING_INTERVAL_S = 20
WEBSOCKET_PING_TIMEOUT_S = 60

PROCESSES = ("web", "worker", "beat")


def web_argv(bind: str) -> list[str]:
    """daphne serving HTTP and OCPP (and OCPP over TLS when enabled) on ``bind``."""
    endpoints = [f"tcp:port={settings.HTTP_PORT}:interface={bind}"]
    if settings.OCPP_PORT != settings.HTTP_PORT:
        endpoints.append(f"tcp:port={settings.OCPP_PORT}:interface={bind}")
    if settings.OCPP_TLS_ENABLED:
        from apps.central_system.tls import tls_endpoint  # loads cryptography: only with TLS

        endpoints.append(tls_endpoint(bind))
    argv = [
        sys.executable,
        "-m",
        "daphne",
        "--proxy-headers",
        "--websocket_timeout",
        str(WEBSOCKET_MAX_AGE_S),
        "--ping-interval",
        str(WEBSOCKET_PING_INTERVAL_S),
        "--ping-timeout",
        str(WEBSOCKET_PING_TIMEOUT_S),
    ]
    for endpoint in endpoints:
        argv += ["-e", endpoint]
    return [*argv, "evce_site.asgi:application"]


def worker_argv(concurrency: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "evce_site",
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        str(concurrency),
        "--hostname",
        "evce-worker@%h",
        "--without-gossip",
        "--without-mingle",
    ]


def simulator_argv(ocpp_port: int, meter_port: int) -> list[str]:
    """The demo's simulated stations and meters, driven by this evce."""
    return [
        sys.executable,
        "manage.py",
        "simulate",
        "--from-site",
        "--url",
        f"ws://127.0.0.1:{ocpp_port}",
        "--meters",
        str(meter_port),
        "--arrival",
        "poisson:45",
        "--status-every",
        "60",
    ]


def beat_argv(data_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "evce_site",
        "beat",
        "--loglevel",
        "INFO",
        "--schedule",
        str(data_dir / "celerybeat-schedule"),
    ]


def process_children(names: list[str], *, bind: str, worker_concurrency: int) -> list[Child]:
    """The evce processes called ``names`` (of :data:`PROCESSES`), in start order.

    ``manage.py serve`` and the Docker services both start their processes
    from here, so the two cannot run them differently.
    """
    unknown = sorted(set(names) - set(PROCESSES))
    if unknown:
        raise ValueError(
            f"Unknown process {', '.join(unknown)} (choose from {', '.join(PROCESSES)})."
        )
    argv = {
        "web": lambda: web_argv(bind),
        "worker": lambda: worker_argv(worker_concurrency),
        "beat": lambda: beat_argv(settings.DATA_DIR),
    }
    return [Child(name, argv[name]()) for name in PROCESSES if name in names]


class ProcessLog:
    """The children's output, line by line, into a rotating file (and a terminal if asked).

    Each line is prefixed with the process name; the last lines of each process
    are kept so that a process that dies can be explained on the terminal.
    """

    MAX_BYTES = 10 * 1024 * 1024
    BACKUPS = 3
    TAIL_LINES = 20

    def __init__(self, path: Path, *, echo=None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.echo = echo
        self._handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=self.MAX_BYTES, backupCount=self.BACKUPS, encoding="utf-8"
        )
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._lock = threading.Lock()
        self._tails: dict[str, collections.deque[str]] = {}
        self._readers: list[threading.Thread] = []

    def write(self, name: str, text: str) -> None:
        line = f"{name}: {text}"
        with self._lock:
            self._handler.emit(logging.makeLogRecord({"msg": line}))
            self._tails.setdefault(name, collections.deque(maxlen=self.TAIL_LINES)).append(text)
            if self.echo is not None:
                self.echo.write(line + "\n")

    def follow(self, name: str, stream) -> None:
        """Copy ``stream`` (a child's stdout and stderr) to the log until it closes."""

        def copy() -> None:
            with stream:
                for raw in iter(stream.readline, b""):
                    self.write(name, raw.decode(errors="replace").rstrip("\r\n"))

        reader = threading.Thread(target=copy, name=f"log-{name}", daemon=True)
        reader.start()
        self._readers.append(reader)

    def tail(self, name: str) -> list[str]:
        with self._lock:
            return list(self._tails.get(name, ()))

    def close(self, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        for reader in self._readers:
            reader.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._handler.close()


class Supervisor:
    def __init__(
        self,
        children: list[Child],
        *,
        stdout=sys.stdout,
        process_log: ProcessLog | None = None,
    ) -> None:
        self.children = children
        self.stdout = stdout
        self.process_log = process_log
        self.redis_process: subprocess.Popen | None = None
        self._stopping = False
        self._ended: set[str] = set()

    def start_redis(self) -> None:
        """Start the embedded Redis (when REDIS_URL is unset) before anything uses it."""
        if settings.EMBEDDED_REDIS and self.redis_process is None:
            self.redis_process = embedded_redis.start(settings.DATA_DIR)
            where = embedded_redis.socket_path(settings.DATA_DIR)
            self._note(f"embedded Redis on {where}")

    def start(self) -> None:
        self.start_redis()
        for child in self.children:
            # Own process group: the terminal's Ctrl-C reaches the parent only,
            # which then stops children in order.
            if self.process_log is None:
                child.process = subprocess.Popen(child.argv, start_new_session=True)
            else:
                child.process = subprocess.Popen(
                    child.argv,
                    start_new_session=True,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                )
                self.process_log.follow(child.name, child.process.stdout)
            self._note(f"started {child.name} (pid {child.process.pid})")

    def _note(self, text: str) -> None:
        """The supervisor's own news: into the process log when there is one."""
        if self.process_log is None:
            self.stdout.write(text + "\n")
        else:
            self.process_log.write("evce", text)

    def _explain_exit(self, child: Child) -> None:
        """A child ended: show its last lines, which the terminal did not see."""
        if self.process_log is None:
            return
        lines = self.process_log.tail(child.name)
        if lines:
            self.stdout.write(f"last lines of {child.name} (all in {self.process_log.path}):\n")
            for line in lines:
                self.stdout.write(f"  {line}\n")

    def wait(self) -> int:
        """Block until a signal arrives or a child exits; return the exit code."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            while not self._stopping:
                for child in self.children:
                    code = child.process.poll() if child.process else None
                    if code is None or child.name in self._ended:
                        continue
                    if not child.critical:
                        self._ended.add(child.name)
                        self.stdout.write(
                            f"{child.name} exited with code {code}; evce keeps running\n"
                        )
                        self._explain_exit(child)
                        continue
                    self.stdout.write(f"{child.name} exited with code {code}: stopping evce\n")
                    self.stop()
                    self._explain_exit(child)
                    return code or 1
                time.sleep(0.5)
        finally:
            self.stop()
        return 0

    def _on_signal(self, signum, frame) -> None:
        self._stopping = True

    def stop(self, timeout_s: float = 15.0) -> None:
        running = [c for c in self.children if c.process and c.process.poll() is None]
        for child in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in running:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        if self.redis_process is not None and self.redis_process.poll() is None:
            self.redis_process.terminate()
            try:
                self.redis_process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.redis_process.kill()
        self.redis_process = None
        if self.process_log is not None:
            self.process_log.close()
