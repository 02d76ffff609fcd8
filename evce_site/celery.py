"""The Celery application and the one place where periodic tasks are declared.

Each periodic task has an ``expires`` shorter than its period, so a tick that
could not run in time is dropped instead of piling up behind the next one.
The periods are settings (``EVCE_REBALANCE_PERIOD_S``, ``EVCE_METER_TICK_MS``,
``EVCE_RETENTION_PERIOD_S``, ``EVCE_RESERVATION_CHECK_PERIOD_S``), read and
checked in ``evce_site.settings``; station keys are rotated only when
``EVCE_STATION_KEY_ROTATION_DAYS`` is set.
"""

from __future__ import annotations

import os

from celery import Celery
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evce_site.settings")

# Stations due for a new key are looked for hourly (EVCE_STATION_KEY_ROTATION_DAYS).
KEY_ROTATION_CHECK_S = 3600.0
# The device log is cut back to EVCE_DEVICE_LOG_MAX_ENTRIES this often: often
# enough that a flood of events overshoots the cap by a minute of events only.
DEVICE_LOG_TRIM_S = 60.0

app = Celery("evce")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def beat_schedule() -> dict[str, dict]:
    """Every periodic task of evce, with its period and expiry."""
    retention_s = settings.RETENTION_PERIOD_S
    rebalance_s = settings.REBALANCE_PERIOD_S
    meter_tick_s = settings.METER_TICK_MS / 1000
    reservation_s = settings.RESERVATION_CHECK_PERIOD_S
    schedule = {
        "poll-meters": {
            "task": "apps.meters.tasks.poll_meters_task",
            "schedule": meter_tick_s,
            "options": {"expires": meter_tick_s},
        },
        "rebalance-tick": {
            "task": "apps.energy.tasks.rebalance_tick_task",
            "schedule": rebalance_s,
            "options": {"expires": rebalance_s * 0.9},
        },
        "purge-expired-records": {
            "task": "apps.maintenance.tasks.purge_expired_records_task",
            "schedule": retention_s,
            "options": {"expires": retention_s * 0.9},
        },
        "trim-device-log": {
            "task": "apps.devicelog.tasks.device_log_trim_task",
            "schedule": DEVICE_LOG_TRIM_S,
            "options": {"expires": DEVICE_LOG_TRIM_S * 0.9},
        },
        "expire-reservations": {
            "task": "apps.central_system.tasks.reservations_expire_task",
            "schedule": reservation_s,
            "options": {"expires": reservation_s * 0.9},
        },
    }
    if settings.STATION_KEY_ROTATION_DAYS:
        schedule["rotate-station-keys"] = {
            "task": "apps.central_system.tasks.station_keys_rotate_task",
            "schedule": KEY_ROTATION_CHECK_S,
            "options": {"expires": KEY_ROTATION_CHECK_S * 0.9},
        }
    return schedule


@app.on_after_configure.connect
def _install_beat_schedule(sender: Celery, source, **kwargs) -> None:
    # Built once the configuration is read, not when this module is imported:
    # the package imports this module before Django has loaded its settings.
    source.beat_schedule = beat_schedule()
