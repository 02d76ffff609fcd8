"""What evce installs on a station for its authentication group, and how it keeps it in sync.

The station here is the simulator's configuration store and local list (the
same code the simulated charge points run), driven in-process through the
``send`` hook; over real WebSockets see ``tests/e2e/test_authentication.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync

from apps.central_system import commands, hotstate, station_sync
from apps.devicelog.models import DeviceLogEntry
from apps.rfid.models import AuthGroup, Card, OfflineStrategy, OnlineMode, StationAuthState
from apps.simulator.engine.auth import LocalAuthorization
from apps.simulator.engine.config_keys import FREE_VEND_KEYS, ConfigurationStore
from tests.stations.factories import StationFactory

pytestmark = pytest.mark.django_db


def _snake(entry: dict[str, Any]) -> dict[str, Any]:
    info = entry.get("idTagInfo")
    converted: dict[str, Any] = {"id_tag": entry["idTag"]}
    if info:
        converted["id_tag_info"] = {
            "status": info["status"],
            "parent_id_tag": info.get("parentIdTag"),
        }
    return converted


class InProcessStation:
    """Answers evce's commands the way a simulated charge point does."""

    def __init__(self, *, free_vend: bool = False, list_supported: bool = True) -> None:
        self.config = ConfigurationStore(extra_keys=FREE_VEND_KEYS if free_vend else ())
        self.auth = LocalAuthorization(max_list_length=50, max_update_length=4)
        self.list_supported = list_supported
        self.sent: list[commands.Command] = []

    def __call__(self, command: commands.Command) -> dict[str, Any]:
        self.sent.append(command)
        payload = command.payload
        if command.action == "GetConfiguration":
            known, _unknown = self.config.read(payload.get("key"))
            profiles = "Core,SmartCharging" + (
                ",LocalAuthListManagement" if self.list_supported else ""
            )
            known = [
                {**item, "value": profiles} if item["key"] == "SupportedFeatureProfiles" else item
                for item in known
            ]
            known += [
                {"key": "LocalAuthListMaxLength", "readonly": True, "value": "50"},
                {"key": "SendLocalListMaxLength", "readonly": True, "value": "4"},
            ]
            return {"configurationKey": known}
        if command.action == "ChangeConfiguration":
            return {"status": str(self.config.change(payload["key"], payload["value"]))}
        if command.action == "GetLocalListVersion":
            return {"listVersion": self.auth.list_version if self.list_supported else -1}
        if command.action == "SendLocalList":
            if not self.list_supported:
                return {"status": "NotSupported"}
            entries = [_snake(e) for e in payload.get("localAuthorizationList", [])]
            status = self.auth.send_local_list(
                payload["listVersion"], payload["updateType"], entries
            )
            return {"status": str(status)}
        raise AssertionError(f"unexpected {command.action}")

    def actions(self) -> list[str]:
        return [c.action for c in self.sent]

    def local_list(self) -> dict[str, str]:
        return {tag: info.status for tag, info in self.auth.local_list.items()}


@pytest.fixture
def online(hot_state):
    """Mark a station's socket open, as the consumer does."""

    def mark(identity: str) -> None:
        async_to_sync(hotstate.connection_open)(identity, "test-channel", remote_addr=None)

    return mark


@pytest.fixture
def members() -> AuthGroup:
    group = AuthGroup.objects.create(name="Members", online_mode=OnlineMode.KNOWN_CARDS)
    for tag, authorized in [("ALPHA", True), ("BRAVO", True), ("CHARLIE", False)]:
        Card.objects.create(id_tag=tag, authorized=authorized).groups.add(group)
    Card.objects.create(id_tag="OUTSIDER")
    Card.objects.create(id_tag="STRANGER", authorized=False)
    return group


@pytest.mark.parametrize(
    ("online_mode", "offline", "expected"),
    [
        (
            OnlineMode.KNOWN_CARDS,
            OfflineStrategy.USE_CACHE,
            {
                "AuthorizeRemoteTxRequests": "true",
                "LocalAuthorizeOffline": "true",
                "AuthorizationCacheEnabled": "true",
                "AllowOfflineTxForUnknownId": "false",
            },
        ),
        (
            OnlineMode.ALL_CARDS,
            OfflineStrategy.AUTHORIZE_ALL,
            {
                "AuthorizeRemoteTxRequests": "true",
                "LocalAuthorizeOffline": "true",
                "AuthorizationCacheEnabled": "true",
                "AllowOfflineTxForUnknownId": "true",
            },
        ),
        (
            OnlineMode.READER_DISABLED,
            OfflineStrategy.REJECT_ALL,
            {
                "AuthorizeRemoteTxRequests": "false",
                "LocalAuthorizeOffline": "false",
                "AuthorizationCacheEnabled": "false",
                "AllowOfflineTxForUnknownId": "false",
            },
        ),
    ],
)
def test_group_modes_become_configuration_keys(online_mode, offline, expected):
    group = AuthGroup(name="G", online_mode=online_mode, offline_strategy=offline)
    config = station_sync.group_configuration(group)
    assert config == {"LocalAuthListEnabled": "true", "LocalPreAuthorize": "true", **expected}


