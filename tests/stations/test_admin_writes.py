"""The station admin writes through the station services: their rules hold there too."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.devicelog.models import DeviceLogEntry
from apps.stations.models import Connector, Station, StationState
from tests.rfid.factories import AuthGroupFactory
from tests.stations.factories import (
    ConnectorFactory,
    DiscoveredStationFactory,
    StationFactory,
    TransactionFactory,
)
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:stations_station_changelist")


def act(client, action, stations, **extra):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [s.pk for s in stations], **extra},
        follow=True,
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def change_data(station, **values) -> dict:
    """The station's change form as a browser posts it (no connector row changed)."""
    connectors = list(station.connectors.all())
    data = {
        "identity": station.identity,
        "name": station.name,
        "zone": station.zone_id or "",
        "auth_group": station.auth_group_id or "",
        "security_profile": station.security_profile,
        "web_page_url": station.web_page_url,
        "connectors-TOTAL_FORMS": len(connectors),
        "connectors-INITIAL_FORMS": len(connectors),
        "connectors-MIN_NUM_FORMS": 0,
        "connectors-MAX_NUM_FORMS": 1000,
    }
    if station.vip:
        data["vip"] = "on"
    for index, connector in enumerate(connectors):
        prefix = f"connectors-{index}-"
        data.update(
            {
                f"{prefix}id": connector.pk,
                f"{prefix}station": station.pk,
                f"{prefix}connector_id": connector.connector_id,
                f"{prefix}current_type": connector.current_type,
                f"{prefix}max_current_a": connector.max_current_a or "",
                f"{prefix}max_power_w": connector.max_power_w or "",
                f"{prefix}phase_wiring": connector.phase_wiring,
            }
        )
    data.update(values)
    return data


def test_the_state_cannot_be_edited_in_the_form(admin_client):
    station = StationFactory()
    url = reverse("admin:stations_station_change", args=[station.pk])
    response = admin_client.post(url, change_data(station, state=StationState.REFUSED))
    assert response.status_code == 302
    station.refresh_from_db()
    assert station.state == StationState.INSTALLED


def test_installing_from_the_admin_logs_and_tells_the_station(
    admin_client, django_capture_on_commit_callbacks
):
    station = DiscoveredStationFactory(name="Bay 7", zone=ZoneFactory())
    with django_capture_on_commit_callbacks() as callbacks:
        response = act(admin_client, "install", [station])
    assert "1 station installed." in messages_of(response)
    station.refresh_from_db()
    assert station.state == StationState.INSTALLED
    entry = DeviceLogEntry.objects.get(event="station_installed")
    assert (entry.station_identity, entry.username) == (station.identity, "admin")
    assert any(getattr(c, "args", None) == (station.identity, "installed") for c in callbacks)


def test_installing_without_a_zone_is_refused_with_a_message(admin_client):
    station = DiscoveredStationFactory(name="Bay 7")
    response = act(admin_client, "install", [station])
    assert response.status_code == 200
    assert any(station.identity in m and "zone" in m for m in messages_of(response))
    station.refresh_from_db()
    assert station.state == StationState.DISCOVERED
    assert not DeviceLogEntry.objects.exists()


def test_refusing_a_charging_station_is_refused_with_a_message(admin_client):
    charging, idle = StationFactory(), StationFactory()
    TransactionFactory(station=charging)
    response = act(admin_client, "refuse", [charging, idle])
    assert any("ongoing transaction" in m for m in messages_of(response))
    assert "1 station refused." in messages_of(response)
    charging.refresh_from_db(), idle.refresh_from_db()
    assert (charging.state, idle.state) == (StationState.INSTALLED, StationState.REFUSED)
    assert DeviceLogEntry.objects.get().event == "station_refused"


def test_the_change_form_delete_keeps_a_charging_station(admin_client):
    station = StationFactory()
    TransactionFactory(station=station)
    url = reverse("admin:stations_station_delete", args=[station.pk])
    response = admin_client.post(url, {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert any("ongoing transaction" in m for m in messages_of(response))
    assert Station.objects.filter(pk=station.pk).exists()


def test_the_change_form_delete_goes_through_the_service(admin_client):
    station = StationFactory()
    url = reverse("admin:stations_station_delete", args=[station.pk])
    response = admin_client.post(url, {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert not Station.objects.filter(pk=station.pk).exists()
    entry = DeviceLogEntry.objects.get(event="station_deleted")
    assert (entry.station_identity, entry.username) == (station.identity, "admin")


def test_bulk_delete_is_all_or_nothing(admin_client):
    charging, idle = StationFactory(), StationFactory()
    TransactionFactory(station=charging)
    response = act(admin_client, "delete_selected", [charging, idle], post="yes")
    assert response.status_code == 200
    assert any("ongoing transaction" in m for m in messages_of(response))
    assert Station.objects.count() == 2
    assert not DeviceLogEntry.objects.exists()


def test_bulk_delete_logs_each_station(admin_client):
    stations = StationFactory.create_batch(2)
    act(admin_client, "delete_selected", stations, post="yes")
    assert not Station.objects.exists()
    assert DeviceLogEntry.objects.filter(event="station_deleted").count() == 2


def test_a_new_group_from_the_admin_reaches_the_station(
    admin_client, django_capture_on_commit_callbacks
):
    station = StationFactory()
    group = AuthGroupFactory()
    url = reverse("admin:stations_station_change", args=[station.pk])
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(url, change_data(station, auth_group=group.pk))
    assert response.status_code == 302
    station.refresh_from_db()
    assert station.auth_group == group
    assert DeviceLogEntry.objects.get().event == "station_updated"
    assert callbacks  # the authentication sync is told after commit


def test_connectors_edited_in_the_admin_are_logged(admin_client):
    station = StationFactory()
    connector = ConnectorFactory(station=station, connector_id=1)
    url = reverse("admin:stations_station_change", args=[station.pk])
    response = admin_client.post(url, change_data(station, **{"connectors-0-max_current_a": "16"}))
    assert response.status_code == 302
    connector.refresh_from_db()
    assert connector.max_current_a == 16
    entry = DeviceLogEntry.objects.get(event="station_updated")
    assert "connector 1" in entry.data["changes"]


def test_a_station_declared_in_the_admin_waits_for_installation(admin_client):
    zone = ZoneFactory()
    data = {
        "identity": "CP-NEW",
        "name": "Bay 9",
        "zone": zone.pk,
        "security_profile": 0,
        "connectors-TOTAL_FORMS": 1,
        "connectors-INITIAL_FORMS": 0,
        "connectors-MIN_NUM_FORMS": 0,
        "connectors-MAX_NUM_FORMS": 1000,
        "connectors-0-connector_id": 1,
        "connectors-0-current_type": "AC",
        "connectors-0-max_current_a": "32",
        "connectors-0-phase_wiring": "TRI123",
    }
    response = admin_client.post(reverse("admin:stations_station_add"), data)
    assert response.status_code == 302
    station = Station.objects.get(identity="CP-NEW")
    assert station.state == StationState.DISCOVERED
    assert Connector.objects.filter(station=station, connector_id=1).exists()
    assert DeviceLogEntry.objects.filter(event="station_declared").exists()
