"""A live evce stack (``manage.py serve``) started the way ``make run`` starts it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
_stacks_started = 0


@dataclass
class Stack:
    process: subprocess.Popen
    http_port: int
    ocpp_port: int
    env: dict[str, str]
    log_path: Path
    drop_database: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def output(self) -> str:
        """What ``serve`` printed on its terminal."""
        return self.log_path.read_text(errors="replace")

    def log(self) -> str:
        """The terminal output, then the processes' log (``<data>/logs/evce.log``)."""
        process_log = Path(self.env["EVCE_DATA_DIR"]) / "logs" / "evce.log"
        processes = process_log.read_text(errors="replace") if process_log.exists() else ""
        return self.output() + processes

    def credentials(self) -> tuple[str, str]:
        match = re.search(r"Log in as '([^']+)' with password '([^']+)'", self.output())
        assert match, f"no credentials printed:\n{self.log()}"
        return match.group(1), match.group(2)

    def manage(self, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )

    def celery(self, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "celery", "-A", "evce_site", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )

    def query(self, sql: str, *params) -> list[tuple]:
        """Read the stack's database directly (the test process has its own settings).

        ``?`` marks a parameter on both backends.
        """
        url = self.env.get("DATABASE_URL", "")
        if url.startswith("postgres"):
            url = url.replace("postgres://", "postgresql://", 1)
            with psycopg.connect(url) as conn:
                return conn.execute(sql.replace("?", "%s"), params).fetchall()
        with sqlite3.connect(Path(self.env["EVCE_DATA_DIR"]) / "evce.sqlite3") as conn:
            return conn.execute(sql, params).fetchall()

    def stop(self, timeout_s: float = 30, *, keep_database: bool = False) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.drop_database and not keep_database:
            _drop_database(self.env["DATABASE_URL"], self.drop_database)
            self.drop_database = None
        return self.process.returncode


def _admin_url(database_url: str) -> str:
    parts = urlsplit(database_url)
    return urlunsplit(
        (
            parts.scheme.replace("postgres", "postgresql", 1)
            if parts.scheme == "postgres"
            else parts.scheme,
            parts.netloc,
            "/postgres",
            "",
            "",
        )
    )


def _drop_database(database_url: str, name: str) -> None:
    with psycopg.connect(_admin_url(database_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_stack(
    data_dir: Path,
    *,
    demo: bool = True,
    extra_env: dict[str, str] | None = None,
    database: str | None = None,
) -> Stack:
    """Migrate the install in ``data_dir`` and start it; wait for the web server.

    On PostgreSQL each stack gets a database of its own (``database`` reuses
    the one a previous stack kept).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        EVCE_DATA_DIR=str(data_dir),
        EVCE_HTTP_PORT=str(free_port()),
        EVCE_OCPP_PORT=str(free_port()),
        EVCE_DEMO="1" if demo else "0",
        EVCE_BIND="127.0.0.1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra_env or {})
    drop = None
    if env.get("DATABASE_URL", "").startswith("postgres"):
        drop = database
        if drop is None:
            drop = f"evce_e2e_{os.getpid()}_{int(time.time() * 1000) % 100000}"
            with psycopg.connect(_admin_url(env["DATABASE_URL"]), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{drop}"')
        parts = urlsplit(env["DATABASE_URL"])
        env["DATABASE_URL"] = urlunsplit((parts.scheme, parts.netloc, f"/{drop}", "", ""))
    if env.get("REDIS_URL", "").startswith("redis://"):
        # Its own database on the shared server (9-15, in turn), emptied: a stack
        # starts clean and never meets the hot state of another one still running.
        global _stacks_started
        db = 9 + _stacks_started % 7
        _stacks_started += 1
        env["REDIS_URL"] = re.sub(r"/\d*$", "", env["REDIS_URL"].rstrip("/")) + f"/{db}"
        redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    for step in (["migrate", "--noinput", "-v0"], ["collectstatic", "--noinput", "-v0"]):
        subprocess.run(
            [sys.executable, "manage.py", *step], cwd=ROOT, env=env, check=True, timeout=300
        )
    log_path = data_dir / "serve.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    stack = Stack(
        process, int(env["EVCE_HTTP_PORT"]), int(env["EVCE_OCPP_PORT"]), env, log_path, drop
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stack.stop()
            raise AssertionError(f"serve exited with {process.returncode}:\n{stack.log()}")
        try:
            with urllib.request.urlopen(f"{stack.base_url}/healthz", timeout=2) as response:
                if response.status == 200 and "evce is running" in stack.log():
                    return stack
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    stack.stop()
    raise AssertionError(f"evce did not answer within 90 s:\n{stack.log()}")


@contextlib.contextmanager
def fleet_in_thread(fleet) -> Iterator[asyncio.AbstractEventLoop]:
    """Run a simulated fleet on an event loop of its own in a thread; stop it on exit."""
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_until_complete, args=(fleet.run(None),), daemon=True)
    runner.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(fleet.request_stop)
        runner.join(timeout=20)
