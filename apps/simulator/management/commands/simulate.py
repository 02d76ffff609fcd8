"""``python manage.py simulate`` — simulated OCPP 1.6-J stations and EVs against any evce.

Stations are generated (``--stations N``) or taken from this evce's
installed stations (``--from-site``). A status line is printed every few
seconds; Ctrl-C ends open sessions, delivers what it can and disconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.energy.allocator import PhaseWiring
from apps.simulator import selectors
from apps.simulator.engine import (
    ArrivalPattern,
    Drivers,
    Endpoint,
    Fleet,
    FleetStatus,
    StationSpec,
    station_specs,
)
from apps.simulator.engine.fleet import FleetListener

DEFAULT_ID_TAGS = tuple(f"SIM-TAG-{n:02d}" for n in range(1, 11))


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError(text)
    return value


class Command(BaseCommand):
    help = "Run simulated OCPP 1.6-J charging stations with arriving EVs against a central system."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url",
            help="Central system URL; stations connect to URL/<identity> "
            "[ws://127.0.0.1:EVCE_OCPP_PORT].",
        )
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--stations", type=int, default=10, help="Stations to generate [10].")
        source.add_argument(
            "--from-site",
            action="store_true",
            help="Simulate this evce's installed stations (connectors, wiring, cards).",
        )
        parser.add_argument("--prefix", default="SIM-", help="Generated identities [SIM-].")
        parser.add_argument("--connectors", type=int, choices=(1, 2), default=1)
        parser.add_argument(
            "--max-current", type=_positive_float, default=32.0, help="Connector maximum, A [32]."
        )
        parser.add_argument(
            "--wiring",
            choices=["rotate", *[w.value for w in PhaseWiring]],
            default="rotate",
            help="Phase wiring of generated connectors; rotate = TRI123, TRI231, TRI312 in turn.",
        )
        parser.add_argument(
            "--arrival",
            default="poisson:120",
            help="EV arrivals: poisson:MEAN_S (fleet-wide mean interval), all (one EV per "
            "connector once its station is accepted) or none [poisson:120].",
        )
        parser.add_argument(
            "--dwell",
            default="full",
            help="How long drivers stay: a mean in seconds, or full (until the EV is full) [full].",
        )
        parser.add_argument(
            "--duration", type=_positive_float, help="Stop after this many seconds [never]."
        )
        parser.add_argument(
            "--id-tags",
            help="Comma-separated cards drivers badge with [with --from-site: the site's "
            "authorised cards; else SIM-TAG-01…10].",
        )
        parser.add_argument("--password", help="Basic-auth password (security profiles 1-2).")
        parser.add_argument("--ca-file", help="CA certificate to trust for wss:// URLs.")
        parser.add_argument(
            "--sample-interval", type=int, default=10, help="MeterValueSampleInterval, s [10]."
        )
        parser.add_argument("--seed", type=int, help="Random seed, for repeatable runs.")
        parser.add_argument(
            "--status-every", type=_positive_float, default=5.0, help="Status line period, s [5]."
        )
        parser.add_argument(
            "--meters",
            type=int,
            metavar="PORT",
            help="Also simulate this evce's meters configured on 127.0.0.1:PORT (Modbus TCP): "
            "building load plus the simulated EVs, solar production.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self._configure_logging(options["verbosity"])
        fleet = self.build_fleet(options)
        for listener in self.fleet_listeners(fleet, options):
            fleet.add_listener(listener)
        stations = len(fleet.stations)
        connectors = sum(len(s.connectors) for s in fleet.stations.values())
        endpoint = next(iter(fleet.stations.values())).endpoint
        self.stdout.write(
            f"Simulating {stations} station(s), {connectors} connector(s) against "
            f"{endpoint.url} — Ctrl-C to stop."
        )
        try:
            asyncio.run(self._run(fleet, options["duration"], options["status_every"]))
        finally:
            feed = getattr(self, "_meter_feed", None)
            if feed is not None:
                feed.stop()

    # ------------------------------------------------------------------ building

    def build_fleet(self, options: dict[str, Any]) -> Fleet:
        url = options["url"] or f"ws://127.0.0.1:{settings.OCPP_PORT}"
        if not url.startswith(("ws://", "wss://")):
            raise CommandError("--url must start with ws:// or wss://")
        try:
            arrivals = ArrivalPattern.parse(options["arrival"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if options["sample_interval"] < 0:
            raise CommandError("--sample-interval must not be negative")
        configuration = {"MeterValueSampleInterval": str(options["sample_interval"])}
        specs = self._specs(options, configuration)
        if not specs:
            raise CommandError("No stations to simulate.")
        return Fleet.build(
            specs,
            Endpoint(url, ca_file=options["ca_file"]),
            arrivals=arrivals,
            drivers=Drivers(
                id_tags=self._id_tags(options), dwell_mean_s=self._dwell_s(options["dwell"])
            ),
            seed=options["seed"],
        )

    def fleet_listeners(self, fleet: Fleet, options: dict[str, Any]) -> list[FleetListener]:
        """Callbacks run every simulated second with the fleet: the meter feed, if asked."""
        if not options.get("meters"):
            return []
        from apps.simulator.meters import MeterFeed, plan_meters

        planned = plan_meters(options["meters"])
        if not planned:
            raise CommandError(
                f"No meter of this evce is configured on 127.0.0.1:{options['meters']}."
            )
        feed = MeterFeed(options["meters"], planned)
        try:
            feed.start()
        except OSError as exc:
            raise CommandError(f"Cannot serve meters on port {options['meters']}: {exc}") from None
        self._meter_feed = feed
        self.stdout.write(
            f"Simulating {len(planned)} meter(s) on 127.0.0.1:{options['meters']}: "
            + ", ".join(f"{m.name} ({m.role}, unit {m.unit_id})" for m in planned)
        )
        feed.update(fleet)
        return [feed.update]

    def _specs(self, options: dict[str, Any], configuration: dict[str, str]) -> list[StationSpec]:
        if options["from_site"]:
            return selectors.installed_station_specs(
                password=options["password"], configuration=configuration
            )
        if options["stations"] < 1:
            raise CommandError("--stations must be at least 1")
        return station_specs(
            options["stations"],
            prefix=options["prefix"],
            connectors=options["connectors"],
            max_current_a=options["max_current"],
            wiring=options["wiring"],
            password=options["password"],
            configuration=configuration,
        )

    def _id_tags(self, options: dict[str, Any]) -> tuple[str, ...]:
        if options["id_tags"]:
            tags = tuple(tag.strip() for tag in options["id_tags"].split(",") if tag.strip())
            if not tags or any(len(tag) > 20 for tag in tags):
                raise CommandError("--id-tags: 1-20 characters each, comma-separated")
            return tags
        if options["from_site"]:
            return tuple(selectors.authorized_id_tags()) or DEFAULT_ID_TAGS
        return DEFAULT_ID_TAGS

    @staticmethod
    def _dwell_s(text: str) -> float | None:
        if text == "full":
            return None
        try:
            return _positive_float(text)
        except ValueError:
            raise CommandError("--dwell must be a number of seconds or 'full'") from None

    @staticmethod
    def _configure_logging(verbosity: int) -> None:
        """Quiet by default; -v 2 shows connection events, -v 3 every OCPP frame."""
        levels = {
            "apps.simulator": logging.INFO if verbosity >= 2 else logging.WARNING,
            "apps.simulator.ocpp": logging.INFO if verbosity >= 3 else logging.WARNING,
            "ocpp": logging.WARNING,
            "websockets": logging.WARNING,
        }
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)

    # ------------------------------------------------------------------ running

    async def _run(self, fleet: Fleet, duration_s: float | None, status_every_s: float) -> None:
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        stopping = False

        def on_signal() -> None:
            nonlocal stopping
            if stopping and main is not None:
                main.cancel()  # a second Ctrl-C: do not wait for a clean stop
                return
            stopping = True
            self.stderr.write("Stopping: ending sessions (Ctrl-C again to quit at once)…")
            fleet.request_stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, on_signal)
        reporter = asyncio.create_task(self._report(fleet, status_every_s))
        try:
            await fleet.run(duration_s)
        except asyncio.CancelledError:
            self.stderr.write("Stopped without waiting.")
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)
        self.stdout.write(status_line(fleet.status()))

    async def _report(self, fleet: Fleet, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            self.stdout.write(status_line(fleet.status()))


def status_line(status: FleetStatus) -> str:
    """One compact line: who is up, who charges, what the EVs draw."""
    l1, l2, l3 = status.phase_currents_a
    up = f"up {status.accepted}/{status.stations}"
    if status.connected != status.accepted:
        up += f" (connected {status.connected})"
    parts = [
        datetime.now().strftime("%H:%M:%S"),  # noqa: DTZ005 - local time for the operator
        up,
        f"EVs {status.evs}",
        f"charging {status.charging}",
        f"suspended {status.suspended}",
        f"L1/L2/L3 {l1:.1f}/{l2:.1f}/{l3:.1f} A",
        f"total {status.total_current_a:.1f} A",
        f"{status.energy_wh / 1000:.1f} kWh",
        f"sessions {status.sessions_started}",
    ]
    if status.buffered_messages:
        parts.append(f"buffered {status.buffered_messages}")
    return "  ".join(parts)
