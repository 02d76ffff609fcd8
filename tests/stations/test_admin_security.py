"""The stations' admin actions for keys and profiles, and the reservations list."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.devicelog.models import DeviceLogEntry
from apps.stations.models import Reservation, Station
from tests.stations.factories import StationFactory

pytestmark = pytest.mark.django_db


def _act(admin_client, action: str, station: Station):
    return admin_client.post(
        reverse("admin:stations_station_changelist"),
        {"action": action, "_selected_action": [station.pk]},
        follow=True,
    )


def test_a_station_that_cannot_take_a_new_key_keeps_its_own(admin_client, hot_state):
    station = StationFactory(security_profile=1)
    station.set_authorization_key("the-current-station-key")
    station.save()
    page = _act(admin_client, "rotate_key", station).content.decode()
    assert "not changed, the station answered StationOffline" in page
    station.refresh_from_db()
    assert station.check_authorization_key("the-current-station-key")
    assert DeviceLogEntry.objects.filter(event="station_key_change_failed").exists()


def test_a_profile_that_cannot_be_reached_is_explained(admin_client, hot_state):
    station = StationFactory()  # no key: profile 1 needs one first
    page = _act(admin_client, "upgrade_to_profile_1", station).content.decode()
    assert "has no authorization key" in page
    assert Station.objects.get(pk=station.pk).security_profile == 0


def test_reservations_are_listed(admin_client):
    station = StationFactory()
    Reservation.objects.create(
        station=station,
        connector_id=0,
        id_tag="DRIVER-7",
        expires_at=timezone.now() + timedelta(hours=1),
        status="active",
    )
    page = admin_client.get(reverse("admin:stations_reservation_changelist"))
    assert page.status_code == 200 and "DRIVER-7" in page.content.decode()
