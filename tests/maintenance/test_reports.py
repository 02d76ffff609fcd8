"""The device report (SPEC §10): what the zip holds, and that it holds no secret."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import zipfile
from datetime import UTC, datetime, timedelta

import django
import pytest
import redis
import yaml

from apps.accounts.services import user_token_renew
from apps.devicelog.models import EventCategory
from apps.devicelog.services import device_log_write
from apps.maintenance.reports import (
    REPORT_OCPP_MESSAGES,
    device_report_filename,
    device_report_write,
    evce_version,
)
from apps.siteconfig.models import SiteSettings
from apps.stations import presence
from apps.stations.models import Station
from apps.stations.services import station_authorization_key_adopt
from evce_site import hotstate
from tests.accounts.factories import STRONG_PASSWORD, AdminFactory, UserFactory
from tests.conftest import free_port
from tests.meters.factories import MeterFactory
from tests.stations.factories import ConnectorFactory, OcppMessageFactory, StationFactory
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
STATION_KEY = "Station-Key-0123456789abcdef"


def _report() -> zipfile.ZipFile:
    out = io.BytesIO()
    device_report_write(out, now=T0)
    out.seek(0)
    return zipfile.ZipFile(out)


@pytest.fixture
def site(hot_state):
    zone = ZoneFactory(name="Car park", max_current_a=63)
    station = StationFactory(identity="CP-A", name="Bay A", zone=zone, firmware_version="1.2.3")
    ConnectorFactory(station=station, connector_id=1)
    StationFactory(identity="CP-B", zone=zone)
    MeterFactory(name="main")
    return station


def test_the_report_holds_identification_versions_configuration_states_and_logs(site):
    SiteSettings.objects.filter(pk=SiteSettings.load().pk).update(name="Garage Nord")
    device_log_write(
        category=EventCategory.COMMUNICATION,
        event="station_connected",
        message="CP-A connected.",
        station_identity="CP-A",
    )
    for n in range(REPORT_OCPP_MESSAGES + 5):
        OcppMessageFactory(station_identity="CP-A", at=T0 + timedelta(seconds=n))
    OcppMessageFactory(station_identity="CP-B", action="BootNotification", at=T0)

    report = _report()
    names = set(report.namelist())
    assert {
        "identification.json",
        "configuration.yaml",
        "stations.json",
        "meters.json",
        "device-log.csv",
        "ocpp/CP-A.jsonl",
        "ocpp/CP-B.jsonl",
    } <= names

    ident = json.loads(report.read("identification.json"))
    assert ident["device_name"] == "Garage Nord"
    assert ident["generated_at"] == T0.isoformat()
    versions = ident["versions"]
    assert versions["evce"] == evce_version() != "unknown"
    assert versions["python"] == sys.version.split()[0]
    assert versions["django"] == django.get_version()
    assert versions["database"].split()[0] in ("sqlite", "postgresql")

    configuration = yaml.safe_load(report.read("configuration.yaml"))
    assert "site" in configuration and configuration["zones"][0]["name"] == "Car park"

    stations = {s["identity"]: s for s in json.loads(report.read("stations.json"))}
    assert stations["CP-A"]["firmware_version"] == "1.2.3"
    assert stations["CP-A"]["zone"] == "Car park"
    assert stations["CP-A"]["online"] is False
    assert [c["connector_id"] for c in stations["CP-A"]["connectors"]] == [1]
    meters = json.loads(report.read("meters.json"))
    assert meters[0]["name"] == "main" and meters[0]["state"]["status"]

    log = list(csv.DictReader(io.StringIO(report.read("device-log.csv").decode())))
    assert "station_connected" in {row["event"] for row in log}

    frames = [json.loads(line) for line in report.read("ocpp/CP-A.jsonl").splitlines()]
    assert len(frames) == REPORT_OCPP_MESSAGES  # the last ones, oldest first
    assert frames[-1]["at"] == (T0 + timedelta(seconds=REPORT_OCPP_MESSAGES + 4)).isoformat()
    assert frames[0]["at"] == (T0 + timedelta(seconds=5)).isoformat()
    assert json.loads(report.read("ocpp/CP-B.jsonl"))["action"] == "BootNotification"

    assert device_report_filename(now=T0).startswith("evce-report-Garage_Nord-20260310-")


def test_the_report_holds_no_secret(site):
    admin = AdminFactory(username="root")
    ebms = UserFactory(username="bms", role="ebms")
    token = user_token_renew(ebms, by=admin)
    station_authorization_key_adopt(station=site, key=STATION_KEY, user=admin)
    key_hash = Station.objects.get(pk=site.pk).authorization_key_hash
    assert key_hash and admin.password

    report = _report()
    everything = b"".join(report.read(name) for name in report.namelist()).decode()
    # The entries about these secrets are there, the secrets are not.
    assert "station_key_changed" in everything and "api_token" in everything
    for secret in (STATION_KEY, key_hash, token, admin.password, ebms.password, STRONG_PASSWORD):
        assert secret not in everything
    assert "pbkdf2" not in everything and "md5$" not in everything


def test_the_report_comes_out_without_redis(site, monkeypatch):
    """Support needs the report most when something is broken: presence is then unknown."""
    nothing_listens = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=1)
    monkeypatch.setattr(hotstate, "_client", nothing_listens)
    monkeypatch.setattr(hotstate, "_client_pid", os.getpid())
    monkeypatch.setattr(presence, "_sync_client", nothing_listens)
    report = _report()
    assert {s["online"] for s in json.loads(report.read("stations.json"))} == {None}
    assert json.loads(report.read("meters.json"))[0]["state"] is None
