from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.devicelog.models import DeviceLogEntry, EventCategory, EventLevel
from apps.devicelog.services import (
    configuration_deleted_log,
    configuration_save_logged,
    device_log_write,
    fields_assign,
    object_save_logged,
    settings_only,
)
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


class _Row:
    """Stands for a model row: counts validations and saves, refuses an empty name."""

    def __init__(self, name: str) -> None:
        self.name, self.saved = name, 0

    def full_clean(self) -> None:
        if not self.name:
            raise ValidationError({"name": ["must not be empty"]})

    def save(self) -> None:
        self.saved += 1


def test_an_object_is_saved_and_logged_once_when_changed_and_left_alone_otherwise():
    row = _Row("Bay 1")
    entry = {"category": EventCategory.CONFIGURATION, "event": "row_updated", "message": "x"}

    assert object_save_logged(row, {}, **entry) is False
    assert (row.saved, DeviceLogEntry.objects.count()) == (0, 0)

    assert object_save_logged(row, {}, created=True, **entry) is True
    assert object_save_logged(row, {"name": ["Bay 0", "Bay 1"]}, **entry) is True
    assert (row.saved, DeviceLogEntry.objects.count()) == (2, 2)

    row.name = ""
    with pytest.raises(ValidationError):
        object_save_logged(row, {"name": ["Bay 1", ""]}, **entry)
    assert (row.saved, DeviceLogEntry.objects.count()) == (2, 2)


def test_configuration_entries_name_the_object_and_what_changed():
    row = _Row("Bay 1")
    configuration_save_logged(row, {}, created=True, kind="row", label="Row Bay 1")
    changes = {"name": ["Bay 1", "Bay 2"], "vip": [False, True]}
    configuration_save_logged(row, changes, created=False, kind="row", label="Row Bay 2")
    configuration_deleted_log(kind="row", label="Row Bay 2", zone_name="Main")

    entries = list(DeviceLogEntry.objects.order_by("pk").values("event", "message", "data"))
    assert entries == [
        {"event": "row_created", "message": "Row Bay 1 created.", "data": {"changes": {}}},
        {
            "event": "row_updated",
            "message": "Row Bay 2 changed: name, vip.",
            "data": {"changes": changes},
        },
        {"event": "row_deleted", "message": "Row Bay 2 deleted.", "data": {}},
    ]
    assert DeviceLogEntry.objects.get(event="row_deleted").zone_name == "Main"


def test_names_a_writer_does_not_set_are_refused():
    settings_only({"name": "A"}, ("name", "vip"), what="row settings")
    with pytest.raises(TypeError, match="not row settings: colour, size"):
        settings_only({"name": "A", "size": 1, "colour": 2}, ("name",), what="row settings")
