"""Remote actions through the API, to a station on the real OCPP WebSocket consumer."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.devicelog.models import DeviceLogEntry
from tests.api.live_station import answered, request, with_station
from tests.stations.factories import ConnectorFactory, StationFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("station_side")]


@pytest.fixture
def station(db):
    station = StationFactory()
    ConnectorFactory(station=station, connector_id=1)
    ConnectorFactory(station=station, connector_id=2)
    return station


def test_availability_round_trips_as_change_availability(operator, station):
    response = answered(
        operator,
        "put",
        f"/api/v2/stations/{station.identity}/connectors/2/availability/",
        {"availability": "inoperative"},
        expect=["ChangeAvailability", {"connectorId": 2, "type": "Inoperative"}],
        answer={"status": "Scheduled"},
        identity=station.identity,
    )

    assert response.status_code == 200, response.json()
    assert response.json() == {"status": "scheduled"}
    entry = DeviceLogEntry.objects.get(event="station_command")
    assert entry.station_identity == station.identity and entry.user.role == "operator"
    assert entry.data["action"] == "ChangeAvailability"
    assert entry.data["payload"] == {"connectorId": 2, "type": "Inoperative"}
    assert entry.data["response"] == {"status": "Scheduled"}


def test_remote_start_reset_and_unlock_send_their_ocpp_call(ebms, station):
    base = f"/api/v2/stations/{station.identity}"
    start = answered(
        ebms,
        "post",
        f"{base}/remote-start/",
        {"connector_id": 1, "id_tag": "CARD1"},
        expect=["RemoteStartTransaction", {"idTag": "CARD1", "connectorId": 1}],
        answer={"status": "Accepted"},
        identity=station.identity,
    )
    reset = answered(
        ebms,
        "post",
        f"{base}/reset/",
        {"type": "soft"},
        expect=["Reset", {"type": "Soft"}],
        answer={"status": "Rejected"},
        identity=station.identity,
    )
    unlock = answered(
        ebms,
        "post",
        f"{base}/unlock/",
        {"connector_id": 2},
        expect=["UnlockConnector", {"connectorId": 2}],
        answer={"status": "Unlocked"},
        identity=station.identity,
    )

    assert start.json() == {"status": "accepted"}
    assert reset.json() == {"status": "rejected"}
    assert unlock.json() == {"status": "unlocked"}
    assert DeviceLogEntry.objects.filter(event="station_command").count() == 3


def test_an_offline_station_is_409(operator, station):
    response = operator.post(
        f"/api/v2/stations/{station.identity}/reset/", {"type": "hard"}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["code"] == "station_offline"
    entry = DeviceLogEntry.objects.get(event="station_command")
    assert entry.data["outcome"] == "offline"


def test_a_station_that_does_not_answer_is_504(operator, station, settings):
    settings.STATION_COMMAND_TIMEOUT_S = 0.5

    response = answered(
        operator,
        "post",
        f"/api/v2/stations/{station.identity}/unlock/",
        {"connector_id": 1},
        expect=["UnlockConnector", {"connectorId": 1}],
        answer=None,
        identity=station.identity,
    )

    assert response.status_code == 504
    assert response.json()["code"] == "station_timeout"
    assert DeviceLogEntry.objects.get(event="station_command").data["outcome"] == "timeout"


def test_a_call_error_is_502_with_its_code_and_description(operator, station):
    response = answered(
        operator,
        "post",
        f"/api/v2/stations/{station.identity}/reset/",
        {"type": "hard"},
        expect=["Reset", {"type": "Hard"}],
        answer=lambda unique_id: f'[4,"{unique_id}","NotSupported","no reset here",{{}}]',
        identity=station.identity,
    )

    assert response.status_code == 502
    body = response.json()
    assert body["code"] == "call_error"
    assert body["error_code"] == "NotSupported" and body["error_description"] == "no reset here"


def test_the_raw_ocpp_call_returns_the_station_answer_as_is(admin, station):
    answer = {
        "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "60"}],
        "unknownKey": ["Nope"],
    }

    response = answered(
        admin,
        "post",
        f"/api/v2/stations/{station.identity}/ocpp/GetConfiguration/",
        {"key": ["HeartbeatInterval", "Nope"]},
        expect=["GetConfiguration", {"key": ["HeartbeatInterval", "Nope"]}],
        answer=answer,
        identity=station.identity,
    )

    assert response.status_code == 200
    assert response.json() == answer
    entry = DeviceLogEntry.objects.get(event="station_command")
    assert entry.data["action"] == "GetConfiguration" and entry.user.role == "admin"


def test_the_raw_call_speaks_the_security_extension(admin, station):
    response = answered(
        admin,
        "post",
        f"/api/v2/stations/{station.identity}/ocpp/GetInstalledCertificateIds/",
        {"certificateType": "CentralSystemRootCertificate"},
        expect=["GetInstalledCertificateIds", {"certificateType": "CentralSystemRootCertificate"}],
        answer={"status": "NotFound"},
        identity=station.identity,
    )

    assert response.json() == {"status": "NotFound"}


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("GetConfiguration", {"key": "HeartbeatInterval"}),  # not an array
        ("Reset", {"type": "Sideways"}),
        ("ChangeAvailability", {"connectorId": 1}),  # type missing
        ("RemoteStopTransaction", {"transactionId": 1, "extra": True}),
    ],
)
def test_a_schema_invalid_raw_payload_is_400_and_nothing_is_sent(admin, station, action, payload):
    async def exchange(cp):
        response = await request(
            admin, "post", f"/api/v2/stations/{station.identity}/ocpp/{action}/", payload
        )
        assert await cp.nothing_more(0.3)
        return response

    response = with_station(station.identity, exchange)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and response.json()["fields"]["payload"]
    assert not DeviceLogEntry.objects.filter(event="station_command").exists()


def test_the_raw_call_refuses_what_a_central_system_does_not_send(admin, station):
    response = admin.post(f"/api/v2/stations/{station.identity}/ocpp/Heartbeat/", {}, format="json")

    assert response.status_code == 404 and response.json()["code"] == "unknown_action"


@pytest.mark.parametrize("role", ["operator", "ebms"])
def test_only_an_admin_makes_raw_calls(request, role, station):
    client = request.getfixturevalue(role)

    response = client.post(
        f"/api/v2/stations/{station.identity}/ocpp/Reset/", {"type": "Soft"}, format="json"
    )

    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


def test_remote_actions_need_credentials(station):
    response = APIClient().post(
        f"/api/v2/stations/{station.identity}/reset/", {"type": "soft"}, format="json"
    )

    assert response.status_code == 401


def test_unknown_station_or_connector_is_404_and_bad_fields_400(operator, station):
    assert (
        operator.post("/api/v2/stations/NOPE/reset/", {"type": "soft"}, format="json").status_code
        == 404
    )
    unknown = operator.post(
        f"/api/v2/stations/{station.identity}/unlock/", {"connector_id": 7}, format="json"
    )
    assert unknown.status_code == 404
    bad = operator.put(
        f"/api/v2/stations/{station.identity}/connectors/1/availability/",
        {"availability": "maybe"},
        format="json",
    )
    assert bad.status_code == 400 and "availability" in bad.json()["fields"]


def test_the_log_of_a_raw_call_keeps_no_secret(admin, station):
    payload = {"key": "AuthorizationKey", "value": "0123456789abcdef0123"}

    response = answered(
        admin,
        "post",
        f"/api/v2/stations/{station.identity}/ocpp/ChangeConfiguration/",
        payload,
        expect=["ChangeConfiguration", payload],  # the station gets the real key
        answer={"status": "Accepted"},
        identity=station.identity,
    )

    assert response.json() == {"status": "Accepted"}
    entry = DeviceLogEntry.objects.get(event="station_command")
    assert entry.data["payload"] == {"key": "AuthorizationKey", "value": "[redacted]"}
    assert "0123456789abcdef" not in str(entry.data)
