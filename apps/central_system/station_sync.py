"""Keeping each station's authentication set-up in line with its group.

A station decides on cards by itself when it cannot wait for evce (local
pre-authorisation) or cannot reach it (offline). What it then does follows its
OCPP configuration and its local authorisation list, so evce:

- translates the group's online mode and offline strategy into configuration
  keys (:func:`group_configuration`) and sends the ones that differ from what
  the station last accepted — all of them after a boot or a group change;
- keeps the station's local list equal to the group's (:func:`group_local_list`):
  a full ``SendLocalList`` first (or when the station's version is not the one
  evce gave it: checked with ``GetLocalListVersion`` at boot and reconnection),
  then differential updates with only the changed entries;
- starts a session on plug-in for *reader disabled* groups, by free vend where
  the station has it, otherwise with ``RemoteStartTransaction``.

Requests coalesce per station (a Redis set of reasons, one queued task) and a
station is synchronised by one worker at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django import db
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from kombu.exceptions import KombuError
from ocpp.v16.enums import (
    AuthorizationStatus,
    ConfigurationStatus,
    RemoteStartStopStatus,
    UpdateStatus,
    UpdateType,
)
from redis.exceptions import RedisError

from apps.central_system import command_loop, commands
from apps.central_system.protocol import format_datetime
from apps.central_system.services import command_failed_event
from apps.devicelog.models import EventCategory, EventLevel
from apps.devicelog.services import device_log_write
from apps.rfid.models import AuthGroup, Card, OfflineStrategy, OnlineMode, StationAuthState
from apps.stations.models import Station, StationState, Transaction
from apps.stations.selectors import station_is_online
from evce_site.hotstate import key, redis_client

logger = logging.getLogger(__name__)

# Why a station is looked at again. Boot and connection check the list version;
# boot and group changes send every configuration key again.
BOOT, CONNECTED, GROUP, CARDS = "boot", "connected", "group", "cards"
CHECK_VERSION_REASONS = frozenset({BOOT, CONNECTED})
FULL_CONFIGURATION_REASONS = frozenset({BOOT, GROUP})

PLUG_IN_ID_TAG = "EVCE-PLUG-IN"
FREE_VEND_ACTIVE, FREE_VEND_ID_TAG = "FreeVendActive", "FreeVendIdTag"
DEFAULT_UPDATE_MAX_LENGTH = 100
COMMAND_TIMEOUT_S = 20.0
LOCK_TIMEOUT_S = 300
QUEUED_TTL_S = 120
MAX_PASSES = 10
OPEN_MODES = (OnlineMode.ALL_CARDS, OnlineMode.READER_DISABLED)


PENDING_STATIONS = key("rfid", "sync", "stations")
QUEUED = key("rfid", "sync", "queued")
LOCK = key("rfid", "sync", "lock")
SYNC_THREADS = 8


def _reasons_key(station_id: int) -> str:
    return key("rfid", "sync", "reasons", str(station_id))


# --- what a station should hold -------------------------------------------------------


def _true(flag: bool) -> str:
    return "true" if flag else "false"


def group_configuration(group: AuthGroup | None, free_vend_prefix: str = "") -> dict[str, str]:
    """The OCPP configuration keys that make a station behave as its group says.

    Online, a station asks evce about every card it does not find in its local
    list (pre-authorisation from the list evce keeps in sync). Offline:
    *authorize all* lets any card start; *use cache* lets the cards of the list
    and those already accepted there start; *reject all* lets nobody start.
    With the reader disabled evce's own remote starts are not authorised
    again, and free vend, when the station has it, starts on plug-in.
    """
    online = group.online_mode if group else OnlineMode.KNOWN_CARDS
    offline = group.offline_strategy if group else OfflineStrategy.USE_CACHE
    reader_disabled = online == OnlineMode.READER_DISABLED
    config = {
        "LocalAuthListEnabled": "true",
        "LocalPreAuthorize": "true",
        "AuthorizeRemoteTxRequests": _true(not reader_disabled),
        "LocalAuthorizeOffline": _true(offline != OfflineStrategy.REJECT_ALL),
        "AuthorizationCacheEnabled": _true(offline != OfflineStrategy.REJECT_ALL),
        "AllowOfflineTxForUnknownId": _true(offline == OfflineStrategy.AUTHORIZE_ALL),
    }
    if free_vend_prefix:
        config[free_vend_prefix + FREE_VEND_ACTIVE] = _true(reader_disabled)
        if reader_disabled:
            config[free_vend_prefix + FREE_VEND_ID_TAG] = plug_in_id_tag(group)
    return config


def plug_in_id_tag(group: AuthGroup | None) -> str:
    return (group.plug_and_charge_id_tag if group else "") or PLUG_IN_ID_TAG


def group_local_list(group: AuthGroup | None) -> dict[str, dict[str, str]]:
    """The local authorisation list of the stations of ``group``: id tag → ``idTagInfo``.

    It mirrors the authorisation service: the group's cards (accepted, blocked
    when not authorised, expired past their expiry date, which the entry
    carries so the station itself refuses the card from then on); in the open
    modes every blocked or expired card too,
    since those are the only cards such a group refuses; the plug-in tag of a
    reader-disabled group. A station without a group knows every card.
    """
    cards = Card.objects.all()
    now = timezone.now()
    if group is not None:
        condition = Q(groups=group)
        if group.online_mode in OPEN_MODES:
            condition |= Q(authorized=False) | Q(expires_at__lte=now)
        cards = cards.filter(condition).distinct()
    entries: dict[str, dict[str, str]] = {}
    for id_tag, authorized, parent, expires_at in cards.values_list(
        "id_tag", "authorized", "parent_id_tag", "expires_at"
    ):
        if not authorized:
            info = {"status": AuthorizationStatus.blocked}
        elif expires_at is not None and expires_at <= now:
            info = {"status": AuthorizationStatus.expired}
        else:
            info = {"status": AuthorizationStatus.accepted}
            if parent:
                info["parentIdTag"] = parent
        if authorized and expires_at is not None:
            info["expiryDate"] = format_datetime(expires_at)
        entries[id_tag] = info
    if group is not None and group.online_mode == OnlineMode.READER_DISABLED:
        tag = plug_in_id_tag(group)
        if not any(existing.lower() == tag.lower() for existing in entries):
            entries[tag] = {"status": AuthorizationStatus.accepted}
    return entries


def list_difference(current: dict[str, dict], desired: dict[str, dict]) -> list[dict[str, Any]]:
    """Differential ``localAuthorizationList`` entries turning ``current`` into ``desired``."""
    changes: list[dict[str, Any]] = [
        {"idTag": tag, "idTagInfo": info}
        for tag, info in sorted(desired.items())
        if current.get(tag) != info
    ]
    changes += [{"idTag": tag} for tag in sorted(current) if tag not in desired]
    return changes


def _fit(desired: dict[str, dict], capacity: int | None) -> tuple[dict[str, dict], int]:
    """The list cut to the station's capacity: refused cards first, then by id tag."""
    if capacity is None or len(desired) <= capacity:
        return desired, 0
    ordered = sorted(
        desired.items(),
        key=lambda item: (item[1]["status"] == AuthorizationStatus.accepted, item[0]),
    )
    return dict(ordered[:capacity]), len(desired) - capacity


