"""The device report of SPEC §10: one zip that support reads to find out what happened.

It holds what identifies this evce and what it runs on, the configuration as a
site file, the state of the stations and meters, the recent device log and the
last OCPP frames of each station. It holds no secret: the site file has none,
stations are described field by field (never their key hash), user accounts
and API tokens are not part of it, and the OCPP log is redacted when written.
"""

from __future__ import annotations

import json
import logging
import platform
import socket
import sys
import tomllib
import zipfile
from dataclasses import asdict
from datetime import datetime
from importlib import metadata
from typing import IO, Any

import django
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.devicelog.selectors import device_log_csv, device_log_recent
from apps.maintenance.signals import device_report_collecting
from apps.meters.models import Meter
from apps.meters.selectors import meter_states
from apps.siteconfig.models import SiteSettings
from apps.stations.models import Connector, OcppMessage, Station
from apps.stations.selectors import stations_online

logger = logging.getLogger(__name__)

#: Device-log entries in the report: the recent history, not the whole log.
REPORT_LOG_ENTRIES = 5000
#: OCPP frames per station in the report.
REPORT_OCPP_MESSAGES = 50

STATION_FIELDS = (
    "identity",
    "name",
    "state",
    "security_profile",
    "vip",
    "vendor",
    "model",
    "serial_number",
    "firmware_version",
    "meter_type",
    "meter_serial_number",
    "status",
    "ip_address",
    "last_boot_at",
    "last_seen_at",
    "installed_at",
)
CONNECTOR_FIELDS = (
    "connector_id",
    "current_type",
    "max_current_a",
    "phase_wiring",
    "status",
    "error_code",
    "status_info",
    "status_at",
)


def evce_version() -> str:
    """The installed evce's version, else the one of the source tree's ``pyproject.toml``."""
    try:
        return metadata.version("evce")
    except metadata.PackageNotFoundError:
        pass
    pyproject = settings.BASE_DIR / "pyproject.toml"
    try:
        with open(pyproject, "rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, ValueError):
        return "unknown"


def database_version() -> str:
    """The database engine and its server's version, e.g. ``postgresql 16.4``."""
    query = "SELECT sqlite_version()" if connection.vendor == "sqlite" else "SHOW server_version"
    with connection.cursor() as cursor:
        cursor.execute(query)
        version = str(cursor.fetchone()[0])
    return f"{connection.vendor} {version}"


def report_identification(*, now: datetime) -> dict[str, Any]:
    """Who this evce is and what it runs on."""
    site = SiteSettings.load()
    return {
        "device_name": site.name,
        "host_name": socket.gethostname(),
        "generated_at": now.isoformat(),
        "time_zone": settings.TIME_ZONE,
        "versions": {
            "evce": evce_version(),
            "python": sys.version.split()[0],
            "django": django.get_version(),
            "database": database_version(),
        },
        "platform": platform.platform(),
        "stations": Station.objects.count(),
        "meters": Meter.objects.count(),
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def report_stations() -> list[dict[str, Any]]:
    """Each station's identification and state, with its connectors, and whether it is online."""
    try:
        online = stations_online()
    except Exception as exc:  # Redis down: say so rather than fail the report
        logger.warning("Device report without the stations' presence: %s", exc)
        online = None
    connectors: dict[int, list[dict[str, Any]]] = {}
    for row in Connector.objects.order_by("station_id", "connector_id").values(
        "station_id", *CONNECTOR_FIELDS
    ):
        station_id = row.pop("station_id")
        connectors.setdefault(station_id, []).append(
            {key: _json_value(value) for key, value in row.items()}
        )
    stations = []
    for row in Station.objects.order_by("identity").values("id", "zone__name", *STATION_FIELDS):
        station_id = row.pop("id")
        entry = {key: _json_value(value) for key, value in row.items()}
        entry["zone"] = entry.pop("zone__name")
        entry["online"] = None if online is None else row["identity"] in online
        entry["connectors"] = connectors.get(station_id, [])
        stations.append(entry)
    return stations


def report_meters() -> list[dict[str, Any]]:
    """Each meter's connection and what the poller last knew of it."""
    meters = list(Meter.objects.select_related("model").order_by("name"))
    try:
        states = meter_states([m.pk for m in meters])
    except Exception as exc:  # Redis down
        logger.warning("Device report without the meters' states: %s", exc)
        states = {}
    listed = []
    for meter in meters:
        state = states.get(meter.pk)
        listed.append(
            {
                "name": meter.name,
                "model": meter.model.name,
                "connection_type": meter.connection_type,
                "state": None
                if state is None
                else {key: _json_value(value) for key, value in asdict(state).items()},
            }
        )
    return listed


def _ocpp_lines(identity: str) -> str:
    frames = OcppMessage.objects.filter(station_identity=identity).order_by("-at", "-id")
    rows = frames.values("at", "direction", "message_type", "unique_id", "action", "payload")
    lines = [
        json.dumps({key: _json_value(v) if key != "payload" else v for key, v in row.items()})
        for row in reversed(list(rows[:REPORT_OCPP_MESSAGES]))
    ]
    return "".join(f"{line}\n" for line in lines)


def device_report_write(out: IO[bytes], *, now: datetime | None = None) -> None:
    """Write the device report as a zip to ``out``.

    The configuration (``configuration.yaml``, the site file) comes from the
    receivers of :data:`device_report_collecting`: the site file is an
    interface above this app.
    """
    now = now or timezone.now()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:

        def put_json(name: str, value: Any) -> None:
            archive.writestr(name, json.dumps(value, indent=2, ensure_ascii=False) + "\n")

        put_json("identification.json", report_identification(now=now))
        for _receiver, files in device_report_collecting.send(sender=None):
            for name, text in (files or {}).items():
                archive.writestr(name, text)
        put_json("stations.json", report_stations())
        put_json("meters.json", report_meters())
        entries = device_log_recent(limit=REPORT_LOG_ENTRIES)
        archive.writestr("device-log.csv", "".join(device_log_csv(entries)))
        for identity in Station.objects.order_by("identity").values_list("identity", flat=True):
            archive.writestr(f"ocpp/{_file_safe(identity)}.jsonl", _ocpp_lines(identity))


def _file_safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text).lstrip(".") or "_"


def device_report_filename(*, now: datetime | None = None) -> str:
    """``evce-report-<device name>-<YYYYmmdd-HHMMSS>.zip`` (the name made file-safe)."""
    now = timezone.localtime(now or timezone.now())
    return f"evce-report-{_file_safe(SiteSettings.load().name)}-{now:%Y%m%d-%H%M%S}.zip"
