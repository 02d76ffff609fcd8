"""Security profiles 0–2: who may open a connection, checked before the upgrade."""

from __future__ import annotations

import base64

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.hashers import make_password
from django.test import override_settings

from apps.central_system import security
from apps.devicelog.models import DeviceLogEntry
from apps.siteconfig.models import SiteSettings
from apps.stations.models import SecurityProfile
from tests.stations.factories import StationFactory

pytestmark = pytest.mark.django_db


def basic(user: str, password: str | bytes) -> list[tuple[bytes, bytes]]:
    raw = user.encode() + b":" + (password if isinstance(password, bytes) else password.encode())
    return [(b"authorization", b"Basic " + base64.b64encode(raw))]


def station_with_key(profile: int, key: str = "correct horse battery") -> str:
    station = StationFactory(security_profile=profile)
    station.set_authorization_key(key)
    station.save()
    return station.identity


def connect(make_station, identity, **kwargs) -> dict:
    async def scenario():
        station = make_station(identity, **kwargs)
        answer = await station.connect()
        if answer["type"] == "websocket.accept":
            await station.close()
        elif answer["type"] == "websocket.http.response.start":
            answer["body"] = (await station.output())["body"]
        return answer

    return async_to_sync(scenario)()


def test_basic_credentials_parsing():
    assert security.basic_credentials(basic("CP1", "s3cret:x")) == ("CP1", b"s3cret:x")
    assert security.basic_credentials([(b"authorization", b"Bearer abc")]) is None
    assert security.basic_credentials([(b"authorization", b"Basic !!!")]) is None
    assert security.basic_credentials([]) is None


def test_profile_1_needs_the_right_key(make_station, redis_url):
    identity = station_with_key(SecurityProfile.BASIC)
    assert (
        connect(make_station, identity, headers=basic(identity, "correct horse battery"))["type"]
        == "websocket.accept"
    )
    refused = connect(make_station, identity, headers=basic(identity, "wrong"))
    assert refused["status"] == 401
    assert (b"www-authenticate", b'Basic realm="evce OCPP", charset="UTF-8"') in refused["headers"]
    assert connect(make_station, identity)["status"] == 401
    assert (
        connect(make_station, identity, headers=basic("SOMEONE-ELSE", "correct horse battery"))[
            "status"
        ]
        == 401
    )
    event = DeviceLogEntry.objects.get(event="ocpp_connection_refused", station_identity=identity)
    assert event.category == "security"


def test_hex_authorization_key_sent_as_raw_bytes(make_station, redis_url):
    identity = station_with_key(SecurityProfile.BASIC, key="00FF10A0B1C2D3E4F5061728394A5B6C")
    raw = bytes.fromhex("00FF10A0B1C2D3E4F5061728394A5B6C")
    assert (
        connect(make_station, identity, headers=basic(identity, raw))["type"] == "websocket.accept"
    )


def test_shared_key_serves_stations_without_their_own(make_station, redis_url):
    site = SiteSettings.load()
    site.shared_authorization_key_hash = make_password("shared key of the site")
    site.save()
    identity = StationFactory(security_profile=SecurityProfile.BASIC).identity
    ok = connect(make_station, identity, headers=basic(identity, "shared key of the site"))
    assert ok["type"] == "websocket.accept"
    assert connect(make_station, identity, headers=basic(identity, "nope"))["status"] == 401


def test_profile_2_refuses_a_plain_connection(make_station, redis_url):
    identity = station_with_key(SecurityProfile.TLS_BASIC)
    downgraded = connect(make_station, identity, headers=basic(identity, "correct horse battery"))
    assert downgraded["status"] == 403


@override_settings(OCPP_TLS_ENABLED=True, OCPP_TLS_PORT=19981)
def test_profile_2_over_tls(make_station, redis_url):
    identity = station_with_key(SecurityProfile.TLS_BASIC)
    ok = connect(
        make_station, identity, headers=basic(identity, "correct horse battery"), port=19981
    )
    assert ok["type"] == "websocket.accept"
    refused = connect(make_station, identity, headers=basic(identity, "wrong"), port=19981)
    assert refused["status"] == 401


def test_profile_3_is_refused(make_station, redis_url):
    identity = StationFactory(security_profile=SecurityProfile.TLS_CLIENT_CERT).identity
    assert connect(make_station, identity)["status"] == 403


def test_invalid_identity_and_wrong_port_are_not_found(make_station, redis_url):
    assert connect(make_station, "has space", path="/ocpp/has space")["status"] == 404
    assert connect(make_station, "X" * 31)["status"] == 404
    assert connect(make_station, "CP-ON-HTTP", port=1)["status"] == 404


def test_profile_0_accepts_unauthenticated_and_unknown_stations(make_station, redis_url):
    assert connect(make_station, StationFactory().identity)["type"] == "websocket.accept"
    assert connect(make_station, "NEW*STATION|1@b=c+d")["type"] == "websocket.accept"


def test_without_the_denial_extension_a_refusal_is_a_plain_close(make_station, redis_url):
    identity = station_with_key(SecurityProfile.BASIC)

    async def scenario():
        station = make_station(identity)
        station.communicator.scope["extensions"] = {}
        return await station.connect()

    assert async_to_sync(scenario)() == {"type": "websocket.close"}


def test_a_successful_key_check_is_remembered(redis_url, monkeypatch):
    identity = station_with_key(SecurityProfile.BASIC)
    access = security.station_access(identity)
    assert security.admit(
        access, credentials=(identity, b"correct horse battery"), tls=False
    ).allowed
    hashed = []
    monkeypatch.setattr(security, "check_password", lambda *a: hashed.append(a) or False)
    assert security.admit(
        access, credentials=(identity, b"correct horse battery"), tls=False
    ).allowed
    assert hashed == []
    assert not security.admit(access, credentials=(identity, b"other"), tls=False).allowed
    assert len(hashed) == 1