# --- requests ------------------------------------------------------------------------------


def station_sync_request(station_ids: Iterable[int], *, reason: str) -> None:
    """Ask for the stations to be synchronised soon (cheap; requests coalesce)."""
    from apps.central_system.tasks import station_auth_sync_task  # tasks imports this module

    station_ids = sorted(set(station_ids))
    if not station_ids:
        return
    try:
        pipe = redis_client().pipeline()
        for station_id in station_ids:
            pipe.sadd(_reasons_key(station_id), reason)
            pipe.expire(_reasons_key(station_id), LOCK_TIMEOUT_S)
        pipe.sadd(PENDING_STATIONS, *station_ids)
        pipe.set(QUEUED, 1, nx=True, ex=QUEUED_TTL_S)
        if pipe.execute()[-1]:
            station_auth_sync_task.apply_async(expires=QUEUED_TTL_S)
    except (RedisError, KombuError, OSError) as exc:
        # The next boot or reconnection of the station brings it up to date.
        logger.warning("Authentication sync (%s) not queued: %s", reason, exc)


def stations_of_groups(group_ids: Iterable[int], *, open_groups: bool = False) -> list[int]:
    """Installed stations in those groups (and in every open-mode group, if asked)."""
    condition = Q(auth_group_id__in=list(group_ids))
    if open_groups:
        condition |= Q(auth_group__online_mode__in=OPEN_MODES) | Q(auth_group__isnull=True)
    return list(
        Station.objects.filter(condition, state=StationState.INSTALLED).values_list("pk", flat=True)
    )


