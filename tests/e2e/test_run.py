"""`make run`'s stack: every process starts, serves, and stops on Ctrl-C."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.e2e.stack import start_stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(demo_stack):
    return demo_stack


def test_admin_login_page_is_served(stack):
    with urllib.request.urlopen(f"{stack.base_url}/admin/login/", timeout=10) as response:
        body = response.read().decode()
    assert response.status == 200
    assert 'name="username"' in body
    # Static files are served too (the admin would be unusable without its CSS).
    with urllib.request.urlopen(
        f"{stack.base_url}/static/admin/css/base.css", timeout=10
    ) as response:
        assert response.status == 200


def test_ocpp_port_accepts_connections(stack):
    with socket.create_connection(("127.0.0.1", stack.ocpp_port), timeout=5):
        pass


def test_worker_answers_through_the_broker(stack):
    # A ping sent before the worker subscribed is lost (broadcast): retry a while.
    deadline = time.monotonic() + 60
    while True:
        result = stack.celery("inspect", "ping", "--timeout", "3")
        if result.returncode == 0 or time.monotonic() > deadline:
            break
    assert result.returncode == 0, result.stdout + result.stderr + stack.log()
    assert "pong" in result.stdout


def test_demo_site_and_first_admin(stack):
    username, _password = stack.credentials()
    assert username == "installer"
    exported = stack.manage("site", "export")
    assert exported.returncode == 0, exported.stderr
    assert "Demo car park" in exported.stdout
    assert "DEMO-CP01" in exported.stdout


def test_the_terminal_shows_a_clean_start(stack):
    printed = stack.output()
    assert f"Dashboard         : http://127.0.0.1:{stack.http_port}/" in printed
    assert f":{stack.ocpp_port}/<box identity>" in printed
    assert "Log in as 'installer' with password" in printed
    # The processes' chatter is in the log file of the data folder, not on the terminal.
    for noise in ("celery", "[tasks]", "SecurityWarning", "WSCONNECT", "daphne", "INFO"):
        assert noise not in printed, printed
    process_log = Path(stack.env["EVCE_DATA_DIR"]) / "logs" / "evce.log"
    assert f"Process log       : {process_log}" in printed
    deadline = time.monotonic() + 30
    while "worker: " not in stack.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    logged = process_log.read_text()
    assert "web: " in logged and "worker: " in logged and "evce: started web" in logged


def test_ctrl_c_stops_every_process(tmp_path):
    stack = start_stack(tmp_path, demo=False)
    parent = psutil.Process(stack.process.pid)
    children = parent.children(recursive=True)
    assert len(children) >= 3  # web, worker, beat (and Redis when embedded)
    try:
        code = stack.stop(keep_database=True)
    finally:
        for child in children:
            if child.is_running():
                child.kill()
    assert code == 0
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"still running after Ctrl-C: {alive}"
    assert "evce stopped." in stack.log()
    credentials = stack.credentials()
    # A second start reuses the install: same administrator, same password.
    again = start_stack(tmp_path, demo=False, database=stack.drop_database)
    try:
        assert again.credentials() == credentials
    finally:
        again.stop()
