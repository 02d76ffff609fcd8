"""``manage.py serve``: the process command lines, shared with the Docker services."""

from __future__ import annotations

import io
import shlex
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from unittest import mock

import pytest
import yaml
from daphne.cli import CommandLineInterface
from django.core.management import CommandError, call_command

from apps.maintenance.management.commands import serve as serve_command
from evce_site import supervisor
from evce_site.supervisor import PROCESSES, process_children, web_argv

ROOT = Path(__file__).resolve().parents[2]


def daphne_options(argv: list[str]):
    """The options daphne itself would read from the web process's command line."""
    assert argv[1:3] == ["-m", "daphne"]
    return CommandLineInterface().parser.parse_args(argv[3:])


def test_the_web_process_never_closes_a_station_socket_for_its_age():
    options = daphne_options(web_argv("0.0.0.0"))
    assert options.websocket_timeout == -1  # daphne's default would be 86400 s
    # Keepalive pings stay, to find peers that are gone; they are stated, not defaulted.
    assert options.ping_interval == supervisor.WEBSOCKET_PING_INTERVAL_S
    assert options.ping_timeout == supervisor.WEBSOCKET_PING_TIMEOUT_S
    assert options.ping_timeout >= 30
    assert options.proxy_headers


def test_the_web_process_serves_http_and_ocpp_on_the_bind_address(settings):
    settings.HTTP_PORT, settings.OCPP_PORT, settings.OCPP_TLS_ENABLED = 8000, 9979, False
    options = daphne_options(web_argv("127.0.0.1"))
    assert options.socket_strings == [
        "tcp:port=8000:interface=127.0.0.1",
        "tcp:port=9979:interface=127.0.0.1",
    ]
    assert options.application == "evce_site.asgi:application"


def test_processes_are_built_by_name_in_start_order():
    children = process_children(["beat", "web"], bind="0.0.0.0", worker_concurrency=3)
    assert [child.name for child in children] == ["web", "beat"]
    worker = process_children(["worker"], bind="0.0.0.0", worker_concurrency=3)[0]
    assert worker.argv[worker.argv.index("--concurrency") + 1] == "3"
    with pytest.raises(ValueError, match="Unknown process cron"):
        process_children(["web", "cron"], bind="0.0.0.0", worker_concurrency=1)


@pytest.fixture
def started():
    """The children ``serve --only`` hands its supervisor (nothing is started)."""
    with mock.patch("apps.maintenance.management.commands.serve.Supervisor") as supervisor_class:
        supervisor_class.return_value.wait.return_value = 0
        yield lambda: [child.name for child in supervisor_class.call_args.args[0]]


@pytest.mark.parametrize(
    ("only", "names"),
    [
        (["web"], ["web"]),
        (["worker,beat"], ["worker", "beat"]),
        (["beat", "web"], ["web", "beat"]),
        (["web, worker", "web"], ["web", "worker"]),
    ],
)
def test_serve_only_starts_just_the_named_processes(settings, started, only, names):
    settings.EMBEDDED_REDIS = False
    argv = [arg for value in only for arg in ("--only", value)]
    with mock.patch("apps.maintenance.management.commands.serve.energy_state") as energy_state:
        call_command("serve", *argv)
    assert started() == names
    energy_state.reset.assert_not_called()  # no first-start work in a split deployment


@pytest.mark.parametrize(
    ("value", "message"), [("web,redis", "Unknown process redis"), (",", "needs a process")]
)
def test_serve_only_refuses_unknown_processes(settings, started, value, message):
    settings.EMBEDDED_REDIS = False
    with pytest.raises(CommandError, match=message):
        call_command("serve", "--only", value)


def test_serve_only_needs_a_shared_redis(settings, started):
    settings.EMBEDDED_REDIS = True
    with pytest.raises(CommandError, match="needs REDIS_URL"):
        call_command("serve", "--only", "worker")


