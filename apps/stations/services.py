"""Station and transaction workflows: discovery, installation, sessions, samples.

The OCPP consumer calls these with plain values (already validated and in
explicit units); so do the admin, the API and the tests. Everything a station
reports late or twice lands on the same rows: a repeated start maps to the
same transaction, a stop is never lost, a repeated stop changes nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from ocpp.v16.enums import ChargePointErrorCode, ChargePointStatus, Reason

from apps.devicelog.models import EventCategory, EventLevel
from apps.devicelog.services import device_log_write, fields_assign, settings_only
from apps.rfid.models import AuthGroup, Card, id_tag_validator
from apps.rfid.services import announce_groups_changed
from apps.stations import signals
from apps.stations.models import (
    OPEN_RESERVATION_STATUSES,
    Connector,
    CurrentType,
    MeterSample,
    PhaseWiring,
    Reservation,
    ReservationStatus,
    SecurityProfile,
    Station,
    StationState,
    Transaction,
    TransactionStatus,
)
from apps.zones.models import Zone
from apps.zones.selectors import tou_period_name_at_minute

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)

# A phase drawing at least this much is counted in a session's phases used.
PHASE_ACTIVE_CURRENT_A = 1.0
# A connector first reported by a station is registered with these ratings
# until an installer sets the real ones.
DEFAULT_CONNECTOR_MAX_CURRENT_A = Decimal("32")
_SESSION_STATUSES = {s.value for s in TransactionStatus} - {TransactionStatus.FINISHED.value}


@dataclass(frozen=True, slots=True)
class StationInfo:
    """What a station tells about itself in its BootNotification."""

    vendor: str
    model: str
    serial_number: str = ""
    firmware_version: str = ""
    iccid: str = ""
    imsi: str = ""
    meter_type: str = ""
    meter_serial_number: str = ""


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    """How an installer declares a connector (AC: current limit; DC: power limit)."""

    connector_id: int
    phase_wiring: str = PhaseWiring.TRI123
    current_type: str = CurrentType.AC
    max_current_a: Decimal | None = DEFAULT_CONNECTOR_MAX_CURRENT_A
    max_power_w: int | None = None


@dataclass(frozen=True, slots=True)
class MeterReading:
    """What a station measured on one connector at one instant, in A, W and Wh.

    ``current_l1_a`` … ``current_l3_a`` are per connector phase;
    ``current_unknown_phase_a`` is a current given without a phase, which may
    flow on any phase of the connector (and so says nothing of how many the
    EV uses).
    """

    sampled_at: datetime
    current_l1_a: float | None = None
    current_l2_a: float | None = None
    current_l3_a: float | None = None
    power_w: float | None = None
    energy_wh: float | None = None
    current_offered_a: float | None = None
    context: str = ""
    current_unknown_phase_a: float | None = None

    @property
    def phase_currents_a(self) -> list[float]:
        return [
            c for c in (self.current_l1_a, self.current_l2_a, self.current_l3_a) if c is not None
        ]

    @property
    def currents_a(self) -> list[float]:
        """Every current of the reading, with or without a phase."""
        unknown = self.current_unknown_phase_a
        return self.phase_currents_a + ([] if unknown is None else [unknown])

    @property
    def has_measurement(self) -> bool:
        return bool(self.currents_a) or any(
            v is not None for v in (self.power_w, self.energy_wh, self.current_offered_a)
        )


# --- stations -------------------------------------------------------------------


def station_boot(
    *, identity: str, info: StationInfo, remote_addr: str | None = None, at: datetime | None = None
) -> tuple[Station, bool]:
    """Record a BootNotification; an unknown identity becomes a *discovered* station.

    Returns the station and whether it was created. Identities are matched
    case-insensitively, like the site file does.
    """
    at = at or timezone.now()
    station = Station.objects.filter(identity__iexact=identity).first()
    created = station is None
    if station is None:
        station = Station(identity=identity, state=StationState.DISCOVERED)
    for name in (
        "vendor",
        "model",
        "serial_number",
        "firmware_version",
        "iccid",
        "imsi",
        "meter_type",
        "meter_serial_number",
    ):
        limit = Station._meta.get_field(name).max_length
        setattr(station, name, (getattr(info, name) or "")[:limit])
    station.last_boot_at = at
    station.last_seen_at = at
    if remote_addr:
        station.ip_address = remote_addr
    try:
        with transaction.atomic():
            station.save()
    except IntegrityError:
        # Two connections of a new station booted at once: the other one created it.
        if not created:
            raise
        return station_boot(identity=identity, info=info, remote_addr=remote_addr, at=at)
    if created:
        device_log_write(
            category=EventCategory.COMMUNICATION,
            event="station_discovered",
            message=_("New station %(identity)s (%(vendor)s %(model)s) waits for installation.")
            % {"identity": identity, "vendor": info.vendor, "model": info.model},
            station_identity=identity,
            remote_addr=remote_addr,
            data={"serial_number": info.serial_number, "firmware": info.firmware_version},
        )
    return station, created


# Configuration an installer (admin, site file, API) sets on a station; what a
# station reports about itself is written by the OCPP workflows only.
STATION_SETTINGS = ("name", "zone", "auth_group", "vip", "security_profile", "web_page_url")


def station_create(
    *,
    identity: str,
    name: str = "",
    zone: Zone | None = None,
    auth_group: AuthGroup | None = None,
    vip: bool = False,
    security_profile: int = 0,
    web_page_url: str = "",
    authorization_key: str | None = None,
    user=None,
) -> Station:
    """Declare a station before it first connects: it waits, *discovered*, to be installed.

    Identities are unique case-insensitively (a station's identity is matched
    that way when it connects); ``ValidationError`` and nothing saved otherwise.
    """
    with transaction.atomic():
        if Station.objects.filter(identity__iexact=identity).exists():
            raise ValidationError(
                {"identity": _("A station %(identity)s already exists.") % {"identity": identity}}
            )
        station = Station(
            identity=identity,
            state=StationState.DISCOVERED,
            name=name,
            zone=zone,
            auth_group=auth_group,
            vip=vip,
            security_profile=security_profile,
            web_page_url=web_page_url,
        )
        station.set_authorization_key(authorization_key)
        station.full_clean()
        station.save()
        device_log_write(
            category=EventCategory.CONFIGURATION,
            event="station_declared",
            message=_("Station %(identity)s declared; it waits for installation.")
            % {"identity": identity},
            station_identity=identity,
            user=user,
        )
        if auth_group is not None:
            announce_groups_changed(group_ids=[], station_ids=[station.pk])
    return station


def station_update(
    station: Station,
    *,
    user=None,
    authorization_key: str | None = None,
    connectors: Sequence[ConnectorSpec] | None = None,
    replace_connectors: bool = False,
    **settings: Any,
) -> Station:
    """Change a station's configuration (any of :data:`STATION_SETTINGS`) and connectors.

    The state is not changed here: installing and refusing are their own
    workflows. ``connectors`` are created or updated; with
    ``replace_connectors`` the station's other connectors are removed.
    ``ValidationError`` (nothing changed) on an inconsistent value; a call
    that changes nothing writes nothing. A new authentication group reaches
    the station after commit.
    """
    settings_only(settings, STATION_SETTINGS, what="station settings")
    with transaction.atomic():
        current = Station.objects.select_for_update().get(pk=station.pk)
        old_group_id = current.auth_group_id
        changes = fields_assign(current, settings)
        if authorization_key and not current.check_authorization_key(authorization_key):
            current.set_authorization_key(authorization_key)
            changes["authorization_key"] = ["***", "***"]
        if changes:
            current.full_clean()
            current.save()
        if connectors is not None:
            changes.update(_connectors_apply(current, connectors, replace=replace_connectors))
        if changes:
            device_log_write(
                category=EventCategory.CONFIGURATION,
                event="station_updated",
                message=_("Station %(identity)s changed: %(fields)s.")
                % {"identity": current.identity, "fields": ", ".join(changes)},
                station_identity=current.identity,
                user=user,
                data={"changes": changes},
            )
        if current.auth_group_id != old_group_id:
            announce_groups_changed(group_ids=[], station_ids=[current.pk])
    station.refresh_from_db()
    return station


def _connectors_apply(
    station: Station, specs: Sequence[ConnectorSpec], *, replace: bool
) -> dict[str, list[Any]]:
    """Create or update the connectors of ``specs`` (and remove the others with ``replace``).

    Errors name the connector by its position, e.g. ``connectors[1].max_current_a``.
    Returns what changed, by connector, for the device log.
    """
    changes: dict[str, list[Any]] = {}
    if replace:
        wanted = [spec.connector_id for spec in specs]
        removed = list(
            station.connectors.exclude(connector_id__in=wanted).values_list(
                "connector_id", flat=True
            )
        )
        if removed:
            station.connectors.filter(connector_id__in=removed).delete()
            changes["connectors removed"] = [removed, []]
    for index, spec in enumerate(specs):
        connector = Connector.objects.filter(
            station=station, connector_id=spec.connector_id
        ).first() or Connector(station=station, connector_id=spec.connector_id)
        created = connector.pk is None
        changed = fields_assign(
            connector,
            {
                "phase_wiring": spec.phase_wiring,
                "current_type": spec.current_type,
                "max_current_a": spec.max_current_a,
                "max_power_w": spec.max_power_w,
            },
        )
        if not (created or changed):
            continue
        try:
            connector.full_clean(exclude=["station"])
        except ValidationError as exc:
            raise ValidationError(
                {
                    f"connectors[{index}]" + ("" if name == "__all__" else f".{name}"): messages
                    for name, messages in exc.message_dict.items()
                }
            ) from None
        connector.save()
        changes[f"connector {spec.connector_id}"] = ["new" if created else "changed", changed]
    return changes


def station_install(
    station: Station,
    *,
    name: str,
    zone: Zone,
    auth_group: AuthGroup | None = None,
    vip: bool = False,
    connectors: Sequence[ConnectorSpec] = (),
    replace_connectors: bool = False,
    security_profile: int | None = None,
    web_page_url: str | None = None,
    authorization_key: str | None = None,
    user=None,
) -> Station:
    """Install a discovered (or declared) station: it is answered ``Accepted`` from its next boot.

    Raises ``ValidationError`` (nothing changed) when the zone has sub-zones
    or a connector is inconsistent. Once committed, the station is asked to
    boot again (when online) so it is accepted and configured at once.
    """
    with transaction.atomic():
        station = Station.objects.select_for_update().get(pk=station.pk)
        old_group_id = station.auth_group_id
        station.name = name
        station.zone = zone
        station.auth_group = auth_group
        station.vip = vip
        if security_profile is not None:
            station.security_profile = security_profile
        if web_page_url is not None:
            station.web_page_url = web_page_url
        if authorization_key:
            station.set_authorization_key(authorization_key)
        station.state = StationState.INSTALLED
        station.installed_at = timezone.now()
        station.full_clean()
        station.save()
        _connectors_apply(station, connectors, replace=replace_connectors)
        device_log_write(
            category=EventCategory.CONFIGURATION,
            event="station_installed",
            message=_("Station %(identity)s installed as %(name)s in zone %(zone)s.")
            % {"identity": station.identity, "name": name, "zone": zone.name},
            station_identity=station.identity,
            zone_name=zone.name,
            user=user,
        )
        if station.auth_group_id != old_group_id:
            announce_groups_changed(group_ids=[], station_ids=[station.pk])
        transaction.on_commit(partial(_after_state_change, station.identity, "installed"))
    return station


def station_authorization_key_adopt(*, station: Station, key: str, user=None) -> None:
    """Keep ``key`` (hashed) as the station's Basic-auth password from now on.

    Called once the station accepted it: its next connection must use it, and
    the old one is refused. A security event, without the key.
    """
    if not 16 <= len(key) <= 40:
        raise ValidationError(
            {"authorization_key": _("An authorization key has 16–40 characters.")}
        )
    holder = Station()
    holder.set_authorization_key(key)
    Station.objects.filter(pk=station.pk).update(
        authorization_key_hash=holder.authorization_key_hash,
        authorization_key_set_at=holder.authorization_key_set_at,
    )
    device_log_write(
        category=EventCategory.SECURITY,
        event="station_key_changed",
        message=_("The authorization key of station %(identity)s was replaced.")
        % {"identity": station.identity},
        station_identity=station.identity,
        user=user,
    )


def station_security_profile_raise(*, station: Station, profile: int, user=None) -> bool:
    """Raise the station's security profile to ``profile`` (never lower it).

    Connections below the stored profile are refused from then on. Returns
    whether the profile changed; a security event when it did.
    """
    if profile not in SecurityProfile.values:
        raise ValidationError({"security_profile": _("Unknown security profile.")})
    raised = Station.objects.filter(pk=station.pk, security_profile__lt=profile).update(
        security_profile=profile
    )
    if raised:
        device_log_write(
            category=EventCategory.SECURITY,
            event="station_security_profile_raised",
            message=_("Station %(identity)s now connects with security profile %(profile)d.")
            % {"identity": station.identity, "profile": profile},
            station_identity=station.identity,
            user=user,
            data={"security_profile": profile},
        )
    return bool(raised)


def station_refuse(station: Station, *, user=None) -> Station:
    """Refuse a station: its boots are answered ``Rejected`` and its socket is closed."""
    with transaction.atomic():
        station = Station.objects.select_for_update().get(pk=station.pk)
        _refuse_if_charging(station)
        station.state = StationState.REFUSED
        station.save(update_fields=["state"])
        device_log_write(
            category=EventCategory.CONFIGURATION,
            event="station_refused",
            message=_("Station %(identity)s refused.") % {"identity": station.identity},
            station_identity=station.identity,
            user=user,
        )
        transaction.on_commit(partial(_after_state_change, station.identity, "refused"))
    return station


def station_delete(station: Station, *, user=None) -> None:
    """Delete a station (its CDRs stay, with its identity and name copied)."""
    with transaction.atomic():
        station = Station.objects.select_for_update().get(pk=station.pk)
        _refuse_if_charging(station)
        identity = station.identity
        station.delete()
        device_log_write(
            category=EventCategory.CONFIGURATION,
            event="station_deleted",
            message=_("Station %(identity)s deleted.") % {"identity": identity},
            station_identity=identity,
            user=user,
        )
        transaction.on_commit(partial(_after_state_change, identity, "deleted"))


def _refuse_if_charging(station: Station) -> None:
    if Transaction.objects.filter(station=station, stopped_at__isnull=True).exists():
        raise ValidationError(
            _("Station %(identity)s has an ongoing transaction: stop it first.")
            % {"identity": station.identity}
        )


def _after_state_change(identity: str, change: str) -> None:
    # The central system builds on this app, not the other way round: it receives this.
    signals.station_state_changed.send(sender=Station, identity=identity, change=change)


def station_touch(*, station_id: int, at: datetime | None = None) -> None:
    """Note that the station spoke (the live state is in Redis; this survives it)."""
    Station.objects.filter(pk=station_id).update(last_seen_at=at or timezone.now())


# --- connectors -----------------------------------------------------------------


def _connector(station: Station, connector_id: int) -> Connector:
    """The connector, registered with default ratings when the station first reports it."""
    connector = Connector.objects.filter(station=station, connector_id=connector_id).first()
    if connector is not None:
        return connector
    try:
        with transaction.atomic():
            return Connector.objects.create(
                station=station,
                connector_id=connector_id,
                current_type=CurrentType.AC,
                max_current_a=DEFAULT_CONNECTOR_MAX_CURRENT_A,
            )
    except IntegrityError:
        return Connector.objects.get(station=station, connector_id=connector_id)


def connector_status_update(
    *,
    station: Station,
    connector_id: int,
    status: str,
    error_code: str = ChargePointErrorCode.no_error,
    info: str = "",
    at: datetime | None = None,
) -> None:
    """Apply a StatusNotification: connector (or station, for 0) and session status.

    Time spent in ``Charging`` is added to the ongoing session's charging
    duration when the connector leaves that status.
    """
    at = at or timezone.now()
    _announce_report(station.identity, "status")
    if connector_id == 0:
        Station.objects.filter(pk=station.pk).update(status=status)
        return
    with transaction.atomic():
        connector = _connector(station, connector_id)
        previous, since = connector.status, connector.status_at
        session = _ongoing(station.identity, connector_id, lock=True)
        if session is not None:
            changed = []
            if (
                previous == ChargePointStatus.charging
                and status != ChargePointStatus.charging
                and since is not None
            ):
                session.charging_duration_s += _seconds_between(
                    max(since, session.started_at or since), at
                )
                changed.append("charging_duration_s")
            if status in _SESSION_STATUSES and session.status != status:
                session.status = status
                changed.append("status")
            if changed:
                session.save(update_fields=changed)
        connector.error_code = error_code[:30]
        connector.status_info = info[:50]
        if status != previous:
            connector.status = status
            connector.status_at = at
        connector.save(update_fields=["status", "error_code", "status_info", "status_at"])


def _seconds_between(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds()))


def _ongoing(identity: str, connector_id: int, *, lock: bool = False) -> Transaction | None:
    sessions = Transaction.objects.filter(
        station_identity=identity, connector_id=connector_id, stopped_at__isnull=True
    ).order_by("-started_at", "-id")
    if lock:
        sessions = sessions.select_for_update()
    return sessions.first()


# --- transactions ------------------------------------------------------------------


def transaction_start(
    *,
    station: Station,
    connector_id: int,
    id_tag: str,
    meter_start_wh: int,
    started_at: datetime,
    card: Card | None = None,
    reservation_id: int | None = None,
) -> Transaction:
    """Open a session, or return the one a repeated StartTransaction already opened.

    The same station, connector, id tag and start time is the same session
    (a station re-sends its start after a lost answer or a reconnection).
    A connector runs one session at a time: a new one supersedes whatever
    other session is still open there (see :func:`_supersede_older`).
    """
    _connector(station, connector_id)
    lookup = {
        "station_identity": station.identity,
        "connector_id": connector_id,
        "id_tag": id_tag,
        "started_at": started_at,
    }
    existing = Transaction.objects.filter(**lookup).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            session = Transaction.objects.create(
                **lookup,
                station=station,
                station_name=station.name,
                card=card,
                vip=station.vip or bool(card and card.vip),
                meter_start_wh=meter_start_wh,
                reservation_id=reservation_id,
                status=TransactionStatus.CHARGING,
            )
            _supersede_older(session)
            return session
    except IntegrityError:
        return Transaction.objects.get(**lookup)


# Stop reason of a session closed because a newer one started on its connector.
# Not an OCPP reason on purpose: a station never sends it, so it marks the
# sessions evce closed (their own StopTransaction, if it ever comes, still
# reconciles them with the station's figures).
SUPERSEDED = "Superseded"


def _supersede_older(latest: Transaction) -> list[Transaction]:
    """Close every other open session of ``latest``'s connector.

    A lost StopTransaction or a station reboot leaves a session open that the
    station no longer runs; driving it would send profiles for a transaction
    the station rejects while its real session charges unmanaged. Stations
    deliver transaction messages in order, so the start that arrives last is
    the session running now, whatever its clock says. The closed sessions keep
    their last metered energy (the latest energy register sampled, else their
    start: nothing is invented) and stay in the CDRs.
    """
    identity, connector_id = latest.station_identity, latest.connector_id
    older = list(
        Transaction.objects.select_for_update()
        .filter(station_identity=identity, connector_id=connector_id, stopped_at__isnull=True)
        .exclude(pk=latest.pk)
        .order_by("started_at", "id")
    )
    for session in older:
        last_sample = (
            MeterSample.objects.filter(transaction=session, energy_wh__isnull=False)
            .order_by("-sampled_at", "-id")
            .only("energy_wh")
            .first()
        )
        meter_stop_wh = session.meter_start_wh
        if last_sample is not None:
            meter_stop_wh = round(last_sample.energy_wh)
        if session.meter_start_wh is not None:
            # Energy already counted from samples is never taken back.
            meter_stop_wh = max(meter_stop_wh or 0, session.meter_start_wh + session.energy_wh)
        _close(
            session,
            stopped_at=latest.started_at or timezone.now(),
            meter_stop_wh=meter_stop_wh,
            reason=SUPERSEDED,
            count_charging=False,  # the connector's status is the new session's
        )
        device_log_write(
            category=EventCategory.COMMUNICATION,
            level=EventLevel.WARNING,
            event="transaction_superseded",
            message=_(
                "Transaction %(pk)s on %(identity)s/%(connector)s was still open when "
                "transaction %(latest)s started there: closed with %(energy)s Wh."
            )
            % {
                "pk": session.pk,
                "identity": identity,
                "connector": connector_id,
                "latest": latest.pk,
                "energy": session.energy_wh,
            },
            station_identity=identity,
            data={
                "transaction_id": session.pk,
                "superseded_by": latest.pk,
                "energy_wh": session.energy_wh,
            },
        )
    return older


def transaction_stop(
    *,
    station: Station,
    transaction_id: int,
    meter_stop_wh: int,
    stopped_at: datetime,
    reason: str = Reason.local,
    id_tag: str = "",
    readings: Sequence[MeterReading] = (),
) -> Transaction:
    """Close a session from a StopTransaction; never refuses, never loses one.

    * ongoing session: closed with the station's figures;
    * session force-stopped by an operator: reconciled with the station's figures;
    * already stopped: unchanged (a repeated stop);
    * unknown id: stored as a session without start, so the energy is not lost.
    """
    with transaction.atomic():
        session = (
            Transaction.objects.select_for_update()
            .filter(pk=transaction_id, station_identity__iexact=station.identity)
            .first()
        )
        if session is None:
            session, created = _store_unknown_stop(
                station, transaction_id, meter_stop_wh, stopped_at, reason, id_tag
            )
            if not created:
                return session  # the same stop again
        elif session.stopped_at is None or session.forced_stop or session.stop_reason == SUPERSEDED:
            repeat = session.forced_stop and session.stopped_at == stopped_at
            _close(session, stopped_at=stopped_at, meter_stop_wh=meter_stop_wh, reason=reason)
            if repeat:
                return session
        else:
            return session  # already stopped by the station: a repeated stop
        _store_samples(station, session.connector_id, session, readings)
    return session


def _store_unknown_stop(
    station: Station,
    transaction_id: int,
    meter_stop_wh: int,
    stopped_at: datetime,
    reason: str,
    id_tag: str,
) -> tuple[Transaction, bool]:
    same = Transaction.objects.filter(
        station_identity=station.identity,
        started_at__isnull=True,
        stopped_at=stopped_at,
        meter_stop_wh=meter_stop_wh,
    ).first()
    if same is not None:
        return same, False
    session = Transaction.objects.create(
        station=station,
        station_identity=station.identity,
        station_name=station.name,
        connector_id=0,
        id_tag=id_tag,
        stopped_at=stopped_at,
        meter_stop_wh=meter_stop_wh,
        stop_reason=reason,
        status=TransactionStatus.FINISHED,
    )
    device_log_write(
        category=EventCategory.COMMUNICATION,
        level=EventLevel.WARNING,
        event="stop_unknown_transaction",
        message=_(
            "Station %(identity)s stopped transaction %(station_id)s that evce does not know; "
            "stored as transaction %(pk)s."
        )
        % {"identity": station.identity, "station_id": transaction_id, "pk": session.pk},
        station_identity=station.identity,
        data={"transaction_id": transaction_id, "stored_as": session.pk},
    )
    return session, True


def _close(
    session: Transaction,
    *,
    stopped_at: datetime,
    meter_stop_wh: int | None,
    reason: str,
    count_charging: bool = True,
) -> None:
    """Close ``session``; ``count_charging`` adds the connector's time in Charging
    up to ``stopped_at`` (not when the real end of the session is unknown)."""
    if session.started_at is not None:
        stopped_at = max(stopped_at, session.started_at)
    if session.stopped_at is None and count_charging:
        connector = Connector.objects.filter(
            station__identity=session.station_identity, connector_id=session.connector_id
        ).first()
        if (
            connector is not None
            and connector.status == ChargePointStatus.charging
            and connector.status_at
        ):
            start = max(connector.status_at, session.started_at or connector.status_at)
            session.charging_duration_s += _seconds_between(start, stopped_at)
    session.stopped_at = stopped_at
    session.stop_reason = reason[:20]
    session.status = TransactionStatus.FINISHED
    if meter_stop_wh is not None:
        session.meter_stop_wh = meter_stop_wh
        if session.meter_start_wh is not None:
            final_wh = max(0, meter_stop_wh - session.meter_start_wh)
            if final_wh > session.energy_wh:
                session.tou_energy_wh = tou_energy_add(
                    session.tou_energy_wh, final_wh - session.energy_wh, stopped_at
                )
            session.energy_wh = final_wh
    session.save()


def transaction_force_stop(
    transaction_: Transaction, *, user, stopped_at: datetime | None = None
) -> Transaction:
    """Close a session the station no longer reports (e.g. station lost), without the station.

    The energy is what the meter samples showed so far; a StopTransaction
    arriving later still reconciles the record with the station's figures.
    """
    with transaction.atomic():
        session = Transaction.objects.select_for_update().get(pk=transaction_.pk)
        if session.stopped_at is not None:
            raise ValidationError(_("This transaction is already stopped."))
        meter_stop = (
            session.meter_start_wh + session.energy_wh
            if session.meter_start_wh is not None
            else None
        )
        _close(session, stopped_at=stopped_at or timezone.now(), meter_stop_wh=None, reason="Other")
        session.meter_stop_wh = meter_stop
        session.forced_stop = True
        session.save(update_fields=["meter_stop_wh", "forced_stop"])
        device_log_write(
            category=EventCategory.LOAD_MANAGEMENT,
            level=EventLevel.WARNING,
            event="transaction_force_stopped",
            message=_("Transaction %(pk)s on %(identity)s/%(connector)s force-stopped.")
            % {
                "pk": session.pk,
                "identity": session.station_identity,
                "connector": session.connector_id,
            },
            station_identity=session.station_identity,
            user=user,
            data={"transaction_id": session.pk},
        )
    return session


# --- meter values ---------------------------------------------------------------------


def meter_values_record(
    *,
    station: Station,
    connector_id: int,
    transaction_id: int | None,
    readings: Sequence[MeterReading],
) -> Transaction | None:
    """Store MeterValues samples and update the live figures of their session.

    Samples for an unknown transaction id are kept without a session.
    """
    session = None
    if transaction_id is not None:
        session = (
            Transaction.objects.filter(pk=transaction_id, station_identity=station.identity)
            .only("pk", "stopped_at", "meter_start_wh", "energy_wh", "phases_used", "tou_energy_wh")
            .first()
        )
    _store_samples(station, connector_id, session, readings)
    if session is not None and session.stopped_at is None and readings:
        _update_live_figures(session, readings)
    _announce_report(station.identity, "meter_values")
    return session


def _announce_report(identity: str, what: str) -> None:
    """Announce a report once the transaction commits (at once outside one)."""
    transaction.on_commit(
        partial(signals.station_reported.send, sender=Station, identity=identity, what=what)
    )


def _store_samples(
    station: Station,
    connector_id: int,
    session: Transaction | None,
    readings: Sequence[MeterReading],
) -> None:
    readings = [r for r in readings if r.has_measurement]
    if not readings:
        return
    # Repeats of a message are filtered before (the central system remembers
    # recent message ids); a message re-sent after that window is rare enough
    # not to pay a query on every sample for it.
    MeterSample.objects.bulk_create(
        [
            MeterSample(
                transaction=session,
                station=station,
                connector_id=connector_id,
                sampled_at=r.sampled_at,
                current_l1_a=r.current_l1_a,
                current_l2_a=r.current_l2_a,
                current_l3_a=r.current_l3_a,
                current_unknown_phase_a=r.current_unknown_phase_a,
                power_w=r.power_w,
                energy_wh=r.energy_wh,
                current_offered_a=r.current_offered_a,
                context=r.context[:24],
            )
            for r in readings
        ]
    )


NO_PERIOD = "NoPeriod"


def tou_energy_add(tou_energy_wh: dict | None, delta_wh: int, at: datetime) -> dict:
    """Add energy to the TOU period in force at ``at`` (or ``NoPeriod``), SPEC §3.6.

    Energy between two samples is credited to the period of the later one, so a
    period boundary is at most one sample interval off.
    """
    name = tou_period_name_at_minute(at) or NO_PERIOD
    result = dict(tou_energy_wh or {})
    result[name] = int(result.get(name, 0)) + int(delta_wh)
    return result


def _update_live_figures(session: Transaction, readings: Sequence[MeterReading]) -> None:
    changes: dict[str, object] = {}
    registers = [r.energy_wh for r in readings if r.energy_wh is not None]
    if registers and session.meter_start_wh is not None:
        energy_wh = max(0, round(max(registers) - session.meter_start_wh))
        if energy_wh > session.energy_wh:
            changes["energy_wh"] = energy_wh
            latest_at = max(r.sampled_at for r in readings if r.energy_wh is not None)
            changes["tou_energy_wh"] = tou_energy_add(
                session.tou_energy_wh, energy_wh - session.energy_wh, latest_at
            )
    with_current = [r for r in readings if r.currents_a]
    if with_current:
        latest = max(with_current, key=lambda r: r.sampled_at)
        changes["consumption_a"] = Decimal(str(round(max(latest.currents_a), 1)))
        # Only currents with a phase count phases: one without says nothing of them.
        active = max(
            sum(1 for c in r.phase_currents_a if c >= PHASE_ACTIVE_CURRENT_A) for r in with_current
        )
        if active and active > (session.phases_used or 0):
            changes["phases_used"] = active
    if changes:
        Transaction.objects.filter(pk=session.pk).update(**changes)


# --- authentication groups of the stations -------------------------------------
StationGroupsMode = Literal["global", "per_station", "custom"]


def _auth_group_new(name: str) -> AuthGroup:
    group = AuthGroup(name=name)
    group.full_clean()
    group.save()
    return group


def _auth_group_names_per_station(stations: Sequence[Station]) -> dict[int, str]:
    """A distinct group name per station: its name, made unique with its identity if shared."""
    max_length = AuthGroup._meta.get_field("name").max_length
    wanted = {station.pk: station.name or station.identity for station in stations}
    counts = Counter(name.casefold() for name in wanted.values())
    names = {}
    for station in stations:
        name = wanted[station.pk]
        if counts[name.casefold()] > 1:
            suffix = f" ({station.identity})"
            name = name[: max_length - len(suffix)] + suffix
        names[station.pk] = name
    return names


@transaction.atomic
def station_groups_setup(
    *,
    mode: StationGroupsMode,
    global_group_name: str = "",
    user: AbstractBaseUser | None,
) -> list[AuthGroup]:
    """First-installation helper: put every installed station into groups.

    - ``global``: one group (``global_group_name``, by default "All
      stations") holding every installed station;
    - ``per_station``: one group per installed station, named after it;
    - ``custom``: the installer arranges groups by hand; nothing changes.

    Idempotent: existing groups with the wanted names are reused and a second
    run changes nothing. Groups left without stations and the cards' group
    memberships are kept (cards are not copied: assign them to the new groups
    afterwards). Returns the groups the installed stations now use.
    """
    if mode not in ("global", "per_station", "custom"):
        raise ValidationError(
            _("Unknown group set-up %(mode)r: use global, per_station or custom.") % {"mode": mode}
        )
    stations = list(
        Station.objects.select_for_update()
        .filter(state=StationState.INSTALLED)
        .order_by("identity")
    )
    if mode == "custom":
        used = {station.auth_group_id for station in stations}
        return list(AuthGroup.objects.filter(pk__in=used))

    global_name = global_group_name or _("All stations")
    if mode == "global":
        names = dict.fromkeys((station.pk for station in stations), global_name)
        # Created even without stations, so cards can be assigned before they arrive.
        wanted = {global_name}
    else:
        names = _auth_group_names_per_station(stations)
        wanted = set(names.values())

    existing = {g.name: g for g in AuthGroup.objects.filter(name__in=wanted)}
    created: list[AuthGroup] = []
    for name in sorted(wanted - existing.keys()):
        existing[name] = _auth_group_new(name)
        created.append(existing[name])

    moved: list[Station] = []
    old_group_ids: set[int] = set()
    for station in stations:
        target = existing[names[station.pk]]
        if station.auth_group_id != target.pk:
            if station.auth_group_id is not None:
                old_group_ids.add(station.auth_group_id)
            # A plain update: only the group changes, announced below.
            Station.objects.filter(pk=station.pk).update(auth_group=target)
            station.auth_group = target
            moved.append(station)

    groups = sorted((existing[name] for name in wanted), key=lambda g: g.name)
    if created or moved:
        if mode == "global":
            message = _("Authentication groups set up: one global group %(name)s.") % {
                "name": global_name
            }
        else:
            message = _("Authentication groups set up: one group per station.")
        device_log_write(
            category=EventCategory.CONFIGURATION,
            event="station_groups_setup",
            message=message,
            user=user,
            data={
                "mode": mode,
                "created_groups": sorted(group.name for group in created),
                "moved_stations": {s.identity: s.auth_group.name for s in moved},
            },
        )
        announce_groups_changed(
            group_ids={g.pk for g in created} | {s.auth_group_id for s in moved} | old_group_ids,
            station_ids=[s.pk for s in moved],
        )
    return groups


# --- reservations ----------------------------------------------------------------------


def _reservation_log(reservation: Reservation, event: str, message: str, user=None, **data) -> None:
    device_log_write(
        category=EventCategory.COMMUNICATION,
        event=event,
        message=message,
        station_identity=reservation.station.identity,
        user=user,
        data={
            "reservation_id": reservation.pk,
            "connector_id": reservation.connector_id,
            "id_tag": reservation.id_tag,
            **data,
        },
    )


def reservation_create(
    *,
    station: Station,
    connector_id: int,
    id_tag: str,
    expires_at: datetime,
    parent_id_tag: str = "",
    user=None,
) -> Reservation:
    """Record a reservation about to be sent to the station (status *requested*).

    ``ValidationError`` (nothing saved) for a station that is not installed,
    a connector it does not have, a bad id tag or an expiry in the past.
    """
    errors: dict[str, str] = {}
    if station.state != StationState.INSTALLED:
        errors["station"] = _("Only an installed station takes reservations.")
    if connector_id != 0 and not station.connectors.filter(connector_id=connector_id).exists():
        errors["connector_id"] = _("Station %(identity)s has no connector %(connector)d.") % {
            "identity": station.identity,
            "connector": connector_id,
        }
    if expires_at <= timezone.now():
        errors["expires_at"] = _("A reservation must expire in the future.")
    for field, value in (("id_tag", id_tag), ("parent_id_tag", parent_id_tag)):
        if value or field == "id_tag":
            try:
                id_tag_validator(value)
            except ValidationError as exc:
                errors[field] = exc.messages[0]
    if errors:
        raise ValidationError(errors)
    reservation = Reservation.objects.create(
        station=station,
        connector_id=connector_id,
        id_tag=id_tag,
        parent_id_tag=parent_id_tag,
        expires_at=expires_at,
    )
    _reservation_log(
        reservation,
        "reservation_requested",
        _("Reservation %(id)d of %(identity)s/%(connector)d for %(tag)s requested.")
        % {
            "id": reservation.pk,
            "identity": station.identity,
            "connector": connector_id,
            "tag": id_tag,
        },
        user=user,
        expires_at=expires_at.isoformat(),
    )
    return reservation


def reservation_answered(*, reservation: Reservation, answer: str) -> Reservation:
    """The station's answer to ReserveNow: ``Accepted`` makes the reservation active."""
    accepted = answer == "Accepted"
    status = ReservationStatus.ACTIVE if accepted else ReservationStatus.REFUSED
    changes = {"status": status, "station_answer": answer[:80]}
    if not accepted:
        changes["ended_at"] = timezone.now()
    Reservation.objects.filter(pk=reservation.pk, status=ReservationStatus.REQUESTED).update(
        **changes
    )
    reservation.refresh_from_db()
    if not accepted:
        _reservation_log(
            reservation,
            "reservation_refused",
            _("Station %(identity)s refused reservation %(id)d: %(answer)s.")
            % {"identity": reservation.station.identity, "id": reservation.pk, "answer": answer},
            answer=answer,
        )
    return reservation


def reservation_end(*, reservation: Reservation, status: str, user=None, **data) -> bool:
    """End an open reservation as ``cancelled`` or ``expired``; False when it was over already."""
    ended = Reservation.objects.filter(
        pk=reservation.pk, status__in=OPEN_RESERVATION_STATUSES
    ).update(status=status, ended_at=timezone.now())
    reservation.refresh_from_db()
    if ended:
        _reservation_log(
            reservation,
            f"reservation_{status}",
            _("Reservation %(id)d of %(identity)s %(status)s.")
            % {
                "id": reservation.pk,
                "identity": reservation.station.identity,
                "status": reservation.get_status_display().lower(),
            },
            user=user,
            **data,
        )
    return bool(ended)


def reservations_expire(*, now: datetime | None = None) -> int:
    """End every open reservation past its expiry; return how many."""
    now = now or timezone.now()
    due = Reservation.objects.filter(
        status__in=OPEN_RESERVATION_STATUSES, expires_at__lte=now
    ).select_related("station")
    count = 0
    for reservation in due:
        count += reservation_end(reservation=reservation, status=ReservationStatus.EXPIRED)
    return count


def reservation_use(
    *,
    station: Station,
    reservation_id: int,
    connector_id: int,
    id_tag: str,
    parent_id_tag: str = "",
    session: Transaction | None = None,
) -> bool | None:
    """A StartTransaction names ``reservation_id``: end that reservation as *used*.

    True when the reservation is this station's, open, for this connector (or
    any) and for this id tag or its parent; False when it is this station's
    but the tag or connector does not match (the session was not the one the
    connector was held for); None when evce knows no open reservation by that
    id at this station.
    """
    reservation = (
        Reservation.objects.select_for_update()
        .filter(pk=reservation_id, station=station, status__in=OPEN_RESERVATION_STATUSES)
        .select_related("station")
        .first()
    )
    if reservation is None:
        return None
    tag_matches = reservation.id_tag.lower() == id_tag.lower() or bool(
        reservation.parent_id_tag
        and parent_id_tag
        and reservation.parent_id_tag.lower() == parent_id_tag.lower()
    )
    if not tag_matches or reservation.connector_id not in (0, connector_id):
        _reservation_log(
            reservation,
            "reservation_mismatch",
            _(
                "A session on %(identity)s/%(connector)d by %(tag)s named reservation %(id)d, "
                "which is not for it."
            )
            % {
                "identity": station.identity,
                "connector": connector_id,
                "tag": id_tag,
                "id": reservation.pk,
            },
        )
        return False
    Reservation.objects.filter(pk=reservation.pk).update(
        status=ReservationStatus.USED, ended_at=timezone.now(), transaction=session
    )
    return True
