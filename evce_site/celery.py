"""The Celery application and the one place where periodic tasks are declared.

Each periodic task has an ``expires`` shorter than its period, so a tick that
could not run in time is dropped instead of piling up behind the next one.
Periods can be overridden from the environment (values in seconds).
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evce_site.settings")

app = Celery("evce")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _period_s(name: str, default_s: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default_s
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number of seconds.") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive.")
    return value


def beat_schedule() -> dict[str, dict]:
    """Every periodic task of evce, with its period and expiry."""
    retention_s = _period_s("EVCE_RETENTION_PERIOD_S", 3600.0)
    rebalance_s = _period_s("EVCE_REBALANCE_PERIOD_S", 30.0)
    meter_tick_s = int(os.environ.get("EVCE_METER_TICK_MS", "250")) / 1000
    return {
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
    }


app.conf.beat_schedule = beat_schedule()
