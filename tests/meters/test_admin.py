"""The meter pages show what the poller last got, through the meter-state selector."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.meters.state import MeterStatus, meters_hot_state_set
from tests.admin_pages import change_page
from tests.meters.factories import MeterFactory

pytestmark = pytest.mark.django_db


def test_a_failing_meter_shows_its_failures_and_whether_its_values_still_count(
    admin_client, hot_state
):
    meter = MeterFactory(name="main")
    read_at = timezone.now() - timedelta(seconds=2)
    record = {
        "status": MeterStatus.ERROR,
        "failures": 2,
        "values": {"current_l1_a": 31.5, "current_l2_a": 20.0, "current_l3_a": 12.25},
        "read_at": read_at.isoformat(),
        "usable_until": (read_at + timedelta(seconds=60)).isoformat(),
        "error": "no answer from unit 1",
    }
    meters_hot_state_set({meter.pk: record})
    page = change_page(admin_client, meter)
    assert "error, 2 failed polls, values 2." in page
    assert "(31.5 A / 20.0 A / 12.2 A) — usable — no answer from unit 1" in page

    meters_hot_state_set({meter.pk: {**record, "status": MeterStatus.LOST, "failures": 3}})
    listing = admin_client.get(reverse("admin:meters_meter_changelist")).content.decode()
    assert "lost, 3 failed polls" in listing and "not usable" in listing


def test_a_meter_never_read_says_so(admin_client, hot_state):
    meter = MeterFactory()
    page = change_page(admin_client, meter)
    assert "not_connected — not usable" in page
