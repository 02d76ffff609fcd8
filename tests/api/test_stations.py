"""``/api/v2/stations`` and their connectors: connection and live setpoints."""

from __future__ import annotations

from decimal import Decimal
from unittest import mock

import pytest

from apps.central_system import commands
from apps.energy.control import rebalance_once
from apps.siteconfig.models import SiteSettings
from apps.supervision.services import supervision_save
from tests.energy.helpers import all_accepted, charging_station
from tests.rfid.factories import AuthGroupFactory
from tests.stations.factories import ConnectorFactory, DcConnectorFactory, StationFactory
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db

STATION_FIELDS = {
    "id",
    "identity",
    "station_type",
    "name",
    "zone_id",
    "vip",
    "vendor",
    "model",
    "serial",
    "firmware",
    "ip_address",
    "connected",
    "last_seen",
    "status",
    "auth_online_mode",
    "auth_offline_mode",
    "cpo_url",
    "accepted_by_cpo",
    "alarm",
    "connectors",
}
CONNECTOR_FIELDS = {
    "connector_id",
    "current_type",
    "fixed_setpoint",
    "max_current_a",
    "max_power_w",
    "phase_wiring",
    "status",
    "availability",
    "setpoint_current_a",
    "setpoint_power_w",
    "setpoint_reason",
    "current_a",
    "power_w",
    "energy_wh",
    "transaction_id",
}


def test_stations_list_every_field_of_the_spec(operator, hot_state):
    station = StationFactory(identity="CP-A", vendor="Acme", status="Available")
    ConnectorFactory(station=station, connector_id=1, status="Faulted", error_code="GroundFailure")
    DcConnectorFactory(station=station, connector_id=2, status="Unavailable")

    response = operator.get("/api/v2/stations/")

    assert response.status_code == 200
    (item,) = response.json()["results"]
    assert set(item) == STATION_FIELDS
    assert item["identity"] == "CP-A" and item["station_type"] == "ocpp1.6"
    assert item["connected"] is False and item["status"] == "available"
    assert item["alarm"] == {"priority": "high", "category": "GroundFailure"}
    ac, dc = item["connectors"]
    assert set(ac) == CONNECTOR_FIELDS
    assert ac["current_type"] == "ac" and ac["phase_wiring"] == "tri123"
    assert ac["status"] == "faulted" and ac["setpoint_current_a"] is None
    assert dc["current_type"] == "dc" and dc["max_power_w"] == 50000
    assert dc["availability"] == "inoperative"


def test_a_charging_connector_shows_its_setpoint_and_reason(ebms, hot_state):
    zone = ZoneFactory(max_current_a=Decimal("20"))
    station, tx = charging_station(zone)
    with mock.patch.object(commands, "call_many", all_accepted):
        rebalance_once()

    station_body = ebms.get(f"/api/v2/stations/{station.identity}/").json()
    connector = ebms.get(f"/api/v2/stations/{station.identity}/connectors/1/").json()

    assert station_body["connected"] is True and station_body["last_seen"] is not None
    assert station_body["connectors"] == [connector]
    assert connector["setpoint_current_a"] == 20.0
    assert connector["setpoint_reason"] == "zone_limit"
    assert connector["transaction_id"] == tx.pk


def test_identities_are_case_insensitive_and_unknown_ones_404(ebms, hot_state):
    station = StationFactory(identity="CP-B")
    ConnectorFactory(station=station, connector_id=1)

    assert ebms.get("/api/v2/stations/cp-b/").status_code == 200
    assert ebms.get("/api/v2/stations/CP-X/").status_code == 404
    assert ebms.get("/api/v2/stations/CP-B/connectors/7/").status_code == 404


def test_the_direct_representation_equals_drf_field_by_field(hot_state):
    """The list builds its dicts directly for speed: they must be what DRF's fields give."""
    from rest_framework import serializers

    from apps.energy.selectors import station_statuses
    from apps.stations.api.serializers import ConnectorSerializer, StationSerializer
    from tests.rfid.factories import AuthGroupFactory
    from tests.stations.factories import MeterSampleFactory

    zone = ZoneFactory(max_current_a=Decimal("20"))
    station, tx = charging_station(zone)
    station.auth_group = AuthGroupFactory()
    station.ip_address = "192.0.2.10"
    station.status = "Available"
    station.save()
    MeterSampleFactory(transaction=tx, current_l1_a=9.5, power_w=2185.0)
    ConnectorFactory(station=station, connector_id=2, status="Faulted", error_code="GroundFailure")
    DcConnectorFactory(station=StationFactory(zone=zone), connector_id=1, status="Unavailable")
    with mock.patch.object(commands, "call_many", all_accepted):
        rebalance_once()

    items = station_statuses()
    assert any(c.setpoint is not None for item in items for c in item.connectors)
    for item in items:
        for connector in item.connectors:
            generic = serializers.Serializer.to_representation(ConnectorSerializer(), connector)
            assert ConnectorSerializer(connector).data == generic
        generic = serializers.Serializer.to_representation(StationSerializer(), item)
        assert StationSerializer(item).data == generic


def test_cpo_url_follows_the_supervision_mode_and_the_group(ebms, hot_state):
    relayed, local = AuthGroupFactory(name="Public"), AuthGroupFactory(name="Staff")
    StationFactory(identity="CP-R", auth_group=relayed)
    StationFactory(identity="CP-L", auth_group=local)
    supervision_save(
        None, name="Operator A", url="wss://cpo.example/ocpp/", groups=[relayed], user=None
    )

    def cpo_urls() -> dict[str, str | None]:
        body = ebms.get("/api/v2/stations/").json()
        return {s["identity"]: (s["cpo_url"], s["accepted_by_cpo"]) for s in body["results"]}

    assert cpo_urls() == {"CP-R": (None, None), "CP-L": (None, None)}  # local mode
    site = SiteSettings.load()
    site.supervision_mode = "multiple"
    site.save()
    assert cpo_urls() == {"CP-R": ("wss://cpo.example/ocpp/CP-R", None), "CP-L": (None, None)}
    assert ebms.get("/api/v2/stations/CP-R/").json()["cpo_url"] == "wss://cpo.example/ocpp/CP-R"
    site.supervision_mode = "unique"
    site.save()
    assert cpo_urls() == {
        "CP-R": ("wss://cpo.example/ocpp/CP-R", None),
        "CP-L": ("wss://cpo.example/ocpp/CP-L", None),
    }
