"""What the open dashboards hear of: every change a page shows ends in the live feed.

The apps below announce their changes with signals (and model saves); each
receiver here names the topic for :func:`apps.dashboard.live.live_changed`,
after the transaction commits.
"""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.central_system.models import CommandResult
from apps.central_system.signals import station_connected, station_disconnected
from apps.dashboard.live import LiveTopic, live_changed
from apps.devicelog.models import DeviceLogEntry
from apps.energy.signals import allocation_stored
from apps.meters.signals import meters_polled
from apps.stations.models import Connector, Station, Transaction
from apps.stations.signals import station_reported


def _after_commit(*topics: LiveTopic):
    def announce(sender, **kwargs) -> None:
        transaction.on_commit(partial(live_changed, *topics))

    return announce


_ANNOUNCED_MODELS = {
    Station: (LiveTopic.STATIONS,),
    Connector: (LiveTopic.STATIONS,),
    Transaction: (LiveTopic.SESSIONS,),
    CommandResult: (LiveTopic.COMMANDS,),
    DeviceLogEntry: (LiveTopic.DEVICE_LOG,),
}
for _model, _topics in _ANNOUNCED_MODELS.items():
    post_save.connect(
        _after_commit(*_topics), sender=_model, weak=False, dispatch_uid=f"live-{_model.__name__}"
    )
    post_delete.connect(
        _after_commit(*_topics),
        sender=_model,
        weak=False,
        dispatch_uid=f"live-{_model.__name__}-delete",
    )


@receiver(allocation_stored, dispatch_uid="live-allocation")
def allocation_stored_live(sender, **kwargs) -> None:
    live_changed(LiveTopic.SETPOINTS)


@receiver(station_reported, dispatch_uid="live-station-reported")
def station_reported_live(sender, *, what: str, **kwargs) -> None:
    live_changed(LiveTopic.STATIONS if what == "status" else LiveTopic.SESSIONS)


@receiver(station_connected, dispatch_uid="live-station-connected")
@receiver(station_disconnected, dispatch_uid="live-station-disconnected")
def station_connection_live(sender, **kwargs) -> None:
    live_changed(LiveTopic.STATIONS)


@receiver(meters_polled, dispatch_uid="live-meters")
def meters_polled_live(sender, **kwargs) -> None:
    live_changed(LiveTopic.METERS)
