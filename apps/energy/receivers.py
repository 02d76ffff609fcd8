"""What the load manager does when the apps it builds on change: it looks again.

Configuration changes that alter what the allocator must do, sessions that
start or stop, meters, zone limits and station connections all end in a
re-allocation request; a station that boots gets its fallback profiles.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from apps.central_system.commands import Command
from apps.central_system.signals import station_booted, station_connected, station_disconnected
from apps.energy import state
from apps.energy.services import fallback_commands, rebalance_request
from apps.meters.signals import meter_state_changed
from apps.siteconfig.models import SiteSettings
from apps.stations.models import Connector, Station, Transaction
from apps.zones.models import EbmsReduction, ExternalInput, TouPeriod, TouSlot, Zone
from apps.zones.signals import zone_limits_changed

# Fields a station reports; their change is a session event, not a configuration change.
REPORTED_CONNECTOR_FIELDS = frozenset({"status", "error_code", "status_info", "status_at"})
REPORTED_STATION_FIELDS = frozenset({"status", "last_seen_at", "ip_address"})


def _request(reason: str) -> None:
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


for _model in (
    SiteSettings,
    Zone,
    Station,
    Connector,
    TouPeriod,
    TouSlot,
    ExternalInput,
    EbmsReduction,
):
    post_save.connect(_on_change, sender=_model, dispatch_uid=f"energy-{_model.__name__}-save")
    post_delete.connect(_on_change, sender=_model, dispatch_uid=f"energy-{_model.__name__}-delete")
m2m_changed.connect(_on_change, sender=TouPeriod.zones.through, dispatch_uid="energy-tou-zones")
post_save.connect(_on_session, sender=Transaction, dispatch_uid="energy-Transaction-save")


@receiver(meter_state_changed, dispatch_uid="energy-meter-state")
def meter_state_changed_rebalance(sender, **kwargs) -> None:
    rebalance_request(reason="meter")


@receiver(zone_limits_changed, dispatch_uid="energy-zone-limits")
def zone_limits_changed_rebalance(sender, *, reason: str, **kwargs) -> None:
    rebalance_request(reason=reason)


@receiver(station_connected, dispatch_uid="energy-station-connected")
def station_connected_rebalance(sender, *, identity: str, connector_ids, **kwargs) -> None:
    """What the station held while away is unknown: its profiles are sent again."""
    state.forget_station(identity, list(connector_ids))
    rebalance_request(reason="station")


@receiver(station_disconnected, dispatch_uid="energy-station-disconnected")
def station_disconnected_rebalance(sender, *, identity: str, **kwargs) -> None:
    """Its offline current is reserved in its zones from now on."""
    rebalance_request(reason="station")


@receiver(station_booted, dispatch_uid="energy-station-booted")
def station_booted_fallbacks(sender, *, station: Station, **kwargs) -> list[Command]:
    return fallback_commands(station)
