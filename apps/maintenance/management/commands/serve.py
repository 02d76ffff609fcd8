"""``python manage.py serve``: start evce (web + OCPP, worker, beat, embedded Redis).

``--only`` starts some of the processes (the Docker services run one each),
with the same command lines as a full start.
"""

from __future__ import annotations

import socket

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.energy import state as energy_state
from apps.maintenance.management import setup as install
from evce_site.supervisor import PROCESSES, Child, Supervisor, process_children, simulator_argv


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
        supervisor = Supervisor([], stdout=self.stdout)
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


def _lan_address() -> str:
    """The address stations on the LAN would use (best effort, from the host name)."""
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
    return address
