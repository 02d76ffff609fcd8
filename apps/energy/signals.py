"""Configuration changes that alter what the allocator must do ask for a re-allocation."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

# Fields a station reports; their change is a session event, not a configuration change.
REPORTED_CONNECTOR_FIELDS = frozenset({"status", "error_code", "status_info", "status_at"})
REPORTED_STATION_FIELDS = frozenset({"status", "last_seen_at", "ip_address"})


def _request(reason: str) -> None:
    from apps.energy.services import rebalance_request

    transaction.on_commit(lambda: rebalance_request(reason=reason))


def _on_change(sender, **kwargs) -> None:
    update_fields = kwargs.get("update_fields")
    reported = {"Connector": REPORTED_CONNECTOR_FIELDS, "Station": REPORTED_STATION_FIELDS}.get(
        sender.__name__
    )
    if reported and update_fields and set(update_fields) <= reported:
        _request("session")
        return
    _request("config")


def _on_session(sender, **kwargs) -> None:
    """A session started, stopped or changed state: arrivals and departures re-rank."""
    _request("session")


def connect() -> None:
    from apps.siteconfig.models import SiteSettings
    from apps.stations.models import Connector, Station, Transaction
    from apps.zones.models import EbmsReduction, ExternalInput, TouPeriod, TouSlot, Zone

    for model in (
        SiteSettings,
        Zone,
        Station,
        Connector,
        TouPeriod,
        TouSlot,
        ExternalInput,
        EbmsReduction,
    ):
        post_save.connect(_on_change, sender=model, dispatch_uid=f"energy-{model.__name__}-save")
        post_delete.connect(
            _on_change, sender=model, dispatch_uid=f"energy-{model.__name__}-delete"
        )
    m2m_changed.connect(_on_change, sender=TouPeriod.zones.through, dispatch_uid="energy-tou-zones")
    post_save.connect(_on_session, sender=Transaction, dispatch_uid="energy-Transaction-save")