def station_sync_run() -> int:
    """Synchronise every station with a pending request; return how many were looked at.

    Single-flight: one run at a time, looping while requests keep coming.
    Stations are synchronised side by side (mostly waiting for their answers)
    so one slow station does not hold up the others.
    """
    client = redis_client()
    lock = client.lock(LOCK, timeout=LOCK_TIMEOUT_S, blocking=False)
    if not lock.acquire():
        return 0  # the holder sees the pending stations when it loops
    done = 0
    try:
        for _pass in range(MAX_PASSES):
            pipe = client.pipeline()
            pipe.smembers(PENDING_STATIONS)
            pipe.delete(PENDING_STATIONS, QUEUED)
            station_ids, _deleted = pipe.execute()
            if not station_ids:
                break
            ids = sorted(int(i) for i in station_ids)
            pipe = client.pipeline()
            for station_id in ids:
                pipe.smembers(_reasons_key(station_id))
            pipe.delete(*(_reasons_key(station_id) for station_id in ids))
            reasons = pipe.execute()[:-1]
            work = [
                (station_id, set(found) or {CARDS})
                for station_id, found in zip(ids, reasons, strict=True)
            ]
            with ThreadPoolExecutor(SYNC_THREADS) as pool:
                list(pool.map(lambda item: _sync_in_thread(*item), work))
            done += len(work)
    finally:
        lock.release()
    return done


def _sync_in_thread(station_id: int, reasons: set[str]) -> None:
    try:
        station = Station.objects.select_related("auth_group").filter(pk=station_id).first()
        if station is not None and station.state == StationState.INSTALLED:
            station_sync(station, reasons=reasons)
    except Exception:
        logger.exception("Authentication sync of station %s failed", station_id)
    finally:
        db.connection.close()


# --- one synchronisation -------------------------------------------------------------------


@dataclass
class SyncReport:
    """What one synchronisation did (for logs and tests)."""

    connected: bool = True
    configuration: dict[str, str] = field(default_factory=dict)  # key → station's answer
    list_update: str = ""  # "", "full", "differential", "not supported"
    list_entries_sent: int = 0
    list_version: int | None = None
    error: str = ""


Send = Callable[[commands.Command], dict[str, Any]]


def station_sync(station: Station, *, reasons: set[str], send: Send | None = None) -> SyncReport:
    """Bring one connected station's configuration and local list in line with its group.

    ``send`` delivers one command to this station and returns its answer
    (default: through the channel layer, on the process's command loop).
    """
    send = send or partial(_send_now, station.identity)
    report = SyncReport()
    if not station_is_online(station.identity):
        report.connected = False
        return report
    state, _created = StationAuthState.objects.get_or_create(station=station)
    group = station.auth_group
    try:
        has_list = True
        if not state.configuration_read or BOOT in reasons:
            has_list = _read_capabilities(send, state)
        _apply_configuration(
            station,
            send,
            state,
            group,
            report,
            every_key=bool(FULL_CONFIGURATION_REASONS & reasons),
        )
        if not has_list:
            _list_unsupported(station, state, report)
        elif state.list_supported is not False or BOOT in reasons:
            _sync_local_list(
                station,
                send,
                state,
                group,
                report,
                check_version=bool(CHECK_VERSION_REASONS & reasons),
            )
        state.last_error = ""
    except commands.CommandError as exc:
        # Offline or silent: what was applied is recorded; the rest waits for the
        # station's next connection.
        report.error = state.last_error = str(exc)[:200]
        logger.info("Authentication sync of %s stopped: %s", station.identity, exc)
    state.synced_at = timezone.now()
    state.save()
    return report


