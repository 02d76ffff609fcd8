"""What the journal of a run writes to the device log about reductions."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from apps.devicelog.models import DeviceLogEntry
from apps.energy import journal

pytestmark = pytest.mark.django_db


def _run(previous_zones: dict, active: list[str]) -> None:
    """One run's journal for zone 1 (no sessions), with ``active`` reductions in force."""
    context = SimpleNamespace(
        refs={},
        zone_names={1: "Garage"},
        reductions={1: [SimpleNamespace(description=d) for d in active]},
    )
    allocation = SimpleNamespace(sessions=[], zones=[SimpleNamespace(zone_id=1, meter_lost=False)])
    journal.log_changes(context, allocation, {}, previous_zones)


def test_reductions_coming_into_force_and_ending_are_logged_once():
    before = {1: {"meter_lost": False, "reductions": [{"description": "TOU 17-20"}]}}
    _run(before, ["EBMS 50 %", "TOU 17-20"])
    _run(before, [])

    entries = list(
        DeviceLogEntry.objects.order_by("pk").values_list("event", "message", "zone_name")
    )
    assert entries == [
        ("reduction_applied", "Zone Garage: EBMS 50 % applies.", "Garage"),
        ("reduction_ended", "Zone Garage: TOU 17-20 no longer applies.", "Garage"),
    ]


def test_nothing_is_logged_about_reductions_on_a_first_run():
    _run({}, ["TOU 17-20"])

    assert not DeviceLogEntry.objects.filter(event__startswith="reduction_").exists()
