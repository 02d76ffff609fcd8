from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from apps.devicelog.models import DeviceLogEntry, EventCategory, EventLevel
from apps.devicelog.services import device_log_write, fields_assign
from tests.accounts.factories import AdminFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Hashing strength is not what these tests are about.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_device_log_write_records_who_did_what():
    admin = AdminFactory(username="alice")
    before = timezone.now()
    entry = device_log_write(
        category=EventCategory.SECURITY,
        event="login_failed",
        message="Failed login for alice.",
        level=EventLevel.WARNING,
        station_identity="CP001",
        zone_name="Level -1",
        user=admin,
        remote_addr="192.0.2.7",
        data={"attempt": 3},
    )
    entry = DeviceLogEntry.objects.get(pk=entry.pk)
    assert before <= entry.at <= timezone.now()
    assert (entry.category, entry.level, entry.event) == ("security", "warning", "login_failed")
    assert (entry.station_identity, entry.zone_name) == ("CP001", "Level -1")
    assert (entry.user, entry.username, entry.remote_addr) == (admin, "alice", "192.0.2.7")
    assert entry.data == {"attempt": 3}


def test_device_log_write_defaults_to_an_anonymous_information():
    entry = device_log_write(
        category=EventCategory.COMMUNICATION, event="meter_lost", message="Meter main lost."
    )
    assert entry.level == EventLevel.INFO
    assert entry.user is None
    assert entry.username == ""
    assert entry.data == {}


def test_device_log_write_accepts_an_anonymous_request_user():
    entry = device_log_write(
        category=EventCategory.SECURITY, event="login_failed", message="x", user=AnonymousUser()
    )
    assert entry.user is None
    assert entry.username == ""


def test_a_log_entry_keeps_the_user_name_after_the_user_is_deleted():
    admin = AdminFactory(username="bob")
    entry = device_log_write(
        category=EventCategory.CONFIGURATION, event="zone_changed", message="x", user=admin
    )
    admin.delete()
    entry.refresh_from_db()
    assert entry.user is None
    assert entry.username == "bob"


def test_the_log_kept_its_table_and_its_content_type_follows_the_model():
    """Moved from maintenance: the same table, permissions under the new app."""
    assert DeviceLogEntry._meta.db_table == "maintenance_devicelogentry"
    assert ContentType.objects.get_for_model(DeviceLogEntry).app_label == "devicelog"
    assert not ContentType.objects.filter(app_label="maintenance", model="devicelogentry").exists()


def test_fields_assign_reports_only_what_changed_in_loggable_form():
    row = SimpleNamespace(name="Bay 1", max_current_a=Decimal("32"), vip=False)
    changes = fields_assign(row, {"name": "Bay 1", "max_current_a": Decimal("16"), "vip": True})
    assert changes == {"max_current_a": ["32", "16"], "vip": [False, True]}
    assert (row.max_current_a, row.vip) == (Decimal("16"), True)
    assert fields_assign(row, {"name": "Bay 1", "vip": True}) == {}