def _warn(station: Station, event: str, message: str, **data: Any) -> None:
    device_log_write(
        category=EventCategory.CONFIGURATION,
        level=EventLevel.WARNING,
        event=event,
        message=message,
        station_identity=station.identity,
        data=data,
    )


def _send_now(identity: str, command: commands.Command) -> dict[str, Any]:
    # On the process's command loop: the sync threads share its channel layer.
    return command_loop.run(commands.send(identity, command, timeout_s=COMMAND_TIMEOUT_S))


def _read_capabilities(send: Send, state: StationAuthState) -> bool:
    """Learn the list capacities and whether the station has a free-vend key.

    Return False when the station says it has no local authorisation list.
    """
    try:
        answer = send(commands.get_configuration())
    except commands.CallError:
        answer = {}
    values = {item["key"]: item.get("value") for item in answer.get("configurationKey", [])}
    by_lower = {name.lower(): value for name, value in values.items()}

    def as_int(name: str) -> int | None:
        value = by_lower.get(name.lower())
        return int(value) if value is not None and str(value).strip().isdigit() else None

    state.list_max_length = as_int("LocalAuthListMaxLength")
    state.update_max_length = as_int("SendLocalListMaxLength")
    state.free_vend_prefix = next(
        (
            name[: -len(FREE_VEND_ACTIVE)]
            for name in sorted(values)
            if name.lower().endswith(FREE_VEND_ACTIVE.lower())
            and name[: -len(FREE_VEND_ACTIVE)] + FREE_VEND_ID_TAG in values
        ),
        "",
    )
    state.configuration_read = True
    profiles = by_lower.get("supportedfeatureprofiles")
    return profiles is None or "localauthlistmanagement" in profiles.lower()


def _apply_configuration(
    station: Station,
    send: Send,
    state: StationAuthState,
    group: AuthGroup | None,
    report: SyncReport,
    *,
    every_key: bool,
) -> None:
    applied = dict(state.applied_configuration)
    rejected = dict(state.rejected_keys)
    newly_rejected: dict[str, str] = {}
    for name, value in group_configuration(group, state.free_vend_prefix).items():
        if not every_key and applied.get(name) == value and name not in rejected:
            continue
        try:
            answer = send(commands.change_configuration(name, value))
            status = str(answer.get("status", "Unknown"))
        except commands.CallError as exc:
            status = f"CALLERROR {exc}"
        report.configuration[name] = status
        if status in (ConfigurationStatus.accepted, ConfigurationStatus.reboot_required):
            applied[name] = value
            rejected.pop(name, None)
        else:
            applied.pop(name, None)
            if rejected.get(name) != status:
                newly_rejected[name] = status
            rejected[name] = status
    state.applied_configuration, state.rejected_keys = applied, rejected
    if newly_rejected:
        keys = ", ".join(f"{k} ({v})" for k, v in sorted(newly_rejected.items()))
        _warn(
            station,
            "station_configuration_refused",
            _("Station %(identity)s refused %(keys)s.")
            % {"identity": station.identity, "keys": keys},
            refused=newly_rejected,
        )


def _sync_local_list(
    station: Station,
    send: Send,
    state: StationAuthState,
    group: AuthGroup | None,
    report: SyncReport,
    *,
    check_version: bool,
) -> None:
    full = state.list_version == 0
    if check_version:
        answer = send(commands.get_local_list_version())
        station_version = int(answer.get("listVersion", -1))
        if station_version < 0:
            _list_unsupported(station, state, report)
            return
        state.list_supported = True
        full = full or station_version != state.list_version
    desired, left_out = _fit(group_local_list(group), state.list_max_length)
    if full:
        status = _send_batches(send, state, _full_list(desired), report, full=True)
    else:
        changes = list_difference(state.list_entries, desired)
        if not changes:
            return
        status = _send_batches(send, state, changes, report, full=False)
        if status in (UpdateStatus.failed, UpdateStatus.version_mismatch):
            status = _send_batches(send, state, _full_list(desired), report, full=True)
    if status == UpdateStatus.not_supported:
        _list_unsupported(station, state, report)
    elif status != UpdateStatus.accepted:
        _warn(
            station,
            "local_list_failed",
            _("Station %(identity)s did not take its local list (%(status)s).")
            % {"identity": station.identity, "status": status},
            status=status,
            version=state.list_version,
        )
    elif left_out:
        _warn(
            station,
            "local_list_truncated",
            _("The local list of %(identity)s holds %(kept)d cards; %(left)d left out.")
            % {"identity": station.identity, "kept": len(desired), "left": left_out},
        )


