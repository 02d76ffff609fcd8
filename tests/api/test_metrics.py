"""``/metrics``: the figures of SPEC §9 in the Prometheus text format, and who may read them."""

from __future__ import annotations

from decimal import Decimal
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

from apps.accounts.models import Role
from apps.central_system import commands
from apps.energy.control import rebalance_once
from apps.meters.services import meters_poll
from tests.accounts.factories import UserFactory
from tests.central_system.conftest import FakeStation
from tests.energy.helpers import all_accepted, charging_station
from tests.meters.factories import modbus_meter
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db


def _samples(response) -> dict[tuple[str, tuple], float]:
    text = response.content.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.usefixtures("station_side")
def test_the_figures_of_zones_sessions_stations_meters_ocpp_and_the_loop(
    meter_simulator, hot_state
):
    zone = ZoneFactory(name="Garage", max_current_a=Decimal("20"))
    charging_station(zone)
    meter = modbus_meter(meter_simulator.port, name="main")
    ZoneFactory(name="Building", meter=meter, max_current_a=Decimal("100"))
    meter_simulator.set_values(1, current_a=(10.0, 11.0, 12.0))
    meters_poll(now=timezone.now())
    with mock.patch.object(commands, "call_many", all_accepted):
        rebalance_once()

    async def booted_station():
        cp = FakeStation("METRICS1")
        await cp.open()
        await cp.boot()
        await cp.close()  # flushes the OCPP log, which counts the frames

    async_to_sync(booted_station)()

    response = Client().get("/metrics")  # from 127.0.0.1, allowed by default

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = _samples(response)
    garage = (("phase", "L1"), ("zone", "Garage"), ("zone_id", str(zone.pk)))
    assert samples[("evce_zone_allocated_current_amperes", garage)] == 20.0
    assert ("evce_zone_available_current_amperes", garage) in samples
    building_l3 = [
        value
        for (name, labels), value in samples.items()
        if name == "evce_zone_measured_current_amperes" and ("phase", "L3") in labels
    ]
    assert building_l3 == [pytest.approx(12.0, abs=0.01)]
    assert samples[("evce_sessions", (("state", "charging"),))] == 1
    assert samples[("evce_stations_connected", ())] == 1
    meter_labels = (("meter", "main"), ("meter_id", str(meter.pk)))
    assert samples[("evce_meter_up", meter_labels)] == 1
    assert samples[("evce_meter_poll_age_seconds", meter_labels)] >= 0
    boot_in = (("action", "BootNotification"), ("direction", "in"))
    assert samples[("evce_ocpp_messages_total", boot_in)] == 1
    assert samples[("evce_control_loop_runs_total", ())] == 1
    assert samples[("evce_control_loop_duration_seconds_total", ())] > 0


def test_other_addresses_need_an_api_token(settings, hot_state):
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1", "10.1.0.0/16"]
    token = Token.objects.create(user=UserFactory(role=Role.EBMS)).key
    outsider = {"REMOTE_ADDR": "192.0.2.7"}

    refused = Client().get("/metrics", **outsider)
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Token nope", **outsider)
    with_token = Client().get("/metrics", HTTP_AUTHORIZATION=f"Token {token}", **outsider)
    in_network = Client().get("/metrics", REMOTE_ADDR="10.1.2.3")

    assert refused.status_code == 401 and refused["WWW-Authenticate"].startswith("Token")
    assert wrong.status_code == 401
    assert with_token.status_code == 200 and b"evce_sessions" in with_token.content
    assert in_network.status_code == 200
