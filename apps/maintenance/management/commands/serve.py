"""``python manage.py serve``: start evce (web + OCPP, worker, beat, embedded Redis)."""

from __future__ import annotations

import os
import socket

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.energy import state as energy_state
from apps.maintenance.management import setup as install
from evce_site.supervisor import Child, Supervisor, beat_argv, simulator_argv, web_argv, worker_argv


class Command(BaseCommand):
    help = "Start every evce process under one parent; Ctrl-C stops them all."

    def add_arguments(self, parser):
        parser.add_argument(
            "--bind",
            default=os.environ.get("EVCE_BIND", "0.0.0.0"),
            help="Interface to listen on [EVCE_BIND, 0.0.0.0].",
        )
        parser.add_argument(
            "--worker-concurrency",
            type=int,
            default=int(os.environ.get("EVCE_WORKER_CONCURRENCY", "2")),
        )
        parser.add_argument("--no-demo", action="store_true", help="Never load the demo site.")

    def handle(self, *args, **options):
        demo_wanted = not options["no_demo"] and os.environ.get("EVCE_DEMO", "1") not in (
            "0",
            "false",
            "no",
        )
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

        children = [
            Child("web", web_argv(options["bind"])),
            Child("worker", worker_argv(options["worker_concurrency"])),
            Child("beat", beat_argv(settings.DATA_DIR)),
        ]
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
        self.stdout.write(f"  Dashboard / admin : http://{host}:{settings.HTTP_PORT}/admin/")
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


def _lan_address() -> str:
    """The address stations on the LAN would use (best effort, from the host name)."""
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
    return address
