"""``cards``, ``inputs`` and ``device-log``: written through the services, every write logged."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.devicelog.models import DeviceLogEntry, EventCategory
from apps.devicelog.services import device_log_write
from apps.rfid.models import Card
from apps.zones.models import ExternalInput, InputKind
from tests.meters.factories import MeterFactory
from tests.rfid.factories import AuthGroupFactory, CardFactory
from tests.zones.factories import ExternalInputFactory

pytestmark = pytest.mark.django_db


# --- cards ---------------------------------------------------------------------------


def test_a_card_is_created_read_changed_and_deleted_each_write_logged(ebms):
    AuthGroupFactory(name="Staff")
    created = ebms.post(
        "/api/v2/cards/",
        {"id_tag": "04A1B2C3", "comment": "Fleet car 12", "groups": ["Staff"]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["id_tag"] == "04A1B2C3" and body["authorized"] is True and body["vip"] is False
    assert body["groups"] == ["Staff"] and body["last_seen_at"] is None

    assert ebms.get("/api/v2/cards/04a1b2c3/").json() == body  # id tags ignore case
    changed = ebms.patch("/api/v2/cards/04A1B2C3/", {"authorized": False}, format="json")
    assert changed.status_code == 200
    assert changed.json()["authorized"] is False and changed.json()["comment"] == "Fleet car 12"
    assert ebms.delete("/api/v2/cards/04A1B2C3/").status_code == 204
    assert ebms.get("/api/v2/cards/04A1B2C3/").status_code == 404

    events = list(DeviceLogEntry.objects.order_by("id").values_list("event", "username"))
    assert [e for e, _u in events] == ["card_created", "card_updated", "cards_deleted"]
    assert all(username for _e, username in events)


def test_bad_cards_are_400_with_every_field_and_change_nothing(admin):
    CardFactory(id_tag="TAKEN")

    duplicate = admin.post("/api/v2/cards/", {"id_tag": "taken"}, format="json")
    bad = admin.post(
        "/api/v2/cards/",
        {"id_tag": "has space", "vip": "maybe", "groups": ["Nobody"]},
        format="json",
    )

    assert duplicate.status_code == 400 and "id_tag" in duplicate.json()["fields"]
    assert bad.status_code == 400
    assert {"vip", "groups"} <= set(bad.json()["fields"])
    assert Card.objects.count() == 1


def test_cards_are_listed_by_id_tag_with_a_search(operator):
    CardFactory(id_tag="B1", comment="visitor")
    CardFactory(id_tag="A1", comment="fleet")

    listed = operator.get("/api/v2/cards/").json()
    found = operator.get("/api/v2/cards/?search=fleet").json()

    assert [c["id_tag"] for c in listed["results"]] == ["A1", "B1"]
    assert [c["id_tag"] for c in found["results"]] == ["A1"]


def test_an_operator_may_not_write_cards(operator):
    response = operator.post("/api/v2/cards/", {"id_tag": "X1"}, format="json")

    assert response.status_code == 403
    assert not Card.objects.exists()


# --- external inputs -------------------------------------------------------------------


def test_an_api_input_is_switched_and_logged(ebms):
    entry = ExternalInputFactory(number=1, name="Peak signal", percent=30, kind=InputKind.API)

    listed = ebms.get("/api/v2/inputs/").json()["results"]
    response = ebms.put(f"/api/v2/inputs/{entry.pk}/", {"active": True}, format="json")

    assert listed == [
        {
            "id": entry.pk,
            "number": 1,
            "name": "Peak signal",
            "enabled": True,
            "percent": 30,
            "source": "api",
            "active": False,
        }
    ]
    assert response.status_code == 200 and response.json()["active"] is True
    entry.refresh_from_db()
    assert entry.active is True
    log = DeviceLogEntry.objects.get(event="input_active")
    assert log.user is not None and log.user.role == "ebms"


def test_a_modbus_input_is_not_set_by_the_api(ebms):
    entry = ExternalInputFactory(
        kind=InputKind.DISCRETE_INPUT, device=MeterFactory(), address=3, percent=20
    )

    response = ebms.put(f"/api/v2/inputs/{entry.pk}/", {"active": True}, format="json")

    assert response.status_code == 409
    assert ExternalInput.objects.get(pk=entry.pk).active is False


def test_an_input_write_needs_a_boolean_and_a_writer(ebms, operator):
    entry = ExternalInputFactory()

    assert ebms.put(f"/api/v2/inputs/{entry.pk}/", {}, format="json").status_code == 400
    assert operator.put(f"/api/v2/inputs/{entry.pk}/", {"active": True}, "json").status_code == 403
    assert ebms.put("/api/v2/inputs/9999/", {"active": True}, format="json").status_code == 404


# --- device log ----------------------------------------------------------------------


def _entries():
    device_log_write(
        category=EventCategory.SECURITY, event="login_failed", message="Failed", user=None
    )
    device_log_write(
        category=EventCategory.COMMUNICATION,
        event="station_connected",
        message="Station CP1 connected.",
        station_identity="CP1",
    )
    device_log_write(
        category=EventCategory.LOAD_MANAGEMENT,
        event="reduction_set",
        message="Zone Garage reduced.",
        zone_name="Garage",
        data={"percent": "50"},
    )


def test_the_device_log_is_read_newest_first_with_filters(operator):
    _entries()

    def events(query: str = "") -> list[str]:
        response = operator.get(f"/api/v2/device-log/?{query}")
        assert response.status_code == 200, response.json()
        return [item["event"] for item in response.json()["results"]]

    assert events() == ["reduction_set", "station_connected", "login_failed"]
    assert events("category=security") == ["login_failed"]
    assert events("station=CP1") == ["station_connected"]
    assert events("zone=Garage") == ["reduction_set"]
    future = (timezone.now() + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    assert events(f"since={future}") == []
    item = operator.get("/api/v2/device-log/?zone=Garage").json()["results"][0]
    assert item["category"] == "load_management" and item["data"] == {"percent": "50"}
    assert item["level"] == "info" and item["remote_addr"] is None


def test_bad_device_log_filters_are_400(operator):
    response = operator.get("/api/v2/device-log/?category=gossip&since=never")

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"category", "since"}


def test_the_device_log_streams_as_csv(operator):
    _entries()

    response = operator.get("/api/v2/device-log/?format=csv&category=load_management")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["at", "category", "level", "event"]
    assert len(rows) == 2 and rows[1][3] == "reduction_set" and rows[1][-1] == '{"percent": "50"}'
