from __future__ import annotations

from celery import shared_task

from apps.rfid import station_sync


@shared_task(ignore_result=True)
def station_auth_sync_task() -> int:
    """Bring the stations' authentication configuration and local lists up to date."""
    return station_sync.station_sync_run()


@shared_task(ignore_result=True)
def plug_in_start_task(identity: str, connector_id: int) -> str:
    """Reader disabled: start the session of a car just plugged in."""
    return station_sync.plug_in_start(identity, connector_id)
