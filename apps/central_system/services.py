"""Central-system workflows: registration, station configuration, background commands."""

from __future__ import annotations

import logging
import uuid
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from kombu.exceptions import KombuError
from ocpp.v16.enums import Measurand, RegistrationStatus
from redis.exceptions import RedisError

from apps.central_system import commands, hotstate, signals
from apps.central_system.messages import StationChange, StationChangedMessage
from apps.central_system.models import CommandResult, CommandStatus
from apps.central_system.redaction import redact
from apps.devicelog.models import EventCategory, EventLevel
from apps.devicelog.services import device_log_write
from apps.siteconfig.models import SiteSettings
from apps.stations.models import Connector, MeterSample, Station, StationState

logger = logging.getLogger(__name__)

# What evce needs from every station's MeterValues (SPEC §2.1).
SAMPLED_MEASURANDS = ",".join(
    (
        Measurand.current_import,
        Measurand.power_active_import,
        Measurand.energy_active_import_register,
        Measurand.current_offered,
    )
)


def registration_status(station: Station) -> RegistrationStatus:
    """Installed → Accepted; refused → Rejected; discovered (waiting for an admin) → Pending."""
    if station.state == StationState.INSTALLED:
        return RegistrationStatus.accepted
    if station.state == StationState.REFUSED:
        return RegistrationStatus.rejected
    return RegistrationStatus.pending


def station_configuration_commands(
    station: Station, site: SiteSettings | None = None
) -> list[commands.Command]:
    """The configuration evce pushes to an accepted station after each boot."""
    site = site or SiteSettings.load()
    return [
        commands.change_configuration("HeartbeatInterval", str(site.heartbeat_interval_s)),
        commands.change_configuration(
            "MeterValueSampleInterval", str(site.meter_value_sample_interval_s)
        ),
        commands.change_configuration("MeterValuesSampledData", SAMPLED_MEASURANDS),
    ]


def station_state_changed(identity: str, change: StationChange) -> None:
    """Tell the connection of a station (wherever it is) that an admin changed its state.

    ``installed``: the station is asked to boot again, to be accepted now;
    ``refused`` / ``deleted``: its socket is closed.
    """
    try:
        message: StationChangedMessage = {"type": "ocpp.station.changed", "change": change}
        async_to_sync(get_channel_layer().group_send)(hotstate.station_group(identity), message)
    except Exception:  # the change is saved; the station learns it at its next boot anyway
        logger.warning("Could not notify the connection of %s", identity, exc_info=True)


def connection_event(identity: str, *, connected: bool, remote_addr: str | None, **data) -> None:
    """Log a station's connection or loss, and announce it (the load manager looks again).

    A disconnected station's offline current is reserved in its zones; a
    (re)connected one gets its fallback and live profiles again, as it may
    have lost them while away.
    """
    if connected:
        signals.station_connected.send(
            sender=Station,
            identity=identity,
            connector_ids=list(
                Connector.objects.filter(station__identity=identity).values_list(
                    "connector_id", flat=True
                )
            ),
        )
        installed = Station.objects.filter(identity=identity, state=StationState.INSTALLED)
        for station_id in installed.values_list("pk", flat=True):
            station_authentication_check(station_id, booted=False)
    else:
        signals.station_disconnected.send(sender=Station, identity=identity)
    device_log_write(
        category=EventCategory.COMMUNICATION,
        event="station_connected" if connected else "station_disconnected",
        message=(
            _("Station %(identity)s connected.")
            if connected
            else _("Station %(identity)s disconnected.")
        )
        % {"identity": identity},
        station_identity=identity,
        remote_addr=remote_addr,
        data=data,
    )


def station_authentication_check(station_id: int, *, booted: bool) -> None:
    """Have the station's authentication configuration and local list checked.

    At boot and at each connection: the station may have been reset, or
    missed card changes while it was away.
    """
    from apps.central_system import station_sync  # station_sync imports this module

    reason = station_sync.BOOT if booted else station_sync.CONNECTED
    transaction.on_commit(partial(station_sync.station_sync_request, [station_id], reason=reason))


def car_plugged_in(station_id: int, connector_id: int) -> None:
    """A connector went to Preparing: with the reader disabled, evce starts the session."""
    from apps.central_system import station_sync  # station_sync imports this module
    from apps.central_system.tasks import plug_in_start_task  # tasks imports this module

    station = Station.objects.select_related("auth_group").filter(pk=station_id).first()
    if station is not None and station_sync.plug_in_start_needed(station, connector_id):
        transaction.on_commit(
            partial(_queue_plug_in_start, plug_in_start_task, station.identity, connector_id)
        )


def _queue_plug_in_start(task, identity: str, connector_id: int) -> None:
    try:
        task.delay(identity, connector_id)
    except (KombuError, RedisError, OSError) as exc:  # the driver can still badge or retry
        logger.warning("Plug-in start of %s/%d not queued: %s", identity, connector_id, exc)


def command_failed_event(identity: str, action: str, outcome: str, detail: dict) -> None:
    """A command evce sent on its own (configuration after boot) was not applied."""
    if isinstance(detail.get("payload"), dict):
        detail = {**detail, "payload": redact(action, detail["payload"])}
    device_log_write(
        category=EventCategory.COMMUNICATION,
        level=EventLevel.WARNING,
        event="station_command_failed",
        message=_("%(action)s not applied by station %(identity)s: %(outcome)s.")
        % {"action": action, "identity": identity, "outcome": outcome},
        station_identity=identity,
        data=detail,
    )