def _list_unsupported(station: Station, state: StationAuthState, report: SyncReport) -> None:
    report.list_update = "not supported"
    if state.list_supported is not False:
        device_log_write(
            category=EventCategory.CONFIGURATION,
            event="local_list_unsupported",
            message=_("Station %(identity)s has no local authorisation list.")
            % {"identity": station.identity},
            station_identity=station.identity,
        )
    state.list_supported = False


def _batches(entries: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [entries[i : i + size] for i in range(0, len(entries), size)] or [[]]


def _send_batches(
    send: Send,
    state: StationAuthState,
    entries: list[dict[str, Any]],
    report: SyncReport,
    *,
    full: bool,
) -> str:
    """Send ``entries`` in updates of the station's size, recording each one it takes.

    ``full`` replaces the list: the first update is ``Full``, the rest
    differential. An entry without ``idTagInfo`` removes its card.
    """
    size = state.update_max_length or DEFAULT_UPDATE_MAX_LENGTH
    held = {} if full else dict(state.list_entries)
    status: str = UpdateStatus.accepted
    for position, batch in enumerate(_batches(entries, size)):
        version = state.list_version + 1
        update_type = UpdateType.full if full and position == 0 else UpdateType.differential
        status = _send_list(send, version, update_type, batch)
        if status != UpdateStatus.accepted:
            break
        for entry in batch:
            if "idTagInfo" in entry:
                held[entry["idTag"]] = entry["idTagInfo"]
            else:
                held.pop(entry["idTag"], None)
        state.list_version, state.list_entries = version, dict(held)
        report.list_entries_sent += len(batch)
    report.list_update = "full" if full else "differential"
    report.list_version = state.list_version
    return status


def _full_list(desired: dict[str, dict]) -> list[dict[str, Any]]:
    return [{"idTag": tag, "idTagInfo": info} for tag, info in sorted(desired.items())]


def _send_list(send: Send, version: int, update_type: str, entries: list[dict]) -> str:
    try:
        answer = send(commands.send_local_list(version, update_type, entries or None))
    except commands.CallError as exc:
        return f"CALLERROR {exc}"
    return str(answer.get("status", "Unknown"))


# --- reader disabled: start on plug-in -----------------------------------------------------


def plug_in_start_needed(station: Station, connector_id: int) -> bool:
    """Whether evce must start a session on this connector because a car was plugged in.

    Only for reader-disabled groups, when free vend is not active on the
    station (it then starts by itself) and no session runs on the connector.
    """
    group = station.auth_group
    if connector_id < 1 or group is None or group.online_mode != OnlineMode.READER_DISABLED:
        return False
    state = StationAuthState.objects.filter(station=station).first()
    free_vend_key = state.free_vend_prefix + FREE_VEND_ACTIVE if state else ""
    if state is not None and state.applied_configuration.get(free_vend_key) == "true":
        return False
    return not Transaction.objects.filter(
        station=station, connector_id=connector_id, stopped_at__isnull=True
    ).exists()


def plug_in_start(identity: str, connector_id: int) -> str:
    """Start a session with the group's plug-in tag; return the station's answer."""
    station = Station.objects.select_related("auth_group").filter(identity=identity).first()
    if station is None or not plug_in_start_needed(station, connector_id):
        return "not needed"
    command = commands.remote_start(plug_in_id_tag(station.auth_group), connector_id=connector_id)
    try:
        status = str(_send_now(identity, command).get("status", "Unknown"))
    except commands.CommandError as exc:
        status = f"error: {exc}"
    if status != RemoteStartStopStatus.accepted:
        command_failed_event(
            identity, command.action, status, {"payload": command.payload, "plug_in": True}
        )
    return status
