"""Station key rotation and security-profile upgrades: adopted only once the station accepts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.central_system import commands, hotstate, station_security
from apps.devicelog.models import DeviceLogEntry
from apps.stations.models import Station
from tests.stations.factories import StationFactory

pytestmark = pytest.mark.django_db

OLD_KEY = "the-old-station-key-0001"


class Answering:
    """A station answering every command with ``answer`` (or raising ``error``)."""

    def __init__(self, answer: str = "Accepted", error: Exception | None = None) -> None:
        self.answer, self.error = answer, error
        self.sent: list[commands.Command] = []

    def __call__(self, command: commands.Command) -> dict:
        self.sent.append(command)
        if self.error is not None:
            raise self.error
        return {"status": self.answer}


@pytest.fixture
def station():
    station = StationFactory(security_profile=1)
    station.set_authorization_key(OLD_KEY)
    station.save()
    return station


def test_an_accepted_key_replaces_the_old_one(station):
    send = Answering("Accepted")
    assert station_security.station_key_rotate(station, send=send) == "Accepted"
    [command] = send.sent
    assert command.action == "ChangeConfiguration"
    assert command.payload["key"] == "AuthorizationKey"
    new_key = command.payload["value"]
    assert len(new_key) == 40 and int(new_key, 16) >= 0
    station.refresh_from_db()
    assert station.check_authorization_key(new_key)
    assert not station.check_authorization_key(OLD_KEY)
    entry = DeviceLogEntry.objects.get(event="station_key_changed")
    assert entry.category == "security" and new_key not in str(entry.data) + entry.message


@pytest.mark.parametrize(
    "send",
    [
        Answering("Rejected"),
        Answering("NotSupported"),
        Answering(error=commands.CallTimeout("no answer")),
        Answering(error=commands.StationOffline("gone")),
    ],
)
def test_a_key_not_accepted_keeps_the_old_one(station, send):
    station_security.station_key_rotate(station, send=send)
    station.refresh_from_db()
    assert station.check_authorization_key(OLD_KEY)
    assert DeviceLogEntry.objects.filter(event="station_key_change_failed").count() == 1


def test_a_discovered_station_gets_no_key():
    station = StationFactory(state="discovered", zone=None, name="")
    with pytest.raises(ValidationError):
        station_security.station_key_rotate(station, send=Answering())


def test_an_accepted_profile_upgrade_is_stored(station, settings):
    settings.OCPP_TLS_ENABLED = True
    send = Answering("Accepted")
    assert station_security.station_security_profile_upgrade(station, 2, send=send) == "Accepted"
    assert send.sent[0].payload == {"key": "SecurityProfile", "value": "2"}
    assert Station.objects.get(pk=station.pk).security_profile == 2
    assert DeviceLogEntry.objects.get(event="station_security_profile_raised").category == (
        "security"
    )


def test_a_refused_profile_upgrade_changes_nothing(station, settings):
    settings.OCPP_TLS_ENABLED = True
    station_security.station_security_profile_upgrade(station, 2, send=Answering("Rejected"))
    assert Station.objects.get(pk=station.pk).security_profile == 1


@pytest.mark.parametrize(
    ("profile", "tls", "message"),
    [
        (1, True, "only ever raised"),
        (0, True, "only ever raised"),
        (3, True, "up to 2"),
        (2, False, "TLS"),
    ],
)
def test_impossible_upgrades_are_refused_before_sending(station, settings, profile, tls, message):
    settings.OCPP_TLS_ENABLED = tls
    send = Answering()
    with pytest.raises(ValidationError, match=message):
        station_security.station_security_profile_upgrade(station, profile, send=send)
    assert send.sent == []


def test_profile_1_needs_a_key_first():
    station = StationFactory()
    with pytest.raises(ValidationError, match="no authorization key"):
        station_security.station_security_profile_upgrade(station, 1, send=Answering())


def test_periodic_rotation_picks_connected_stations_with_old_keys(station, settings, redis_url):
    fresh = StationFactory(security_profile=1)
    fresh.set_authorization_key("a-fresh-station-key-001")
    fresh.save()
    unprotected = StationFactory(security_profile=0)
    Station.objects.filter(pk=station.pk).update(
        authorization_key_set_at=timezone.now() - timedelta(days=100)
    )
    for each in (station, fresh, unprotected):
        async_to_sync(hotstate.connection_open)(
            each.identity, f"specific.test!{each.identity}", remote_addr=None
        )
    settings.STATION_KEY_ROTATION_DAYS = 0
    assert station_security.stations_due_for_key_rotation() == []
    settings.STATION_KEY_ROTATION_DAYS = 90
    assert station_security.stations_due_for_key_rotation() == [station]
