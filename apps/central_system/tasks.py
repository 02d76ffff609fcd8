from __future__ import annotations

from typing import Any

from celery import shared_task

from apps.central_system import reservations, services, station_security, station_sync
from apps.central_system.commands import DEFAULT_TIMEOUT_S


@shared_task(ignore_result=True)
def station_command_task(
    identity: str,
    action: str,
    payload: dict[str, Any],
    request_id: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> str:
    """Send one command to a station from a worker; the outcome is kept as a CommandResult.

    Safe to deliver twice: the command row is claimed before sending (see
    ``command_execute``), so a redelivery sends nothing.
    """
    result = services.command_execute(
        identity=identity,
        action=action,
        payload=payload,
        request_id=request_id,
        timeout_s=timeout_s,
    )
    return result.status


@shared_task(ignore_result=True)
def station_auth_sync_task() -> int:
    """Bring the stations' authentication configuration and local lists up to date."""
    return station_sync.station_sync_run()


@shared_task(ignore_result=True)
def plug_in_start_task(identity: str, connector_id: int) -> str:
    """Reader disabled: start the session of a car just plugged in."""
    return station_sync.plug_in_start(identity, connector_id)


@shared_task(ignore_result=True)
def station_keys_rotate_task() -> int:
    """Give a new AuthorizationKey to the connected stations whose key is old enough."""
    return len(station_security.station_keys_rotate_due())


@shared_task(ignore_result=True)
def reservations_expire_task() -> int:
    """Close the reservations past their expiry time."""
    return reservations.reservations_expire()
