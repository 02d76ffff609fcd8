"""``meters`` (live from the poller's hot state, history from the records) and ``site``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.meters.models import MeterRecord
from apps.meters.services import meters_poll
from apps.siteconfig.models import SiteSettings
from tests.energy.helpers import charging_station
from tests.meters.factories import modbus_meter
from tests.stations.factories import StationFactory, TransactionFactory
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db


def test_a_polled_meter_shows_its_live_reading(ebms, meter_simulator, hot_state):
    meter = modbus_meter(meter_simulator.port, name="main")
    zone = ZoneFactory(meter=meter, max_current_a=Decimal("100"))
    meter_simulator.set_values(1, current_a=(10.0, 20.0, 30.0), energy_kwh=1234.5)
    assert meters_poll(now=timezone.now()).read == 1

    body = ebms.get(f"/api/v2/meters/{meter.pk}/").json()

    assert body["name"] == "main" and body["model"] == "pm5320"
    assert body["role"] == "zone" and body["zone_id"] == zone.pk
    assert body["status"] == "ok" and body["failures"] == 0
    assert body["poll_age_s"] is not None and body["poll_age_s"] >= 0
    reading = body["last_reading"]
    assert reading["current_a"] == pytest.approx([10.0, 20.0, 30.0], abs=0.01)
    assert reading["power_w"] == pytest.approx(230 * 60, rel=0.01)
    assert reading["energy_wh"] == pytest.approx(1234500, rel=0.001)
    listed = ebms.get("/api/v2/meters/").json()["results"]
    assert [(m["id"], m["status"], m["last_reading"]) for m in listed] == [
        (meter.pk, "ok", reading)
    ]


def test_a_meter_that_no_longer_answers_is_lost(ebms, meter_simulator, hot_state):
    meter = modbus_meter(meter_simulator.port)
    meter_simulator.set_online(1, False)
    for _poll in range(SiteSettings.load().meter_lost_after_polls + 1):
        meters_poll(now=timezone.now())

    body = ebms.get(f"/api/v2/meters/{meter.pk}/").json()

    assert body["status"] == "lost" and body["failures"] >= 1 and body["last_reading"] is None


def test_a_meter_history_is_paged_newest_first_and_filtered(ebms, hot_state):
    meter = modbus_meter(5020)
    start = datetime(2026, 11, 2, tzinfo=UTC)
    for n in range(3):
        MeterRecord.objects.create(
            meter=meter,
            at=start + timedelta(minutes=n),
            current_l1_a=float(n),
            power_total_kw=1.5,
            energy_delivered_kwh=10.0,
        )

    page = ebms.get(f"/api/v2/meters/{meter.pk}/readings/?limit=2").json()
    later = ebms.get(f"/api/v2/meters/{meter.pk}/readings/?from=2026-11-02T00:01:00Z").json()

    assert [r["current_a"][0] for r in page["results"]] == [2.0, 1.0]
    assert page["results"][0]["power_w"] == 1500.0 and page["results"][0]["energy_wh"] == 10000.0
    assert ebms.get(page["next"]).json()["results"][0]["at"] == "2026-11-02T00:00:00Z"
    assert len(later["results"]) == 2
    assert ebms.get("/api/v2/meters/999/readings/").status_code == 404


def test_the_site_counts_and_sums_the_top_zones(ebms, hot_state):
    top = ZoneFactory(name="Building", max_current_a=Decimal("100"))
    ZoneFactory(name="Garage", parent=top, max_current_a=Decimal("63"))
    station, _tx = charging_station(top)
    StationFactory(zone=top)
    TransactionFactory(station=station, connector_id=2, status="SuspendedEV")

    body = ebms.get("/api/v2/site/").json()

    assert body["name"] == SiteSettings.load().name
    assert body["supervision_mode"] == "local"
    assert body["zones_count"] == 2 and body["stations_count"] == 2
    assert body["connectors_count"] == 1 and body["stations_connected"] == 1
    assert body["sessions"]["charging"] == 1 and body["sessions"]["suspendedev"] == 1
    assert body["sessions"]["total"] == 2
    assert body["current_a"] is None and body["power_w"] is None  # a static top zone
    assert len(body["setpoint_current_a"]) == 3 and body["setpoint_power_w"] >= 0
