"""``python manage.py serve``: start evce (web + OCPP, worker, beat, embedded Redis).

``--only`` starts some of the processes (the Docker services run one each),
with the same command lines as a full start, their output on the terminal. A
full start writes the processes' output to ``<data folder>/logs/evce.log``
(``-v 2`` shows it on the terminal too) and prints only where evce answers and
how to log in.
"""

from __future__ import annotations

import contextlib
import socket
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.energy import state as energy_state
from apps.maintenance.management import setup as install
from evce_site.supervisor import (
    PROCESSES,
    Child,
    ProcessLog,
    Supervisor,
    process_children,
    simulator_argv,
)

# How long a full start waits for the web server before printing its address anyway.
WEB_READY_TIMEOUT_S = 60.0


class Command(BaseCommand):
    help = "Start every evce process under one parent; Ctrl-C stops them all."

    def add_arguments(self, parser):
        parser.add_argument(
            "--only",
            action="append",
            metavar="PROCESS",
            help=(
                f"Start only these processes ({', '.join(PROCESSES)}; repeat the option or "
                "separate with commas), under this parent. For deployments that run each "
                "process on its own (Docker): no embedded Redis, demo or first-start setup."
            ),
        )
        parser.add_argument(
            "--bind",
            default=settings.BIND_ADDRESS,
            help="Interface to listen on [EVCE_BIND, 0.0.0.0].",
        )
        parser.add_argument(
            "--worker-concurrency",
            type=int,
            default=settings.WORKER_CONCURRENCY,
            help="Celery worker processes [EVCE_WORKER_CONCURRENCY, 2].",
        )
        parser.add_argument("--no-demo", action="store_true", help="Never load the demo site.")

    def handle(self, *args, **options):
        only = _process_names(options["only"])
        try:
            children = process_children(
                only or list(PROCESSES),
                bind=options["bind"],
                worker_concurrency=options["worker_concurrency"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if only:
            self._serve_only(children)
            return
        demo_wanted = not options["no_demo"] and settings.DEMO_ENABLED
        process_log = ProcessLog(
            process_log_path(),
            echo=self.stdout if options["verbosity"] >= 2 else None,
        )
        supervisor = Supervisor([], stdout=self.stdout, process_log=process_log)
        supervisor.start_redis()
        # Stations get their profiles again after a start (and nothing stale survives).
        energy_state.reset()
        if demo_wanted and install.is_empty_install():
            site_name = install.load_demo_site()
            self.stdout.write(
                f"Loaded the demo site '{site_name}' (set EVCE_DEMO=0 to start empty)."
            )
        credentials = install.ensure_first_admin()

        if demo_wanted and install.is_demo_install():
            children.append(
                Child(
                    "simulator",
                    simulator_argv(settings.OCPP_PORT, install.installed_demo_meter_port()),
                    critical=False,
                )
            )
        supervisor.children = children
        supervisor.start()

        host = "127.0.0.1" if options["bind"] in ("0.0.0.0", "::") else options["bind"]
        try:
            _wait_until_listening(host, settings.HTTP_PORT, children)
        except KeyboardInterrupt:  # Ctrl-C before the start was complete
            supervisor.stop()
            self.stdout.write("evce stopped.")
            return
        lan = _lan_address()
        self.stdout.write(self.style.SUCCESS("\nevce is running."))
        self.stdout.write(f"  Dashboard         : http://{host}:{settings.HTTP_PORT}/")
        self.stdout.write(f"  Admin (support)   : http://{host}:{settings.HTTP_PORT}/admin/")
        self.stdout.write(f"  OCPP 1.6-J        : ws://{lan}:{settings.OCPP_PORT}/<box identity>")
        self.stdout.write(f"  API documentation : http://{host}:{settings.HTTP_PORT}/api/v2/docs/")
        if credentials is not None:
            self.stdout.write(
                f"  Log in as '{credentials.username}' with password '{credentials.password}'"
            )
            self.stdout.write(
                f"  (also written to {credentials.path}; change it after the first login)"
            )
        else:
            self.stdout.write("  Log in with your administrator account.")
        if demo_wanted and install.is_demo_install():
            self.stdout.write(
                "  Demo              : simulated stations and meters run (EVCE_DEMO=0 to stop)"
            )
        self.stdout.write(f"  Data folder       : {settings.DATA_DIR}")
        self.stdout.write(f"  Process log       : {process_log.path}")
        self.stdout.write("Press Ctrl-C to stop.\n")
        code = supervisor.wait()
        self.stdout.write("evce stopped.")
        if code:
            raise SystemExit(code)

    def _serve_only(self, children: list[Child]) -> None:
        if settings.EMBEDDED_REDIS:
            raise CommandError(
                "serve --only needs REDIS_URL: processes started on their own must share "
                "one Redis server (the embedded one is started by a full `serve` only)."
            )
        supervisor = Supervisor(children, stdout=self.stdout)
        supervisor.start()
        code = supervisor.wait()
        if code:
            raise SystemExit(code)


def _process_names(values: list[str] | None) -> list[str]:
    """``--only web --only worker,beat`` → ``["web", "worker", "beat"]`` (empty: all)."""
    names: list[str] = []
    for value in values or []:
        for name in value.split(","):
            name = name.strip().lower()
            if name and name not in names:
                names.append(name)
    if values and not names:
        raise CommandError(f"--only needs a process name ({', '.join(PROCESSES)}).")
    return names


def process_log_path():
    """Where a full start writes its processes' output (rotated at 10 MB, 3 kept)."""
    return settings.DATA_DIR / "logs" / "evce.log"


def _wait_until_listening(host: str, port: int, children: list[Child]) -> None:
    """Wait for the web server, so that the address printed next already answers."""
    deadline = time.monotonic() + WEB_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(c.critical and c.process and c.process.poll() is not None for c in children):
            return  # the supervisor reports it
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        time.sleep(0.2)


def _lan_address() -> str:
    """The address stations on the LAN would use (best effort, from the host name)."""
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
    return address