def test_free_vend_keys_follow_the_reader_disabled_mode():
    plug = AuthGroup(name="P", online_mode=OnlineMode.READER_DISABLED, plug_and_charge_id_tag="PT")
    known = AuthGroup(name="K", online_mode=OnlineMode.KNOWN_CARDS)
    assert station_sync.group_configuration(plug, "Acme_")["Acme_FreeVendActive"] == "true"
    assert station_sync.group_configuration(plug, "Acme_")["Acme_FreeVendIdTag"] == "PT"
    assert station_sync.group_configuration(known, "Acme_")["Acme_FreeVendActive"] == "false"
    assert "Acme_FreeVendIdTag" not in station_sync.group_configuration(known, "Acme_")


def test_local_list_mirrors_the_authorisation_rules(members):
    assert station_sync.group_local_list(members) == {
        "ALPHA": {"status": "Accepted"},
        "BRAVO": {"status": "Accepted"},
        "CHARLIE": {"status": "Blocked"},
    }
    members.online_mode = OnlineMode.ALL_CARDS
    assert station_sync.group_local_list(members) == {
        "ALPHA": {"status": "Accepted"},
        "BRAVO": {"status": "Accepted"},
        "CHARLIE": {"status": "Blocked"},
        "STRANGER": {"status": "Blocked"},
    }
    members.online_mode = OnlineMode.READER_DISABLED
    assert station_sync.group_local_list(members)["EVCE-PLUG-IN"] == {"status": "Accepted"}
    assert set(station_sync.group_local_list(None)) == {
        "ALPHA",
        "BRAVO",
        "CHARLIE",
        "OUTSIDER",
        "STRANGER",
    }


def test_parent_id_tags_are_in_the_list(members):
    Card.objects.filter(id_tag="ALPHA").update(parent_id_tag="FLEET")
    assert station_sync.group_local_list(members)["ALPHA"] == {
        "status": "Accepted",
        "parentIdTag": "FLEET",
    }


def test_list_difference_adds_changes_and_removes():
    current = {"A": {"status": "Accepted"}, "B": {"status": "Accepted"}, "C": {"status": "Blocked"}}
    desired = {"A": {"status": "Accepted"}, "B": {"status": "Blocked"}, "D": {"status": "Accepted"}}
    assert station_sync.list_difference(current, desired) == [
        {"idTag": "B", "idTagInfo": {"status": "Blocked"}},
        {"idTag": "D", "idTagInfo": {"status": "Accepted"}},
        {"idTag": "C"},
    ]
    assert station_sync.list_difference(desired, desired) == []


def test_a_long_list_keeps_the_blocked_cards_first():
    desired = {f"T{i:02d}": {"status": "Accepted"} for i in range(10)} | {
        "Z-BLOCKED": {"status": "Blocked"}
    }
    kept, left_out = station_sync._fit(desired, 4)
    assert left_out == 7
    assert list(kept) == ["Z-BLOCKED", "T00", "T01", "T02"]


def test_first_sync_configures_and_sends_the_full_list_in_batches(members, online):
    station = StationFactory(auth_group=members)
    online(station.identity)
    for i in range(6):
        Card.objects.create(id_tag=f"EXTRA-{i}").groups.add(members)
    cp = InProcessStation()
    report = station_sync.station_sync(station, reasons={"boot"}, send=cp)

    assert report.error == ""
    assert cp.config.get("LocalPreAuthorize") == "true"
    assert cp.config.get("AllowOfflineTxForUnknownId") == "false"
    # 9 entries, 4 per update: one Full then two differential updates.
    lists = [c.payload for c in cp.sent if c.action == "SendLocalList"]
    assert [(p["updateType"], len(p["localAuthorizationList"])) for p in lists] == [
        ("Full", 4),
        ("Differential", 4),
        ("Differential", 1),
    ]
    assert len(cp.local_list()) == 9 and cp.local_list()["CHARLIE"] == "Blocked"
    state = StationAuthState.objects.get(station=station)
    assert state.list_version == cp.auth.list_version == 3
    assert state.list_max_length == 50 and state.update_max_length == 4


