"""The global, zone and station views: what they show, and how they answer bad input."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.central_system.models import CommandResult, CommandStatus
from apps.energy import state
from apps.meters.models import MeterModel, MeterRecord
from apps.rfid.models import Card
from apps.stations.models import Transaction
from tests.accounts.factories import UserFactory
from tests.stations.factories import (
    ConnectorFactory,
    OcppMessageFactory,
    StationFactory,
    TransactionFactory,
)
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    client.force_login(UserFactory(role="operator"))
    return client


@pytest.fixture
def site(hot_state):
    """A main zone with a sub-zone holding a station with a session limited on L2."""
    main = ZoneFactory(name="Main switchboard", max_current_a=100)
    garage = ZoneFactory(name="Garage", parent=main, max_current_a=63)
    other = ZoneFactory(name="Other building", max_current_a=40)
    station = StationFactory(identity="BAY-1", name="Bay one", zone=garage)
    ConnectorFactory(station=station, connector_id=1, status="Charging")
    ConnectorFactory(station=station, connector_id=2, status="Available")
    elsewhere = StationFactory(identity="FAR-1", name="Far away", zone=other)
    ConnectorFactory(station=elsewhere, connector_id=1)
    session = TransactionFactory(station=station, connector_id=1, id_tag="CARD-A", energy_wh=4250)
    state.redis_client().hset(
        state.SESSIONS,
        "BAY-1/1",
        json.dumps(
            {
                "transaction_id": session.pk,
                "station_id": station.pk,
                "setpoint_a": 12.5,
                "reason": "zone_limit",
                "limiting_zone_id": main.pk,
                "limiting_phase": 2,
                "phases": [1, 2, 3],
            }
        ),
    )
    state.redis_client().hset(
        state.ZONES,
        str(garage.pk),
        json.dumps(
            {
                "limit_a": 63.0,
                "allocated_a": [12.5, 12.5, 12.5],
                "reserved_a": [6.0, 0.0, 0.0],
                "available_a": [44.5, 50.5, 50.5],
                "grid_available_a": [63.0, 63.0, 63.0],
                "session_count": 1,
                "charging_count": 1,
            }
        ),
    )
    return {"main": main, "garage": garage, "station": station, "session": session}


def _text(response) -> str:
    return response.content.decode()


# --- global view ------------------------------------------------------------------------


def test_the_global_view_shows_sessions_with_their_reason_and_the_fleet(operator, site):
    body = _text(operator.get("/"))
    row = body[body.index(f'data-session="{site["session"].pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Bay one" in row and "CARD-A" in row and "4.25" in row
    assert "12.5" in row and "limited by Main switchboard L2" in row
    # Both stations are installed and offline (no connection here): the chart says so.
    assert 'data-count-status="Offline">2<' in body
    assert 'data-station="BAY-1"' in body and 'data-station="FAR-1"' in body


def test_the_global_view_is_for_ui_users_only(client, site):
    assert client.get("/").status_code == 302
    client.force_login(UserFactory(role="ebms"))
    assert client.get("/").status_code == 403


# --- zone view --------------------------------------------------------------------------


def test_a_zone_view_is_restricted_to_its_subtree(operator, site):
    body = _text(operator.get(f"/zones/{site['main'].pk}/"))
    assert 'data-station="BAY-1"' in body and 'data-station="FAR-1"' not in body
    assert f'data-session="{site["session"].pk}"' in body
    assert "Other building" not in body
    garage = _text(operator.get(f"/zones/{site['garage'].pk}/"))
    assert 'data-phase="L1"' in garage and "Repartition per phase" in garage
    assert "Main switchboard" in garage  # in the breadcrumbs


def test_a_dynamic_zone_charts_its_meter_against_the_limit(operator, site):
    from apps.meters.services import builtin_models_sync

    builtin_models_sync()
    meter = site["garage"].meter = MeterModel.objects.get(name="pm5320").meters.create(
        name="garage meter", host="192.0.2.10"
    )
    site["garage"].save()
    now = timezone.now()
    MeterRecord.objects.bulk_create(
        [
            MeterRecord(
                meter=meter,
                at=now - timedelta(seconds=10 * n),
                current_l1_a=20.0 + n,
                current_l2_a=18.0,
                current_l3_a=None if n == 3 else 15.0,
            )
            for n in range(30)
        ]
        + [MeterRecord(meter=meter, at=now - timedelta(hours=1), current_l1_a=99.0)]
    )
    body = _text(operator.get(f"/zones/{site['garage'].pk}/"))
    assert 'data-points="30"' in body  # the last 15 minutes only
    for phase, points in (("L1", 30), ("L2", 30), ("L3", 29)):
        line = body[body.index(f'data-phase="{phase}" points="') :]
        line = line[: line.index('">')]
        assert line.count(",") == points
    assert 'class="limit"' in body


def test_an_unknown_zone_is_404(operator, site):
    assert operator.get("/zones/99999/").status_code == 404


# --- station view -----------------------------------------------------------------------


def test_the_station_view_shows_connectors_setpoints_and_reasons(operator, site):
    body = _text(operator.get("/stations/bay-1/"))  # box identities ignore case
    assert "BAY-1" in body and "Bay one" in body
    connector = body[body.index('data-connector="1"') :]
    connector = connector[: connector.index("</tr>")]
    assert "Charging" in connector and "12.5" in connector
    assert "limited by Main switchboard L2" in connector
    assert operator.get("/stations/NOPE/").status_code == 404


@pytest.fixture
def log(site):
    start = timezone.now() - timedelta(hours=2)
    rows = [
        OcppMessageFactory(
            station_identity="BAY-1",
            at=start + timedelta(seconds=n),
            action="MeterValues" if n % 2 else "Heartbeat",
            direction="in" if n % 3 else "out",
            payload={"n": n},
        )
        for n in range(120)
    ]
    OcppMessageFactory(station_identity="FAR-1", action="Heartbeat")
    return rows


def _log_ns(body: str) -> list[int]:
    return [
        json.loads(chunk.split("</code>")[0].replace("&#x27;", '"').replace("&quot;", '"'))["n"]
        for chunk in body.split('<code class="payload">')[1:]
    ]


def test_the_ocpp_log_pages_by_keyset_without_gaps_or_repeats(operator, log):
    first = _text(operator.get("/stations/BAY-1/"))
    assert _log_ns(first) == list(range(119, 69, -1))
    seen = _log_ns(first)
    body = first
    while 'rel="next"' in body:
        link = body[: body.index('" rel="next"')]
        query = link[link.rindex('<a href="') + len('<a href="') :].replace("&amp;", "&")
        body = _text(operator.get("/stations/BAY-1/" + query))
        seen += _log_ns(body)
    assert seen == list(range(119, -1, -1))


def test_the_ocpp_log_filters_by_action_direction_and_time(operator, log):
    since = timezone.localtime(log[100].at).strftime("%Y-%m-%dT%H:%M:%S")
    body = _text(
        operator.get(
            "/stations/BAY-1/", {"action": "MeterValues", "direction": "in", "since": since}
        )
    )
    expected = [n for n in range(119, 99, -1) if n % 2 and n % 3]
    assert _log_ns(body) == expected


@pytest.mark.parametrize(
    "query, message",
    [
        ({"since": "yesterday"}, "Enter a valid date/time."),
        ({"action": "Nonsense"}, "Select a valid choice."),
        ({"after": "garbage"}, "This page link is not valid any more"),
        (
            {"since": "2026-01-02T00:00", "until": "2026-01-01T00:00"},
            "The end must come after the start.",
        ),
    ],
)
def test_bad_log_filters_get_a_message_not_an_error(operator, log, query, message):
    response = operator.get("/stations/BAY-1/", query)
    assert response.status_code == 200 and message in _text(response)
    csv_response = operator.get("/stations/BAY-1/log.csv", query)
    assert csv_response.status_code == 400 and message in _text(csv_response)


def test_the_log_downloads_as_csv_with_the_filters(operator, log):
    response = operator.get("/stations/BAY-1/log.csv", {"action": "Heartbeat"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response).decode())))
    assert rows[0] == ["time_utc", "direction", "message_type", "message_id", "action", "payload"]
    assert [json.loads(row[5])["n"] for row in rows[1:]] == list(range(118, -1, -2))


# --- remote actions ---------------------------------------------------------------------


def _act(client, identity="BAY-1", **data):
    return client.post(f"/stations/{identity}/actions/", data)


def test_a_reset_asks_for_confirmation_then_goes_through_the_command_service(operator, site):
    asked = _act(operator, action="soft_reset")
    assert asked.status_code == 200 and "Restart the station?" in _text(asked)
    assert not CommandResult.objects.exists()
    done = _act(operator, action="soft_reset", confirmed="1")
    assert done.status_code == 302 and done.url.endswith("/stations/BAY-1/#commands")
    command = CommandResult.objects.get()
    assert (command.station_identity, command.action, command.payload) == (
        "BAY-1",
        "Reset",
        {"type": "Soft"},
    )
    assert command.status == CommandStatus.PENDING
    page = _text(operator.get("/stations/BAY-1/"))
    assert "sent to the station" in page and "waiting for the station" in page


def test_a_remote_start_with_a_card_needs_no_confirmation(operator, site):
    Card.objects.create(id_tag="CARD-B")
    assert _act(operator, action="start", connector_id="2", id_tag="card-b").status_code == 302
    command = CommandResult.objects.get()
    assert command.action == "RemoteStartTransaction"
    assert command.payload == {"idTag": "CARD-B", "connectorId": 2}


def test_a_remote_stop_names_the_ongoing_session(operator, site):
    _act(operator, action="stop", connector_id="1", confirmed="1")
    assert CommandResult.objects.get().payload == {"transactionId": site["session"].pk}


def test_a_force_stop_closes_the_session_without_the_station(operator, site):
    assert _act(operator, action="force_stop", connector_id="1").status_code == 200  # asks
    response = _act(operator, action="force_stop", connector_id="1", confirmed="1")
    assert response.status_code == 302
    session = Transaction.objects.get(pk=site["session"].pk)
    assert session.stopped_at is not None and session.forced_stop
    assert not CommandResult.objects.exists()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"action": "start", "connector_id": "1"}, "Choose the card to charge with."),
        ({"action": "start", "connector_id": "1", "id_tag": "NOBODY"}, "No card has this id tag."),
        ({"action": "stop", "connector_id": "2"}, "No session is ongoing on this connector."),
        ({"action": "unlock", "connector_id": "7"}, "This station has no such connector."),
        ({"action": "unlock", "connector_id": "x"}, "Enter a whole number."),
        ({"action": "availability", "connector_id": "0"}, "Choose operative or inoperative."),
        ({"action": "diagnostics", "location": "not a url"}, "Enter a valid URL."),
        ({"action": "explode"}, "Select a valid choice."),
    ],
)
def test_bad_remote_actions_get_a_message_and_send_nothing(operator, site, data, message):
    response = _act(operator, **data, confirmed="1")
    assert response.status_code == 400 and message in _text(response)
    assert not CommandResult.objects.exists()


def test_remote_actions_are_for_ui_users_only(client, site):
    assert _act(client, action="soft_reset", confirmed="1").status_code == 302  # to log in
    client.force_login(UserFactory(role="ebms"))
    assert _act(client, action="soft_reset", confirmed="1").status_code == 403
    assert not CommandResult.objects.exists()


def test_the_station_shows_each_answer_in_words(operator, site):
    for status, response in [
        (CommandStatus.ANSWERED, {"status": "Accepted"}),
        (CommandStatus.ANSWERED, {"status": "Rejected"}),
        (CommandStatus.OFFLINE, {}),
        (CommandStatus.TIMEOUT, {}),
    ]:
        CommandResult.objects.create(
            station_identity="BAY-1", action="Reset", status=status, response=response
        )
    body = _text(operator.get("/stations/BAY-1/"))
    for words in (
        "accepted (Accepted)",
        "rejected (Rejected)",
        "offline: the station is not connected",
        "timeout: no answer in time",
    ):
        assert words in body


@pytest.mark.parametrize("identity", ["CP-1", "A*B|C@D=E+F", "b.ay_1"])
def test_station_links_are_what_reverse_gives(identity):
    from django.urls import reverse

    from apps.dashboard.selectors import station_url

    assert station_url(identity) == reverse("dashboard:station", args=[identity])


def test_a_session_can_be_stopped_from_the_global_view(operator, site):
    body = _text(operator.get("/"))
    row = body[body.index(f'data-session="{site["session"].pk}"') :]
    row = row[: row.index("</tr>")]
    assert 'action="/stations/BAY-1/actions/"' in row and 'value="stop"' in row
    asked = _act(operator, action="stop", connector_id="1")
    assert "Stop the charge on connector 1?" in _text(asked)
