"""A fleet of simulated stations and the drivers who come to them.

The fleet runs the stations, brings EVs (arrival pattern, id tags, dwell
times) to the stations that are up, and exposes what a site meter would
see: the current its EVs draw per building phase. Listeners registered
with ``add_listener`` are called every simulated second, which is how a
Modbus meter simulator can be fed the fleet's currents.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ocpp.v16.enums import ChargePointStatus, Reason

from apps.energy.allocator import PhaseWiring
from apps.simulator.engine.clock import Clock, ScaledClock
from apps.simulator.engine.ev import EV_CATALOGUE, EvModel, random_ev
from apps.simulator.engine.model import ConnectorSpec, Endpoint, StationSpec, StationTiming
from apps.simulator.engine.station import StationSim, cancel_and_wait
from apps.simulator.engine.wiring import PhaseCurrents

logger = logging.getLogger("apps.simulator")


@dataclass(frozen=True, slots=True)
class ArrivalPattern:
    """How EVs arrive: ``poisson`` (random, ``mean_interval_s`` apart on average over
    the whole fleet), ``all`` (one EV per connector as soon as its station is up),
    or ``none`` (only remote starts)."""

    kind: str
    mean_interval_s: float = 0.0

    @classmethod
    def parse(cls, text: str) -> ArrivalPattern:
        """``poisson:MEAN_S``, ``all`` or ``none``."""
        kind, _, argument = text.strip().partition(":")
        if kind in ("all", "none") and not argument:
            return cls(kind)
        if kind == "poisson":
            try:
                mean_s = float(argument)
            except ValueError:
                mean_s = 0.0
            if mean_s > 0:
                return cls("poisson", mean_s)
        raise ValueError(f"arrival pattern must be poisson:MEAN_S, all or none, not {text!r}")


@dataclass(frozen=True, slots=True)
class Drivers:
    """Who arrives: their cards, how long they stay, the EVs they drive.

    ``dwell_mean_s`` None: drivers leave once their EV has been full for a while.
    Otherwise each stays a random 50-150 % of the mean.
    """

    id_tags: tuple[str, ...] = ("SIM-TAG-01",)
    dwell_mean_s: float | None = None
    ev_models: tuple[EvModel, ...] = EV_CATALOGUE
    soc_range: tuple[float, float] = (0.1, 0.6)


@dataclass(frozen=True, slots=True)
class FleetStatus:
    """A summary for status lines and dashboards."""

    stations: int
    connected: int
    accepted: int
    evs: int
    charging: int
    suspended: int
    phase_currents_a: PhaseCurrents
    energy_wh: float
    sessions_started: int
    buffered_messages: int
    lost_arrivals: int

    @property
    def total_current_a(self) -> float:
        return sum(self.phase_currents_a)


FleetListener = Callable[["Fleet"], object]


class Fleet:
    def __init__(
        self,
        stations: Sequence[StationSim],
        *,
        arrivals: ArrivalPattern,
        drivers: Drivers | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.stations: dict[str, StationSim] = {station.identity: station for station in stations}
        self.arrivals = arrivals
        self.drivers = drivers or Drivers()
        self.clock: Clock = clock or ScaledClock()
        self.rng = rng or random.Random()
        self.lost_arrivals = 0
        self._listeners: list[FleetListener] = []
        self._stop = asyncio.Event()

    @classmethod
    def build(
        cls,
        specs: Iterable[StationSpec],
        endpoint: Endpoint,
        *,
        arrivals: ArrivalPattern,
        drivers: Drivers | None = None,
        clock: Clock | None = None,
        timing: StationTiming | None = None,
        seed: int | None = None,
    ) -> Fleet:
        """Stations for ``specs`` on one clock; ``seed`` makes the whole run repeatable."""
        clock = clock or ScaledClock()
        rng = random.Random(seed)
        drivers = drivers or Drivers()
        stations = []
        for spec in specs:
            station_rng = random.Random(rng.getrandbits(64))
            stations.append(
                StationSim(
                    spec,
                    endpoint,
                    clock=clock,
                    timing=timing,
                    rng=station_rng,
                    ev_factory=lambda r=station_rng: random_ev(
                        r, drivers.ev_models, drivers.soc_range
                    ),
                )
            )
        return cls(stations, arrivals=arrivals, drivers=drivers, clock=clock, rng=rng)

    def add_listener(self, listener: FleetListener) -> None:
        """Call ``listener(fleet)`` every simulated second while the fleet runs."""
        self._listeners.append(listener)

    def request_stop(self) -> None:
        self._stop.set()

    async def run(
        self, duration_s: float | None = None, *, stop_reason: str = Reason.other
    ) -> None:
        """Run the stations and arrivals until ``request_stop`` or ``duration_s``, then stop
        cleanly: open transactions end with ``stop_reason``."""
        # Power-up of a large site: spread the first connections over up to 10 s.
        spread_s = min(10.0, 0.01 * len(self.stations))
        station_tasks = [
            asyncio.create_task(
                station.run(start_delay_s=self.rng.uniform(0, spread_s)), name=station.identity
            )
            for station in self.stations.values()
        ]
        helpers = [
            asyncio.create_task(self._arrival_loop()),
            asyncio.create_task(self._listener_loop()),
        ]
        waiters = [asyncio.create_task(self._stop.wait())]
        if duration_s is not None:
            waiters.append(asyncio.create_task(self.clock.sleep(duration_s)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(*helpers, *waiters)
            await asyncio.gather(
                *(station.shutdown(reason=stop_reason) for station in self.stations.values()),
                return_exceptions=True,
            )
            _, pending = await asyncio.wait(station_tasks, timeout=10)
            await cancel_and_wait(*pending)

    # ------------------------------------------------------------------ arrivals

    def arrive_at(self, identity: str, connector_id: int = 1) -> None:
        """An EV arrives now at a chosen connector (call on the fleet's event loop)."""
        self._new_visit(self.stations[identity], connector_id)

    def _new_visit(self, station: StationSim, connector_id: int) -> None:
        dwell_s = None
        if self.drivers.dwell_mean_s is not None:
            dwell_s = self.drivers.dwell_mean_s * self.rng.uniform(0.5, 1.5)
        station.arrive(
            random_ev(self.rng, self.drivers.ev_models, self.drivers.soc_range),
            self.rng.choice(station.spec.id_tags or self.drivers.id_tags),
            connector_id=connector_id,
            dwell_s=dwell_s,
        )

    async def _arrival_loop(self) -> None:
        if self.arrivals.kind == "all":
            await self._arrive_everywhere_once()
        elif self.arrivals.kind == "poisson":
            while True:
                await self.clock.sleep(self.rng.expovariate(1 / self.arrivals.mean_interval_s))
                free = [
                    (station, connector_id)
                    for station in self.stations.values()
                    if station.accepted
                    for connector_id in station.free_connector_ids()
                ]
                if not free:
                    self.lost_arrivals += 1
                    continue
                self._new_visit(*self.rng.choice(free))

    async def _arrive_everywhere_once(self) -> None:
        """One EV per connector, as soon as each station has been accepted."""
        waiting = set(self.stations)
        while waiting:
            for identity in sorted(waiting):
                station = self.stations[identity]
                if station.accepted:
                    waiting.discard(identity)
                    for connector_id in station.free_connector_ids():
                        self._new_visit(station, connector_id)
            await self.clock.sleep(0.25)

    async def _listener_loop(self) -> None:
        while True:
            for listener in self._listeners:
                try:
                    listener(self)
                except Exception:
                    logger.exception("fleet listener failed")
            await self.clock.sleep(1.0)

    # ------------------------------------------------------------------ views

    def phase_currents_a(self, station_ids: Iterable[str] | None = None) -> PhaseCurrents:
        """Current the EVs of ``station_ids`` (default: all) draw on the building's L1, L2, L3.

        Uses each connector's wiring: a single-phase EV on a TRI231 connector
        loads L2, on a MONO3 connector L3. Unknown identities are ignored.
        """
        selected = self.stations.keys() if station_ids is None else station_ids
        l1 = l2 = l3 = 0.0
        for identity in selected:
            station = self.stations.get(identity)
            if station is None:
                continue
            a, b, c = station.phase_currents_a()
            l1, l2, l3 = l1 + a, l2 + b, l3 + c
        return l1, l2, l3

    def status(self) -> FleetStatus:
        connectors = [c for station in self.stations.values() for c in station.connectors.values()]
        return FleetStatus(
            stations=len(self.stations),
            connected=sum(1 for s in self.stations.values() if s.connected),
            accepted=sum(1 for s in self.stations.values() if s.accepted),
            evs=sum(1 for c in connectors if c.visit is not None),
            charging=sum(1 for c in connectors if c.status == ChargePointStatus.charging),
            suspended=sum(
                1
                for c in connectors
                if c.status in (ChargePointStatus.suspended_ev, ChargePointStatus.suspended_evse)
            ),
            phase_currents_a=self.phase_currents_a(),
            energy_wh=sum(s.energy_delivered_wh for s in self.stations.values()),
            sessions_started=sum(s.sessions_started for s in self.stations.values()),
            buffered_messages=sum(s.outbox.durable_count for s in self.stations.values()),
            lost_arrivals=self.lost_arrivals,
        )


def station_specs(
    count: int,
    *,
    prefix: str = "SIM-",
    connectors: int = 1,
    max_current_a: float = 32.0,
    wiring: str = "rotate",
    password: str | None = None,
    configuration: dict[str, str] | None = None,
) -> list[StationSpec]:
    """Generated stations ``<prefix>001``…; ``wiring="rotate"`` turns the phase rotation
    from one connector to the next (TRI123, TRI231, TRI312), as installers do to
    balance single-phase EVs over the building's phases."""
    rotation = (PhaseWiring.TRI123, PhaseWiring.TRI231, PhaseWiring.TRI312)
    width = max(3, len(str(count)))
    specs = []
    index = 0
    for number in range(1, count + 1):
        connector_specs = []
        for connector_id in range(1, connectors + 1):
            chosen = rotation[index % 3] if wiring == "rotate" else PhaseWiring(wiring)
            index += 1
            connector_specs.append(ConnectorSpec(connector_id, chosen, max_current_a))
        specs.append(
            StationSpec(
                identity=f"{prefix}{number:0{width}d}",
                connectors=tuple(connector_specs),
                password=password,
                configuration=dict(configuration or {}),
            )
        )
    return specs