def test_docker_services_start_through_serve():
    compose = yaml.safe_load((ROOT / "docker" / "compose.yml").read_text())
    for name in PROCESSES:
        command = compose["services"][name]["command"]
        assert command == ["python", "manage.py", "serve", "--only", name], name
    cmd = [
        line
        for line in (ROOT / "docker" / "Dockerfile").read_text().splitlines()
        if line.startswith("CMD ")
    ]
    assert len(cmd) == 1
    assert yaml.safe_load(cmd[0].removeprefix("CMD ")) == shlex.split(
        "python manage.py serve --only web"
    )


def _script(code: str) -> list[str]:
    return [sys.executable, "-c", code]


CHATTY = (
    "import sys, time; print('-------------- banner of a worker'); "
    "print('SecurityWarning: running as root', file=sys.stderr); sys.stdout.flush(); "
    "time.sleep(60)"
)


def test_a_full_start_writes_the_processes_output_to_the_log_file(tmp_path, settings):
    settings.EMBEDDED_REDIS = False
    terminal = io.StringIO()
    log = supervisor.ProcessLog(tmp_path / "logs" / "evce.log")
    running = supervisor.Supervisor(
        [supervisor.Child("worker", _script(CHATTY))], stdout=terminal, process_log=log
    )
    running.start()
    try:
        deadline = time.monotonic() + 20
        while "SecurityWarning" not in log.path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        running.stop()
    logged = log.path.read_text()
    assert "worker: -------------- banner of a worker" in logged
    assert "worker: SecurityWarning: running as root" in logged
    assert "evce: started worker (pid" in logged
    assert terminal.getvalue() == ""  # nothing of it on the terminal


def test_verbosity_2_shows_the_processes_output_on_the_terminal_too(tmp_path):
    terminal = io.StringIO()
    log = supervisor.ProcessLog(tmp_path / "evce.log", echo=terminal)
    child = supervisor.Child("beat", _script("print('beat is starting')"))
    running = supervisor.Supervisor([child], stdout=terminal, process_log=log)
    running.start()
    child.process.wait(timeout=20)
    running.stop()
    assert "beat: beat is starting" in terminal.getvalue()
    assert "beat: beat is starting" in log.path.read_text()


def test_a_process_that_dies_is_explained_on_the_terminal(tmp_path, settings):
    settings.EMBEDDED_REDIS = False
    terminal = io.StringIO()
    log = supervisor.ProcessLog(tmp_path / "evce.log")
    dying = _script("import sys; print('cannot reach the broker'); sys.exit(3)")
    running = supervisor.Supervisor(
        [supervisor.Child("worker", dying)], stdout=terminal, process_log=log
    )
    running.start()
    assert running.wait() == 3
    printed = terminal.getvalue()
    assert "worker exited with code 3: stopping evce" in printed
    assert f"last lines of worker (all in {log.path})" in printed
    assert "  cannot reach the broker" in printed


def test_the_process_log_rotates(tmp_path, monkeypatch):
    monkeypatch.setattr(supervisor.ProcessLog, "MAX_BYTES", 2000)
    log = supervisor.ProcessLog(tmp_path / "evce.log")
    for n in range(200):
        log.write("web", f"line {n:04d} " + "x" * 40)
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["evce.log", "evce.log.1", "evce.log.2", "evce.log.3"]
    assert all((tmp_path / name).stat().st_size <= 2100 for name in files)
    assert "line 0199" in (tmp_path / "evce.log").read_text()


def test_the_serve_banner_comes_after_the_web_server_listens(settings):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    web = supervisor.Child("web", _script("import time; time.sleep(30)"))
    web.process = subprocess.Popen(web.argv)
    try:
        started = time.monotonic()
        threading.Timer(0.5, listener.listen).start()
        serve_command._wait_until_listening("127.0.0.1", port, [web])
        assert time.monotonic() - started >= 0.5
        # A web server that died does not keep the start waiting.
        web.process.kill()
        web.process.wait()
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        started = time.monotonic()
        serve_command._wait_until_listening("127.0.0.1", closed.getsockname()[1], [web])
        assert time.monotonic() - started < 5
        closed.close()
    finally:
        listener.close()
        if web.process.poll() is None:
            web.process.kill()
            web.process.wait()
