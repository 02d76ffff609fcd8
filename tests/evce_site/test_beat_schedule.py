"""The beat schedule: each task expires before its next tick; optional ones only when set."""

from __future__ import annotations

from evce_site.celery import beat_schedule


def test_every_periodic_task_expires_before_its_next_tick(settings):
    settings.STATION_KEY_ROTATION_DAYS = 30
    schedule = beat_schedule()
    assert {"expire-reservations", "rotate-station-keys", "trim-device-log"} <= set(schedule)
    for name, entry in schedule.items():
        assert entry["options"]["expires"] <= entry["schedule"], name


def test_station_keys_are_rotated_only_when_asked(settings):
    settings.STATION_KEY_ROTATION_DAYS = 0
    assert "rotate-station-keys" not in beat_schedule()
    settings.RESERVATION_CHECK_PERIOD_S = 5.0
    assert beat_schedule()["expire-reservations"]["schedule"] == 5.0
