"""The device log's cap: the oldest entries go first, whatever the flood."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.devicelog.models import DeviceLogEntry, EventCategory
from apps.devicelog.services import device_log_trim, device_log_write
from apps.devicelog.tasks import device_log_trim_task

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)


def _flood(count: int) -> list[int]:
    entries = DeviceLogEntry.objects.bulk_create(
        DeviceLogEntry(
            at=T0 + timedelta(milliseconds=n),
            category=EventCategory.COMMUNICATION,
            event="station_disconnected",
            message=f"entry {n}",
        )
        for n in range(count)
    )
    assert len(entries) == count
    return sorted(DeviceLogEntry.objects.values_list("id", flat=True))


def test_trim_keeps_the_newest_entries_and_deletes_the_oldest_first():
    ids = _flood(250)
    assert device_log_trim(max_entries=100, batch_size=40) == 150
    assert sorted(DeviceLogEntry.objects.values_list("id", flat=True)) == ids[-100:]


def test_trim_below_the_cap_deletes_nothing():
    ids = _flood(30)
    assert device_log_trim(max_entries=30) == 0
    assert device_log_trim(max_entries=1000) == 0
    assert sorted(DeviceLogEntry.objects.values_list("id", flat=True)) == ids


def test_the_periodic_task_holds_the_configured_cap_under_a_flood(settings):
    settings.DEVICE_LOG_MAX_ENTRIES = 1000
    for _round in range(3):
        _flood(1500)
        device_log_trim_task()
        assert DeviceLogEntry.objects.count() == 1000
    entry = device_log_write(category=EventCategory.SECURITY, event="login_failed", message="x")
    assert device_log_trim_task() == 1
    assert DeviceLogEntry.objects.filter(pk=entry.pk).exists()  # the newest stays


def test_a_negative_cap_is_refused():
    with pytest.raises(ValueError):
        device_log_trim(max_entries=-1)
