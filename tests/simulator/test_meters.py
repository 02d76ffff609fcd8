"""The simulated meters serve building load plus the simulated EVs, over real Modbus TCP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.maintenance.management.setup import load_demo_site
from apps.meters.modbus.builtin import PM5320
from apps.meters.modbus.client import TcpConnection, read_meter_sync
from apps.meters.models import Meter
from apps.simulator.meters import MeterFeed, plan_meters
from apps.simulator.modbus_meter import building_load_a
from tests.conftest import free_port

NOON = datetime(2026, 6, 22, 12, 0, tzinfo=UTC)  # a summer Monday


class EvDraw:
    """What a fleet reports: the EVs' current per building phase for given stations."""

    def __init__(self, per_station_a: tuple[float, float, float]):
        self.per_station_a = per_station_a
        self.asked: list[list[str]] = []

    def phase_currents_a(self, station_ids):
        self.asked.append(list(station_ids))
        n = len(station_ids)
        return tuple(n * c for c in self.per_station_a)


@pytest.fixture
def demo_meters_port(db):
    load_demo_site()
    port = free_port()
    Meter.objects.filter(host="127.0.0.1").update(port=port)
    return port


def test_plan_gives_each_meter_its_role(demo_meters_port):
    plan = {m.name: m for m in plan_meters(demo_meters_port)}
    assert plan["main"].role == "zone"
    assert len(plan["main"].station_ids) == 8  # every installed station below the main switchboard
    assert plan["solar"].role == "production"
    assert plan["hvac"].role == "reporting"
    assert plan_meters(free_port()) == []


def test_zone_meter_reads_building_load_plus_evs(demo_meters_port):
    moments = iter([NOON, NOON + timedelta(hours=1)])
    feed = MeterFeed(demo_meters_port, plan_meters(demo_meters_port), clock=lambda: next(moments))
    feed.start()
    try:
        fleet = EvDraw((2.0, 1.0, 0.0))
        feed.update(fleet)
        main = TcpConnection("127.0.0.1", demo_meters_port, Meter.objects.get(name="main").unit_id)
        reading = read_meter_sync(main, PM5320)
        building = building_load_a(NOON, peak_a=160 * 0.45)
        assert reading.current_l1_a == pytest.approx(building[0] + 16.0, abs=0.01)
        assert reading.current_l2_a == pytest.approx(building[1] + 8.0, abs=0.01)
        assert reading.current_l3_a == pytest.approx(building[2], abs=0.01)
        solar = read_meter_sync(TcpConnection("127.0.0.1", demo_meters_port, 2), PM5320)
        assert solar.current_l1_a > 0  # a June noon

        feed.update(fleet)  # one hour later: the energy counter moved
        again = read_meter_sync(main, PM5320)
        assert again.energy_delivered_kwh > 5
    finally:
        feed.stop()