def command_request(
    *,
    identity: str,
    action: str,
    payload: dict[str, Any],
    user=None,
    timeout_s: float = commands.DEFAULT_TIMEOUT_S,
) -> CommandResult:
    """Queue a command for a worker; its outcome lands on the returned row (secrets redacted)."""
    result = CommandResult.objects.create(
        station_identity=identity,
        action=action,
        payload=redact(action, payload),
        requested_by=user,
    )
    transaction.on_commit(
        partial(_queue_command, identity, action, payload, str(result.request_id), timeout_s)
    )
    return result


def _queue_command(
    identity: str, action: str, payload: dict[str, Any], request_id: str, timeout_s: float
) -> None:
    from apps.central_system.tasks import station_command_task

    station_command_task.delay(
        identity, action, payload, request_id=request_id, timeout_s=timeout_s
    )


def command_execute(
    *,
    identity: str,
    action: str,
    payload: dict[str, Any],
    request_id: str | uuid.UUID | None = None,
    timeout_s: float = commands.DEFAULT_TIMEOUT_S,
    user=None,
) -> CommandResult:
    """Send a command now, wait for the answer, and keep the outcome on a ``CommandResult``.

    The row is claimed (``pending`` → ``sending``) by a conditional update
    before anything is sent, so a task the broker delivers twice — a worker
    lost before acknowledging it, a visibility timeout — sends the command
    once: the second delivery finds the row claimed and returns it unchanged.
    A worker that dies while sending leaves the row ``sending``; nobody sends
    it again, because a station command (a reset, a remote start) must never
    run twice by accident. Secrets (an AuthorizationKey) are kept redacted.
    """
    result, _created = CommandResult.objects.get_or_create(
        request_id=request_id or uuid.uuid4(),
        defaults={
            "station_identity": identity,
            "action": action,
            "payload": redact(action, payload),
            "requested_by": user,
        },
    )
    claimed = CommandResult.objects.filter(pk=result.pk, status=CommandStatus.PENDING).update(
        status=CommandStatus.SENDING
    )
    if claimed != 1:
        result.refresh_from_db()
        logger.info(
            "%s to %s (request %s) already %s: not sent again",
            action,
            identity,
            result.request_id,
            result.status,
        )
        return result
    result.status = CommandStatus.SENDING
    result.response, result.error_code, result.error_description = {}, "", ""
    try:
        result.response = redact(
            action, commands.call_sync(identity, action, payload, timeout_s=timeout_s)
        )
        result.status = CommandStatus.ANSWERED
    except commands.InvalidCommand as exc:
        result.status, result.error_description = CommandStatus.INVALID, str(exc)[:255]
    except commands.StationOffline as exc:
        result.status, result.error_description = CommandStatus.OFFLINE, str(exc)[:255]
    except commands.CallTimeout as exc:
        result.status, result.error_description = CommandStatus.TIMEOUT, str(exc)[:255]
    except commands.CallError as exc:
        result.status = CommandStatus.CALL_ERROR
        result.error_code, result.error_description = exc.code[:40], exc.description[:255]
    result.finished_at = timezone.now()
    result.save()
    return result


def last_sample_id() -> int:
    """The newest stored meter sample (samples are numbered as they are stored)."""
    return MeterSample.objects.aggregate(last=Max("pk"))["last"] or 0


def station_command_send(
    *,
    identity: str,
    command: commands.Command,
    user,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Send a command a person (or a building management system) asked for; wait for the answer.

    Returns the station's CALLRESULT payload as it sent it and raises the
    ``commands.CommandError`` of a failure. Every attempt is in the device
    log with its outcome, who asked, and the payload (secrets redacted): a remote action on a
    station is a write, whatever came of it. An invalid command is refused
    before anything is sent and is not logged (nothing happened).
    """
    timeout_s = settings.STATION_COMMAND_TIMEOUT_S if timeout_s is None else timeout_s
    payload = commands.checked_payload(command.action, command.payload)
    # The log keeps no secret (a station's AuthorizationKey, a private key).
    data: dict[str, Any] = {"action": command.action, "payload": redact(command.action, payload)}
    try:
        answer = commands.call_sync(identity, command.action, payload, timeout_s=timeout_s)
    except commands.InvalidCommand:
        raise
    except commands.CommandError as exc:
        data["outcome"] = _failure_outcome(exc)
        if isinstance(exc, commands.CallError):
            data["error_code"], data["error_description"] = exc.code, exc.description
        _command_log(identity, command.action, data, user, failed=True)
        raise
    data["outcome"], data["response"] = "answered", redact(command.action, answer)
    _command_log(identity, command.action, data, user, failed=False)
    return answer


def _failure_outcome(exc: commands.CommandError) -> str:
    if isinstance(exc, commands.StationOffline):
        return CommandStatus.OFFLINE
    if isinstance(exc, commands.CallTimeout):
        return CommandStatus.TIMEOUT
    if isinstance(exc, commands.CallError):
        return CommandStatus.CALL_ERROR
    return "failed"


def _command_log(identity: str, action: str, data: dict, user, *, failed: bool) -> None:
    status = data.get("response", {}).get("status") if not failed else None
    if failed:
        message = _("%(action)s sent to station %(identity)s: %(outcome)s.") % {
            "action": action,
            "identity": identity,
            "outcome": data["outcome"],
        }
    elif status:
        message = _("%(action)s sent to station %(identity)s: %(status)s.") % {
            "action": action,
            "identity": identity,
            "status": status,
        }
    else:
        message = _("%(action)s sent to station %(identity)s: answered.") % {
            "action": action,
            "identity": identity,
        }
    device_log_write(
        category=EventCategory.COMMUNICATION,
        level=EventLevel.WARNING if failed else EventLevel.INFO,
        event="station_command",
        message=message,
        station_identity=identity,
        user=user,
        data=data,
    )
