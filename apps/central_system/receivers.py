"""What the central system does when the domain below it changes.

Authentication changes: which stations to synchronise; an operator's
install, refusal or deletion: tell the station's connection.
"""

from __future__ import annotations

from django.dispatch import receiver

from apps.central_system import services, station_sync
from apps.rfid.signals import auth_groups_changed, cards_changed
from apps.stations.signals import station_state_changed


@receiver(cards_changed, dispatch_uid="central-system-cards-local-lists")
def cards_changed_sync(sender, *, group_ids, **kwargs) -> None:
    # Blocked cards are in the lists of every open-mode group as well.
    station_sync.station_sync_request(
        station_sync.stations_of_groups(group_ids, open_groups=True), reason=station_sync.CARDS
    )


@receiver(auth_groups_changed, dispatch_uid="central-system-groups-configuration")
def auth_groups_changed_sync(sender, *, group_ids, station_ids, **kwargs) -> None:
    stations = set(station_sync.stations_of_groups(group_ids)) | set(station_ids)
    station_sync.station_sync_request(stations, reason=station_sync.GROUP)


@receiver(station_state_changed, dispatch_uid="central-system-station-state")
def station_state_changed_notify(sender, *, identity, change, **kwargs) -> None:
    services.station_state_changed(identity, change)
