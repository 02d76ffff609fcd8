"""The snapshot adapter: zone rows and meter readings as the allocator's inputs."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.energy.allocator import allocate
from apps.energy.snapshot import build_snapshot
from apps.meters.models import Meter, MeterModel
from apps.meters.services import meters_poll
from apps.simulator.modbus_meter import MeterSimulator
from apps.siteconfig.models import ProductionMode, SiteSettings
from apps.zones.models import Zone

pytestmark = pytest.mark.django_db


@pytest.fixture
def simulator():
    sim = MeterSimulator(host="127.0.0.1", port=0)
    sim.add_unit(1)
    sim.add_unit(2)
    sim.start_in_thread()
    yield sim
    sim.stop_thread()


def _meter(simulator, name: str, unit_id: int) -> Meter:
    return Meter.objects.create(
        name=name,
        model=MeterModel.objects.get(name="pm5320"),
        host="127.0.0.1",
        port=simulator.port,
        unit_id=unit_id,
        timeout_ms=300,
    )


def test_a_zone_meter_net_of_production_counts_the_production_once(simulator, hot_state):
    """Grid meter −11 A (19 A of building, 30 A of solar behind it): 81 A, not 100 A."""
    zone = Zone.objects.create(
        name="Main",
        max_current_a=70,
        meter=_meter(simulator, "grid", 1),
        production_meter=_meter(simulator, "pv", 2),
        meter_net_of_production=True,
    )
    SiteSettings.load()
    SiteSettings.objects.update(production_mode=ProductionMode.GRID_LOCAL)
    simulator.set_values(1, current_a=(-11.0, -11.0, -11.0))
    simulator.set_values(2, current_a=(30.0, 30.0, 30.0))
    now = timezone.now()
    meters_poll(now=now)

    snapshot = build_snapshot(now=now).snapshot
    (zone_input,) = snapshot.zones
    assert zone_input.meter_net_of_production
    figures = allocate(snapshot).zone(zone.pk)
    assert figures.other_loads_a == (-11.0, -11.0, -11.0)
    assert figures.available_a == (81.0, 81.0, 81.0)
