from datetime import timedelta

import pytest
from django.utils import timezone

from apps.maintenance.services import purge_expired_records
from apps.siteconfig.models import SiteSettings
from apps.stations.models import MeterSample, OcppMessage, Transaction
from tests.stations.factories import MeterSampleFactory, OcppMessageFactory, TransactionFactory

pytestmark = pytest.mark.django_db


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
