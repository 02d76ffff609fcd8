"""The site file and the settings admin write through the same services as every interface."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from apps.devicelog.models import DeviceLogEntry
from apps.siteconfig.models import SiteSettings
from apps.siteconfig.services import site_settings_update
from apps.sitefile.sitefile import site_import
from apps.stations.models import Station, StationState
from tests.rfid.factories import AuthGroupFactory
from tests.stations.factories import DiscoveredStationFactory

pytestmark = pytest.mark.django_db

ONE_STATION = """\
zones:
  - {name: Car park, max_current_a: 63}
auth_groups:
  - {name: Staff}
stations:
  - identity: CP-FILE
    name: Bay 1
    zone: Car park
    group: Staff
    connectors: [{id: 1, max_current_a: 32}]
"""


def events() -> list[str]:
    return list(DeviceLogEntry.objects.order_by("id").values_list("event", flat=True))


# --- site settings: the service, the admin, the site file ------------------------------


def test_settings_are_validated_and_only_changes_logged():
    with pytest.raises(ValidationError):
        site_settings_update(reduction_trigger_a=Decimal(2), reduction_gap_a=Decimal(5))
    assert not DeviceLogEntry.objects.exists()
    site_settings_update(heartbeat_interval_s=600)
    site_settings_update(heartbeat_interval_s=600)
    assert SiteSettings.load().heartbeat_interval_s == 600
    assert events() == ["site_settings_updated"]
    with pytest.raises(TypeError):
        site_settings_update(shared_authorization_key_hash="x")


def test_settings_saved_in_the_admin_are_logged(admin_client):
    site = SiteSettings.load()
    url = reverse("admin:siteconfig_sitesettings_change", args=[site.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {
        name: ("on" if value is True else value)
        for name, value in form.initial.items()
        if value not in (None, False)
    }
    data["heartbeat_interval_s"] = 700
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert SiteSettings.load().heartbeat_interval_s == 700
    entry = DeviceLogEntry.objects.get(event="site_settings_updated")
    assert entry.username == "admin" and "heartbeat_interval_s" in entry.data["changes"]


def test_settings_from_the_site_file_are_logged():
    site_import("site: {heartbeat_interval_s: 900}\n")
    assert "site_settings_updated" in events()


# --- stations through the site file --------------------------------------------------


def test_a_station_installed_by_the_site_file_is_logged_and_told(
    django_capture_on_commit_callbacks,
):
    DiscoveredStationFactory(identity="CP-FILE")
    with django_capture_on_commit_callbacks() as callbacks:
        site_import(ONE_STATION)
    station = Station.objects.get(identity="CP-FILE")
    assert station.state == StationState.INSTALLED
    entry = DeviceLogEntry.objects.get(event="station_installed")
    assert entry.station_identity == "CP-FILE"
    assert any(getattr(c, "args", None) == ("CP-FILE", "installed") for c in callbacks)


def test_a_new_station_of_the_site_file_is_declared_then_installed():
    site_import(ONE_STATION)
    assert [e for e in events() if e.startswith("station_")] == [
        "station_declared",
        "station_installed",
    ]


def test_reimporting_leaves_an_installed_station_unlogged_and_untold(
    django_capture_on_commit_callbacks,
):
    site_import(ONE_STATION)
    DeviceLogEntry.objects.all().delete()
    with django_capture_on_commit_callbacks() as callbacks:
        site_import(ONE_STATION)
    assert events() == ["site_imported"]
    assert not any(getattr(c, "args", (None, None))[1:] == ("installed",) for c in callbacks)


def test_a_changed_station_in_the_site_file_is_logged_by_the_station_service():
    site_import(ONE_STATION)
    site_import(ONE_STATION.replace("name: Bay 1", "name: Bay 1b"))
    entry = DeviceLogEntry.objects.filter(event="station_updated").get()
    assert "name" in entry.data["changes"]


# --- groups and cards through the site file --------------------------------------------


def test_groups_and_cards_of_the_site_file_are_logged_by_their_services():
    AuthGroupFactory(name="Staff")
    site_import(
        "auth_groups:\n  - {name: Staff, online: reader_disabled}\n"
        "cards:\n  - {id_tag: 04A1, groups: [Staff]}\n"
    )
    assert {"auth_group_updated", "card_created"} <= set(events())


def test_zones_of_the_site_file_are_logged_by_the_zone_service():
    site_import(ONE_STATION)
    assert "zone_created" in events()
