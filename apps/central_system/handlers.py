"""Handlers of the CALLs a station sends (CP → CS), one per action.

Each takes the connection's session and a payload that already passed the
OCPP schema, calls the services, and returns the CALLRESULT payload. They
run in a worker thread (they use the ORM); the consumer stays thin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import (
    AuthorizationStatus,
    ChargePointStatus,
    GenericStatus,
    Reason,
    RegistrationStatus,
)

from apps.central_system import services, signals
from apps.central_system.authorization import Authorization, authorize_id_tag
from apps.central_system.commands import Command
from apps.central_system.metering import parse_meter_values
from apps.central_system.protocol import ErrorCode, OcppError, parse_ocpp_datetime, utc_now_text
from apps.devicelog.models import EventCategory, EventLevel
from apps.devicelog.services import device_log_write
from apps.siteconfig.models import SiteSettings
from apps.stations import services as stations
from apps.stations.models import Station


@dataclass(frozen=True, slots=True)
class Session:
    """What a handler knows about the connection a CALL came on."""

    identity: str
    station_id: int | None
    remote_addr: str | None = None

    def station(self) -> Station:
        station = Station.objects.filter(pk=self.station_id).first()
        if station is None:
            raise OcppError(ErrorCode.SECURITY_ERROR, "This station is no longer known.")
        return station

    def station_ref(self) -> Station:
        """A reference for foreign keys and identity, without a query."""
        if self.station_id is None:
            raise OcppError(ErrorCode.SECURITY_ERROR, "This station is not accepted.")
        return Station(pk=self.station_id, identity=self.identity)


@dataclass(slots=True)
class Outcome:
    response: dict[str, Any]
    station_id: int | None = None
    accepted: bool | None = None
    # Commands to send the station once the response is out.
    followups: list[Command] = field(default_factory=list)


def _timestamp(payload: dict[str, Any], key: str = "timestamp"):
    value = payload.get(key)
    return (parse_ocpp_datetime(value) if value else None) or timezone.now()


def boot_notification(session: Session, payload: dict[str, Any]) -> Outcome:
    info = stations.StationInfo(
        vendor=payload["chargePointVendor"],
        model=payload["chargePointModel"],
        serial_number=payload.get("chargePointSerialNumber")
        or payload.get("chargeBoxSerialNumber", ""),
        firmware_version=payload.get("firmwareVersion", ""),
        iccid=payload.get("iccid", ""),
        imsi=payload.get("imsi", ""),
        meter_type=payload.get("meterType", ""),
        meter_serial_number=payload.get("meterSerialNumber", ""),
    )
    station, _created = stations.station_boot(
        identity=session.identity, info=info, remote_addr=session.remote_addr
    )
    status = services.registration_status(station)
    site = SiteSettings.load()
    accepted = status == RegistrationStatus.accepted
    if accepted:
        services.station_authentication_check(station.pk, booted=True)
    return Outcome(
        {
            "status": str(status),
            "currentTime": utc_now_text(),
            "interval": site.heartbeat_interval_s,
        },
        station_id=station.pk,
        accepted=accepted,
        followups=(
            [
                command
                for _receiver, boot_commands in signals.station_booted.send(
                    sender=Station, station=station
                )
                for command in boot_commands
            ]
            + services.station_configuration_commands(station, site)
            if accepted
            else []
        ),
    )


def heartbeat(session: Session, payload: dict[str, Any]) -> Outcome:
    return Outcome({"currentTime": utc_now_text()})


def status_notification(session: Session, payload: dict[str, Any]) -> Outcome:
    stations.connector_status_update(
        station=session.station_ref(),
        connector_id=payload["connectorId"],
        status=payload["status"],
        error_code=payload["errorCode"],
        info=payload.get("info", "") or payload.get("vendorErrorCode", ""),
        at=_timestamp(payload),
    )
    if payload["status"] == ChargePointStatus.preparing:
        services.car_plugged_in(session.station_ref().pk, payload["connectorId"])
    return Outcome({})


def authorize(session: Session, payload: dict[str, Any]) -> Outcome:
    info = authorize_id_tag(session.station(), payload["idTag"])
    return Outcome({"idTagInfo": info.as_ocpp()})


def start_transaction(session: Session, payload: dict[str, Any]) -> Outcome:
    if payload["connectorId"] < 1:
        raise OcppError(
            ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
            "connectorId: a transaction needs connector > 0.",
        )
    station = session.station()
    info = authorize_id_tag(station, payload["idTag"])
    session_row = stations.transaction_start(
        station=station,
        connector_id=payload["connectorId"],
        id_tag=payload["idTag"],
        meter_start_wh=payload["meterStart"],
        started_at=_timestamp(payload),
        card=info.card,
        reservation_id=payload.get("reservationId"),
    )
    if payload.get("reservationId") is not None and info.accepted:
        used = stations.reservation_use(
            station=station,
            reservation_id=payload["reservationId"],
            connector_id=payload["connectorId"],
            id_tag=payload["idTag"],
            parent_id_tag=info.id_tag_info.parent_id_tag or "",
            session=session_row,
        )
        if used is False:
            # The connector was held for someone else: not this driver's session.
            info = Authorization(IdTagInfo(AuthorizationStatus.invalid), card=info.card)
    return Outcome({"transactionId": session_row.pk, "idTagInfo": info.as_ocpp()})


def stop_transaction(session: Session, payload: dict[str, Any]) -> Outcome:
    station = session.station()
    stations.transaction_stop(
        station=station,
        transaction_id=payload["transactionId"],
        meter_stop_wh=payload["meterStop"],
        stopped_at=_timestamp(payload),
        reason=payload.get("reason", Reason.local),
        id_tag=payload.get("idTag", ""),
        readings=parse_meter_values(payload.get("transactionData") or []),
    )
    response: dict[str, Any] = {}
    if payload.get("idTag"):
        response["idTagInfo"] = authorize_id_tag(station, payload["idTag"], touch=False).as_ocpp()
    return Outcome(response)


def meter_values(session: Session, payload: dict[str, Any]) -> Outcome:
    stations.meter_values_record(
        station=session.station_ref(),
        connector_id=payload["connectorId"],
        transaction_id=payload.get("transactionId"),
        readings=parse_meter_values(payload["meterValue"]),
    )
    return Outcome({})


def data_transfer(session: Session, payload: dict[str, Any]) -> Outcome:
    # No vendor extension is implemented: OCPP's answer for that is UnknownVendorId.
    return Outcome({"status": "UnknownVendorId"})


def _log_notification(
    session: Session,
    event: str,
    message: str,
    payload: dict[str, Any],
    *,
    category: str = EventCategory.COMMUNICATION,
    level: str = EventLevel.INFO,
) -> None:
    device_log_write(
        category=category,
        level=level,
        event=event,
        message=message,
        station_identity=session.identity,
        remote_addr=session.remote_addr,
        data=payload,
    )


def diagnostics_status_notification(session: Session, payload: dict[str, Any]) -> Outcome:
    _log_notification(
        session,
        "diagnostics_status",
        _("Diagnostics upload: %(status)s.") % {"status": payload["status"]},
        payload,
    )
    return Outcome({})


def firmware_status_notification(session: Session, payload: dict[str, Any]) -> Outcome:
    _log_notification(
        session,
        "firmware_status",
        _("Firmware update: %(status)s.") % {"status": payload["status"]},
        payload,
    )
    return Outcome({})


def security_event_notification(session: Session, payload: dict[str, Any]) -> Outcome:
    _log_notification(
        session,
        "station_security_event",
        _("Security event reported by the station: %(type)s.") % {"type": payload["type"]},
        payload,
        category=EventCategory.SECURITY,
        level=EventLevel.WARNING,
    )
    return Outcome({})


def sign_certificate(session: Session, payload: dict[str, Any]) -> Outcome:
    # Accepted: the request is kept in the device log for the certificate workflow.
    _log_notification(
        session,
        "certificate_signing_request",
        _("The station asks for its client certificate to be signed."),
        {"csr": payload["csr"]},
        category=EventCategory.SECURITY,
    )
    return Outcome({"status": GenericStatus.accepted})


def signed_firmware_status_notification(session: Session, payload: dict[str, Any]) -> Outcome:
    _log_notification(
        session,
        "signed_firmware_status",
        _("Signed firmware update: %(status)s.") % {"status": payload["status"]},
        payload,
        category=EventCategory.SECURITY
        if payload["status"] in {"InvalidCertificate", "RevokedCertificate", "InvalidSignature"}
        else EventCategory.COMMUNICATION,
    )
    return Outcome({})


def log_status_notification(session: Session, payload: dict[str, Any]) -> Outcome:
    _log_notification(
        session,
        "log_upload_status",
        _("Log upload: %(status)s.") % {"status": payload["status"]},
        payload,
    )
    return Outcome({})


HANDLERS: dict[str, Callable[[Session, dict[str, Any]], Outcome]] = {
    "BootNotification": boot_notification,
    "Heartbeat": heartbeat,
    "StatusNotification": status_notification,
    "Authorize": authorize,
    "StartTransaction": start_transaction,
    "StopTransaction": stop_transaction,
    "MeterValues": meter_values,
    "DataTransfer": data_transfer,
    "DiagnosticsStatusNotification": diagnostics_status_notification,
    "FirmwareStatusNotification": firmware_status_notification,
    "SecurityEventNotification": security_event_notification,
    "SignCertificate": sign_certificate,
    "SignedFirmwareStatusNotification": signed_firmware_status_notification,
    "LogStatusNotification": log_status_notification,
}


# Handlers that only read the clock: no thread hop, no database transaction.
_NO_DATABASE = {"Heartbeat", "DataTransfer"}


def uses_database(action: str) -> bool:
    return action not in _NO_DATABASE


def handle(action: str, session: Session, payload: dict[str, Any]) -> Outcome:
    """Run one handler; its writes commit together (one commit per CALL, not per row)."""
    handler = HANDLERS[action]
    if action in _NO_DATABASE:
        return handler(session, payload)
    with transaction.atomic():
        return handler(session, payload)
