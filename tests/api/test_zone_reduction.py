"""``/api/v2/zones/{id}/reduction``: the limit a building management system writes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from apps.central_system import commands
from apps.devicelog.models import DeviceLogEntry
from apps.energy.control import rebalance_once
from apps.zones.models import EbmsReduction
from tests.energy.helpers import all_accepted, charging_station
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db


def _url(zone) -> str:
    return f"/api/v2/zones/{zone.pk}/reduction/"


def test_a_percentage_for_a_duration_is_set_read_back_and_audited(ebms):
    zone = ZoneFactory(max_current_a=Decimal("63"))
    before = timezone.now()
    payload = {
        "value": 60,
        "type": "percentage",
        "description": "peak",
        "validity_mode": "duration",
        "duration_s": 3600,
    }

    response = ebms.put(_url(zone), payload, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["value"] == 60.0 and body["type"] == "percentage"
    assert body["validity_mode"] == "duration" and body["duration_s"] == 3600
    valid_until = parse_datetime(body["valid_until"])
    assert before + timedelta(seconds=3600) <= valid_until <= timezone.now() + timedelta(hours=1)
    assert ebms.get(_url(zone)).json() == body
    assert ebms.get(f"/api/v2/zones/{zone.pk}/").json()["reduction"] == body
    entry = DeviceLogEntry.objects.get(event="reduction_set")
    assert entry.user is not None and entry.user.role == "ebms"
    assert entry.zone_name == zone.name and entry.data["percent"] == "60.0"


def test_a_new_reduction_replaces_the_previous_one(admin):
    zone = ZoneFactory(max_current_a=Decimal("63"))
    until = (timezone.now() + timedelta(hours=2)).isoformat()
    admin.put(_url(zone), {"value": 50, "type": "percentage", "validity_mode": "none"}, "json")

    response = admin.put(
        _url(zone),
        {"value": 32, "type": "current", "validity_mode": "absolute", "valid_until": until},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["type"] == "current" and response.json()["value"] == 32.0
    assert EbmsReduction.objects.in_force(timezone.now()).count() == 1


def test_until_deleted_has_no_end_and_delete_ends_it(ebms):
    zone = ZoneFactory()
    body = ebms.put(
        _url(zone), {"value": 40, "type": "percentage", "validity_mode": "none"}, format="json"
    ).json()
    assert body["valid_until"] is None and body["validity_mode"] == "none"

    assert ebms.delete(_url(zone)).status_code == 204

    response = ebms.get(_url(zone))
    assert response.status_code == 404 and response.json()["code"] == "no_reduction"
    assert DeviceLogEntry.objects.filter(event="reduction_cleared").count() == 1
    assert ebms.delete(_url(zone)).status_code == 204  # nothing left: still done


def test_a_reduction_lowers_the_setpoints_at_the_next_run(ebms, hot_state):
    zone = ZoneFactory(max_current_a=Decimal("20"))
    station, _tx = charging_station(zone)
    ebms.put(_url(zone), {"value": 50, "type": "percentage", "validity_mode": "none"}, "json")

    with mock.patch.object(commands, "call_many", all_accepted):
        rebalance_once()

    connector = ebms.get(f"/api/v2/stations/{station.identity}/connectors/1/").json()
    assert connector["setpoint_current_a"] == 10.0
    figures = ebms.get(f"/api/v2/zones/{zone.pk}/").json()
    assert figures["allocated_current_a"] == [10.0, 10.0, 10.0]
    assert [r["source"] for r in figures["active_reductions"]] == ["ebms"]


PAST = "2020-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"type": "percentage", "validity_mode": "none"}, "value"),
        ({"value": "abc", "type": "percentage", "validity_mode": "none"}, "value"),
        ({"value": -1, "type": "percentage", "validity_mode": "none"}, "value"),
        ({"value": 120, "type": "percentage", "validity_mode": "none"}, "value"),
        ({"value": 80, "type": "current", "validity_mode": "none"}, "value"),  # zone max 63 A
        ({"value": 50, "type": "watts", "validity_mode": "none"}, "type"),
        ({"value": 50, "type": "percentage", "validity_mode": "forever"}, "validity_mode"),
        ({"value": 50, "type": "percentage", "validity_mode": "absolute"}, "valid_until"),
        (
            {"value": 50, "type": "percentage", "validity_mode": "absolute", "valid_until": PAST},
            "valid_until",
        ),
        (
            {"value": 50, "type": "percentage", "validity_mode": "absolute", "valid_until": "x"},
            "valid_until",
        ),
        ({"value": 50, "type": "percentage", "validity_mode": "duration"}, "duration_s"),
        (
            {"value": 50, "type": "percentage", "validity_mode": "duration", "duration_s": 0},
            "duration_s",
        ),
        (
            {"value": 50, "type": "percentage", "validity_mode": "none", "duration_s": 60},
            "duration_s",
        ),
        (
            {"value": 50, "type": "percentage", "validity_mode": "none", "valid_until": PAST},
            "valid_until",
        ),
        (
            {"value": 50, "type": "percentage", "validity_mode": "none", "description": "x" * 201},
            "description",
        ),
    ],
)
def test_bad_payloads_are_400_with_the_field_and_change_nothing(ebms, payload, field):
    zone = ZoneFactory(max_current_a=Decimal("63"))

    response = ebms.put(_url(zone), payload, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and field in body["fields"], body
    assert not EbmsReduction.objects.exists()
    assert not DeviceLogEntry.objects.exists()


def test_a_body_that_is_not_json_is_400(ebms):
    zone = ZoneFactory()

    response = ebms.generic("PUT", _url(zone), "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert not EbmsReduction.objects.exists()


def test_an_operator_may_read_but_not_write_a_reduction(operator):
    zone = ZoneFactory()
    payload = {"value": 50, "type": "percentage", "validity_mode": "none"}

    assert operator.put(_url(zone), payload, format="json").status_code == 403
    assert operator.delete(_url(zone)).status_code == 403
    assert operator.get(_url(zone)).status_code == 404  # read allowed: there is none
    assert not EbmsReduction.objects.exists()


def test_without_credentials_a_write_is_401():
    zone = ZoneFactory()

    response = APIClient().put(_url(zone), {"value": 1, "type": "percentage"}, format="json")

    assert response.status_code == 401
    assert not EbmsReduction.objects.exists()


def test_an_unknown_zone_is_404(ebms):
    payload = {"value": 50, "type": "percentage", "validity_mode": "none"}

    assert ebms.put("/api/v2/zones/999/reduction/", payload, format="json").status_code == 404
