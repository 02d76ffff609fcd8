"""``/api/v2/zones``: configuration and live figures, read by every role."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.utils import timezone

from apps.central_system import commands
from apps.energy.control import rebalance_once
from tests.energy.helpers import all_accepted, charging_station
from tests.zones.factories import EbmsReductionFactory, ZoneFactory

pytestmark = pytest.mark.django_db

ZONE_FIELDS = {
    "id",
    "name",
    "parent_id",
    "type",
    "max_current_a",
    "stations_count",
    "sessions_count",
    "available_current_a",
    "allocated_current_a",
    "reserved_current_a",
    "local_current_a",
    "setpoint_power_w",
    "current_a",
    "power_w",
    "degraded",
    "reduction",
    "active_reductions",
}


def test_zones_list_every_field_of_the_spec_paginated(ebms, hot_state):
    top = ZoneFactory(name="Building", max_current_a=Decimal("100"))
    ZoneFactory(name="Car park", parent=top, max_current_a=Decimal("63"))

    response = ebms.get("/api/v2/zones/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2 and body["next"] is None
    building, car_park = body["results"]
    assert set(building) == ZONE_FIELDS
    assert building["type"] == "static" and building["max_current_a"] == 100.0
    assert car_park["parent_id"] == top.pk and car_park["name"] == "Car park"
    assert building["available_current_a"] == [0.0, 0.0, 0.0]  # no allocation yet
    assert building["reduction"] is None and building["current_a"] is None


def test_a_zone_shows_what_the_last_allocation_gave_it(ebms, hot_state):
    top = ZoneFactory(name="Building", max_current_a=Decimal("40"))
    zone = ZoneFactory(name="Car park", parent=top, max_current_a=Decimal("20"))
    charging_station(zone)
    with mock.patch.object(commands, "call_many", all_accepted):
        rebalance_once()

    body = ebms.get(f"/api/v2/zones/{zone.pk}/").json()

    assert body["allocated_current_a"] == [20.0, 20.0, 20.0]
    assert body["sessions_count"] == 1 and body["stations_count"] == 1
    assert body["setpoint_power_w"] == 20.0 * 3 * 230
    assert body["degraded"] is False
    assert ebms.get(f"/api/v2/zones/{top.pk}/").json()["stations_count"] == 1


def test_a_zone_shows_its_ebms_reduction(ebms, hot_state):
    zone = ZoneFactory()
    until = timezone.now() + timedelta(hours=2)
    EbmsReductionFactory(zone=zone, percent=Decimal("60"), description="peak", valid_until=until)

    reduction = ebms.get(f"/api/v2/zones/{zone.pk}/").json()["reduction"]

    assert reduction["value"] == 60.0 and reduction["type"] == "percentage"
    assert reduction["description"] == "peak"
    assert reduction["valid_until"] == until.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("path", ["/api/v2/zones/999/", "/api/v2/stations/CP-X/"])
def test_an_unknown_zone_is_404_in_the_error_shape(ebms, hot_state, path):
    response = ebms.get(path)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
