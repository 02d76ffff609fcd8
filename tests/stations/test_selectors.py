"""The one online rule, and the presence records it is applied to (real Redis)."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import async_to_sync

from apps.central_system import hotstate
from apps.siteconfig.models import SiteSettings
from apps.stations.selectors import (
    StationPresence,
    online_identities,
    station_counts,
    station_is_online,
    station_presence,
    stations_online,
)
from tests.stations.factories import ConnectorFactory, DiscoveredStationFactory, StationFactory

pytestmark = pytest.mark.django_db

HEARTBEAT_S = 60.0
LAST_SEEN_S = 1_000_000.0


def presence(*, connected: bool = True, last_seen_s: float | None = LAST_SEEN_S):
    return StationPresence("CP-1", connected=connected, last_seen_s=last_seen_s)


@pytest.mark.parametrize(
    ("silent_s", "online"),
    [
        (0.0, True),
        (2 * HEARTBEAT_S - 0.001, True),
        (2 * HEARTBEAT_S, True),  # the boundary counts as online
        (2 * HEARTBEAT_S + 0.001, False),
        (10 * HEARTBEAT_S, False),
    ],
)
def test_a_station_is_online_until_twice_its_heartbeat_interval_of_silence(silent_s, online):
    assert presence().is_online(LAST_SEEN_S + silent_s, heartbeat_interval_s=HEARTBEAT_S) is online


def test_a_closed_socket_is_offline_however_recent_the_last_message():
    assert not presence(connected=False).is_online(LAST_SEEN_S, heartbeat_interval_s=HEARTBEAT_S)
    assert not presence(last_seen_s=None).is_online(LAST_SEEN_S, heartbeat_interval_s=HEARTBEAT_S)


def test_the_window_follows_the_sites_heartbeat_interval():
    site = SiteSettings.load()
    site.heartbeat_interval_s = 30
    site.save()
    assert presence().is_online(LAST_SEEN_S + 60)
    assert not presence().is_online(LAST_SEEN_S + 60.5)


def _connect(identity: str, channel: str) -> None:
    async_to_sync(hotstate.connection_open)(identity, channel, remote_addr="10.0.0.7")


def _last_seen(identity: str) -> float:
    return station_presence(identity).last_seen_s


def test_every_reader_applies_the_same_rule(hot_state):
    _connect("CP-A", "specific.p!a")
    _connect("CP-B", "specific.p!b")
    window_s = 2 * SiteSettings.load().heartbeat_interval_s
    boundary = _last_seen("CP-A") + window_s
    beyond = max(boundary, _last_seen("CP-B") + window_s) + 0.01

    record = station_presence("cp-a")  # identities are case-insensitive
    assert record.connected and record.identity == "CP-A" and record.remote_addr == "10.0.0.7"
    assert record.connected_at_s is not None and record.connected_at_s <= time.time()
    assert station_is_online("CP-A", now=boundary)
    assert "CP-A" in online_identities(["CP-A", "CP-C"], now=boundary)
    assert "CP-A" in stations_online(now=boundary)

    assert not station_is_online("CP-A", now=beyond)
    assert online_identities(["CP-A", "CP-B", "CP-C"], now=beyond) == set()
    assert stations_online(now=beyond) == {}


def test_a_station_without_a_connection_record_is_offline(hot_state):
    assert station_presence("CP-NEVER") == StationPresence("CP-NEVER", connected=False)
    assert not station_is_online("CP-NEVER")
    assert online_identities([]) == set()
    _connect("CP-GONE", "specific.p!g")
    assert station_is_online("CP-GONE")
    async_to_sync(hotstate.connection_close)("CP-GONE", "specific.p!g")
    assert not station_presence("CP-GONE").connected
    assert online_identities(["CP-GONE"]) == set()


def test_station_counts_split_installed_stations_by_the_online_rule(hot_state):
    StationFactory(identity="CP-OK")
    faulted_connector = StationFactory(identity="CP-FAULT")
    ConnectorFactory(station=faulted_connector, connector_id=1, status="Faulted")
    StationFactory(identity="CP-FAULT0", status="Faulted")
    StationFactory(identity="CP-OFF", status="Faulted")  # stale: counts as offline only
    DiscoveredStationFactory(identity="CP-NEW")  # not installed: not counted
    for identity in ("CP-OK", "CP-FAULT", "CP-FAULT0", "CP-NEW"):
        _connect(identity, f"specific.p!{identity}")

    counts = station_counts()
    assert (counts.total, counts.online, counts.offline, counts.faulted) == (4, 3, 1, 2)

    beyond = time.time() + 2 * SiteSettings.load().heartbeat_interval_s + 1
    assert station_counts(now=beyond).offline == 4
