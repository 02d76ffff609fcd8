"""Pruning old records."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.siteconfig.models import SiteSettings
from apps.stations.models import MeterSample, OcppMessage


def purge_expired_records(*, now=None) -> dict[str, int]:
    """Delete raw records older than their retention (CDRs are kept forever)."""
    now = now or timezone.now()
    site = SiteSettings.load()
    ocpp_cutoff = now - timedelta(days=site.ocpp_log_retention_days)
    sample_cutoff = now - timedelta(days=site.meter_sample_retention_days)
    ocpp_deleted, _ = OcppMessage.objects.filter(at__lt=ocpp_cutoff).delete()
    samples_deleted, _ = MeterSample.objects.filter(sampled_at__lt=sample_cutoff).delete()
    return {"ocpp_messages": ocpp_deleted, "meter_samples": samples_deleted}
