from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from apps.maintenance.models import DeviceLogEntry, EventCategory, EventLevel
from apps.maintenance.services import device_log_write, purge_expired_records
from apps.siteconfig.models import SiteSettings
from apps.stations.models import MeterSample, OcppMessage, Transaction
from tests.accounts.factories import AdminFactory
from tests.stations.factories import MeterSampleFactory, OcppMessageFactory, TransactionFactory

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


def test_purge_deletes_old_raw_records_and_keeps_recent_ones_and_cdrs():
    now = timezone.now()
    old_tx = TransactionFactory(
        started_at=now - timedelta(days=400), stopped_at=now - timedelta(days=399)
    )
    old_message = OcppMessageFactory(at=now - timedelta(days=31))
    recent_message = OcppMessageFactory(at=now - timedelta(days=29))
    old_sample = MeterSampleFactory(transaction=old_tx, sampled_at=now - timedelta(days=399))
    recent_sample = MeterSampleFactory(sampled_at=now - timedelta(days=89))

    assert purge_expired_records(now=now) == {"ocpp_messages": 1, "meter_samples": 1}

    assert list(OcppMessage.objects.all()) == [recent_message]
    assert list(MeterSample.objects.all()) == [recent_sample]
    assert not OcppMessage.objects.filter(pk=old_message.pk).exists()
    assert not MeterSample.objects.filter(pk=old_sample.pk).exists()
    assert Transaction.objects.filter(pk=old_tx.pk).exists()
    assert Transaction.objects.count() == 2


def test_purge_follows_the_retention_settings():
    site = SiteSettings.load()
    site.ocpp_log_retention_days = 1
    site.meter_sample_retention_days = 2
    site.save()
    now = timezone.now()
    OcppMessageFactory(at=now - timedelta(hours=25))
    OcppMessageFactory(at=now - timedelta(hours=23))
    MeterSampleFactory(sampled_at=now - timedelta(hours=49))
    MeterSampleFactory(sampled_at=now - timedelta(hours=47))

    assert purge_expired_records(now=now) == {"ocpp_messages": 1, "meter_samples": 1}
    assert OcppMessage.objects.count() == 1
    assert MeterSample.objects.count() == 1


def test_purge_never_deletes_transactions_however_old():
    now = timezone.now()
    TransactionFactory.create_batch(
        3, started_at=now - timedelta(days=3650), stopped_at=now - timedelta(days=3649)
    )
    purge_expired_records(now=now)
    assert Transaction.objects.count() == 3