def test_later_changes_are_differential_and_unchanged_keys_are_not_resent(members, online):
    station = StationFactory(auth_group=members)
    online(station.identity)
    cp = InProcessStation()
    station_sync.station_sync(station, reasons={"boot"}, send=cp)
    cp.sent.clear()

    Card.objects.filter(id_tag="ALPHA").update(authorized=False)
    Card.objects.get(id_tag="BRAVO").groups.clear()
    station_sync.station_sync(station, reasons={"cards"}, send=cp)

    assert cp.actions() == ["SendLocalList"]
    assert cp.sent[0].payload["updateType"] == "Differential"
    assert cp.sent[0].payload["localAuthorizationList"] == [
        {"idTag": "ALPHA", "idTagInfo": {"status": "Blocked"}},
        {"idTag": "BRAVO"},
    ]
    assert cp.local_list() == {"ALPHA": "Blocked", "CHARLIE": "Blocked"}

    cp.sent.clear()
    station_sync.station_sync(station, reasons={"cards"}, send=cp)
    assert cp.sent == []  # nothing changed, nothing sent


def test_a_station_that_lost_its_list_gets_a_full_one_at_reconnection(members, online):
    station = StationFactory(auth_group=members)
    online(station.identity)
    cp = InProcessStation()
    station_sync.station_sync(station, reasons={"boot"}, send=cp)
    replaced = InProcessStation()  # e.g. a swapped controller board: version 0
    station_sync.station_sync(station, reasons={"connected"}, send=replaced)
    lists = [c.payload for c in replaced.sent if c.action == "SendLocalList"]
    assert lists[0]["updateType"] == "Full"
    assert replaced.local_list() == cp.local_list()
    assert "ChangeConfiguration" not in replaced.actions()  # a reconnection keeps the keys


def test_refused_keys_are_recorded_and_logged_once(members, online):
    station = StationFactory(auth_group=members)
    online(station.identity)
    cp = InProcessStation()
    cp.config = ConfigurationStore(readonly_values={"LocalPreAuthorize": "false"})
    station_sync.station_sync(station, reasons={"boot"}, send=cp)
    station_sync.station_sync(station, reasons={"group"}, send=cp)
    state = StationAuthState.objects.get(station=station)
    assert state.rejected_keys == {"LocalPreAuthorize": "Rejected"}
    assert "LocalPreAuthorize" not in state.applied_configuration
    assert DeviceLogEntry.objects.filter(event="station_configuration_refused").count() == 1


def test_a_station_without_local_lists_is_noted_and_left_alone(members, online):
    station = StationFactory(auth_group=members)
    online(station.identity)
    cp = InProcessStation(list_supported=False)
    report = station_sync.station_sync(station, reasons={"boot"}, send=cp)
    assert report.list_update == "not supported"
    assert "SendLocalList" not in cp.actions()
    cp.sent.clear()
    Card.objects.create(id_tag="LATE").groups.add(members)
    station_sync.station_sync(station, reasons={"cards"}, send=cp)
    assert cp.sent == []
    assert DeviceLogEntry.objects.filter(event="local_list_unsupported").count() == 1


def test_an_offline_station_is_skipped(members, hot_state):
    station = StationFactory(auth_group=members)
    cp = InProcessStation()
    report = station_sync.station_sync(station, reasons={"boot"}, send=cp)
    assert report.connected is False and cp.sent == []


def test_free_vend_is_found_and_switched_on_for_reader_disabled_groups(online):
    group = AuthGroup.objects.create(
        name="Plug", online_mode=OnlineMode.READER_DISABLED, plug_and_charge_id_tag="PLUG"
    )
    station = StationFactory(auth_group=group)
    online(station.identity)
    cp = InProcessStation(free_vend=True)
    station_sync.station_sync(station, reasons={"boot"}, send=cp)
    assert cp.config.get("Sim_FreeVendActive") == "true"
    assert cp.config.get("Sim_FreeVendIdTag") == "PLUG"
    station.refresh_from_db()
    # The station starts by itself: evce does not start sessions on plug-in there.
    assert not station_sync.plug_in_start_needed(station, 1)

    other = StationFactory(auth_group=group)
    online(other.identity)
    station_sync.station_sync(other, reasons={"boot"}, send=InProcessStation())
    assert station_sync.plug_in_start_needed(other, 1)
    assert not station_sync.plug_in_start_needed(other, 0)


def test_a_silent_station_stops_the_sync_and_keeps_what_was_applied(members, online):
    station = StationFactory(auth_group=members)
    online(station.identity)
    cp = InProcessStation()

    def send(command: commands.Command) -> dict[str, Any]:
        if command.action == "SendLocalList":
            raise commands.CallTimeout("SendLocalList: no answer")
        return cp(command)

    report = station_sync.station_sync(station, reasons={"boot"}, send=send)
    assert "no answer" in report.error
    state = StationAuthState.objects.get(station=station)
    assert state.list_version == 0 and state.applied_configuration["LocalPreAuthorize"] == "true"
    # Next time the list is sent in full.
    station_sync.station_sync(station, reasons={"connected"}, send=cp)
    assert cp.local_list() == {"ALPHA": "Accepted", "BRAVO": "Accepted", "CHARLIE": "Blocked"}
