"""Simulated Modbus meters fed by the simulated fleet, so the control loop closes.

A zone meter measures a daily building-load profile plus the current the
simulated EVs below its zone draw; a production meter follows a daylight
curve; a reporting meter follows a fraction of the building load. Energy
counters integrate the power. Meters of this evce's configuration served on
``127.0.0.1:<port>`` are simulated; others are left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from apps.meters.models import Meter
from apps.simulator.modbus_meter import MeterSimulator, building_load_a, solar_production_a
from apps.simulator.selectors import metered_station_identities
from apps.zones.models import Zone

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
REPORTING_SHARE = 0.3
VOLTAGE_V = 230.0


@dataclass
class SimulatedMeter:
    """One simulated meter: its unit id, what it measures and its energy counter."""

    name: str
    unit_id: int
    role: str  # "zone" | "production" | "reporting"
    station_ids: list[str] = field(default_factory=list)
    peak_a: float = 0.0
    building_peak_a: float = 55.0
    energy_kwh: float = 0.0
    last_at: datetime | None = None

    def currents_a(
        self, now: datetime, ev_currents: Callable[[list[str]], tuple[float, float, float]]
    ):
        if self.role == "production":
            return solar_production_a(now, self.peak_a)
        building = building_load_a(now, peak_a=self.building_peak_a)
        if self.role == "reporting":
            return tuple(round(c * REPORTING_SHARE, 2) for c in building)
        evs = ev_currents(self.station_ids)
        return tuple(round(b + e, 2) for b, e in zip(building, evs, strict=True))


def plan_meters(port: int) -> list[SimulatedMeter]:
    """The configured meters served on 127.0.0.1:``port``, with their role."""
    stations_by_meter = metered_station_identities()
    zone_by_meter = {z.meter_id: z for z in Zone.objects.exclude(meter=None)}
    production_zone = {
        z.production_meter_id: z for z in Zone.objects.exclude(production_meter=None)
    }
    plan = []
    for meter in Meter.objects.filter(port=port, host__in=LOCAL_HOSTS).order_by("unit_id"):
        if meter.pk in zone_by_meter:
            zone = zone_by_meter[meter.pk]
            plan.append(
                SimulatedMeter(
                    meter.name,
                    meter.unit_id,
                    "zone",
                    stations_by_meter.get(meter.pk, []),
                    building_peak_a=float(zone.max_current_a) * 0.45,
                )
            )
        elif meter.pk in production_zone:
            zone = production_zone[meter.pk]
            plan.append(
                SimulatedMeter(
                    meter.name, meter.unit_id, "production", peak_a=float(zone.max_current_a) * 0.25
                )
            )
        else:
            plan.append(SimulatedMeter(meter.name, meter.unit_id, "reporting"))
    return plan


class MeterFeed:
    """Serves the planned meters and updates them from the fleet (a fleet listener)."""

    def __init__(
        self,
        port: int,
        meters: list[SimulatedMeter],
        *,
        clock: Callable[[], datetime] | None = None,
    ):
        self.port = port
        self.meters = meters
        self.clock = clock or (lambda: datetime.now(UTC))
        self.simulator = MeterSimulator(host="127.0.0.1", port=port)
        for meter in meters:
            self.simulator.add_unit(meter.unit_id)

    def start(self) -> None:
        self.simulator.start_in_thread()

    def stop(self) -> None:
        self.simulator.stop_thread()

    def update(self, fleet) -> None:
        now = self.clock()
        for meter in self.meters:
            currents = meter.currents_a(now, fleet.phase_currents_a)
            power_kw = sum(currents) * VOLTAGE_V / 1000
            if meter.last_at is not None:
                meter.energy_kwh += (
                    power_kw * max(0.0, (now - meter.last_at).total_seconds()) / 3600
                )
            meter.last_at = now
            self.simulator.set_values(
                meter.unit_id, current_a=currents, energy_kwh=meter.energy_kwh
            )
