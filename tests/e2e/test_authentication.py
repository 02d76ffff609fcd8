"""Driver authentication on a live stack, with real OCPP stations over WebSockets.

Raw charge points ask evce about cards in every online mode; simulated
stations (which keep an OCPP configuration and a local authorisation list)
show what evce installs on them when groups and cards change; EVs plugged in
show the VIP flag reaching the session and the reader-disabled starts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from ocpp.v16 import call

from apps.simulator.engine import ArrivalPattern, Drivers, Endpoint, Fleet
from apps.simulator.engine.config_keys import FREE_VEND_ACTIVE
from apps.simulator.engine.ev import Ev, EvModel
from apps.simulator.engine.model import StationSpec
from tests.central_system.ocpp_client import connected
from tests.e2e.stack import fleet_in_thread, start_stack

pytestmark = pytest.mark.e2e

SIMULATED = {"AUTH-M": "Members", "AUTH-V": "Visitors", "AUTH-P": "Plug", "AUTH-F": "Plug"}
RAW = {"RAW-M": "Members", "RAW-V": "Visitors", "RAW-P": "Plug"}
SITE = """
site: {{name: Authentication test}}
zones:
  - {{name: Car park, max_current_a: 400}}
auth_groups:
  - {{name: Members, online: known_cards, offline: use_cache}}
  - {{name: Visitors, online: all_cards, offline: authorize_all}}
  - {{name: Plug, online: reader_disabled, offline: reject_all, plug_and_charge_id_tag: PLUG-TAG}}
cards:
  - {{id_tag: MEMBER, groups: [Members]}}
  - {{id_tag: MEMBER-VIP, vip: true, groups: [Members]}}
  - {{id_tag: BLOCKED, authorized: false, groups: [Members]}}
  - {{id_tag: VISITOR, groups: [Visitors]}}
stations:
{stations}
"""
CITY_CAR = EvModel("City car", phases=1, max_current_a=16, battery_kwh=40)


class LiveSite:
    """The stack, the simulated fleet running in a thread, and what stations received."""

    loop: asyncio.AbstractEventLoop

    def __init__(self, stack, fleet: Fleet) -> None:
        self.stack, self.fleet = stack, fleet
        self.list_updates: dict[str, list[tuple[int, str, list[dict]]]] = {}
        for identity, station in fleet.stations.items():
            self._record_list_updates(identity, station.auth)

    def _record_list_updates(self, identity: str, auth) -> None:
        received = self.list_updates.setdefault(identity, [])
        original = auth.send_local_list

        def send_local_list(version, update_type, entries):
            received.append((version, update_type, [dict(e) for e in entries]))
            return original(version, update_type, entries)

        auth.send_local_list = send_local_list

    def station(self, identity: str):
        return self.fleet.stations[identity]

    def local_list(self, identity: str) -> dict[str, str]:
        return {tag: info.status for tag, info in self.station(identity).auth.local_list.items()}

    def config(self, identity: str, key: str) -> str:
        return self.station(identity).config.get(key)

    def shell(self, code: str) -> None:
        done = self.stack.manage("shell", "-c", code)
        assert done.returncode == 0, done.stdout + done.stderr

    def plug_in(self, identity: str, id_tag: str) -> None:
        station = self.station(identity)
        self.loop.call_soon_threadsafe(
            lambda: station.arrive(Ev(CITY_CAR, soc=0.2), id_tag, dwell_s=3600)
        )

    def wait_for(self, condition: Callable[[], Any], what: str, timeout_s: float = 30) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"{what} not reached within {timeout_s} s\n{self.stack.log()[-3000:]}")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("evce-auth")
    stations = "\n".join(
        f"  - {{identity: {identity}, name: {identity}, zone: Car park, group: {group}, "
        f"connectors: [{{id: 1, phases: TRI123, max_current_a: 32}}]}}"
        for identity, group in {**SIMULATED, **RAW}.items()
    )
    (data_dir / "site.yaml").write_text(SITE.format(stations=stations))
    stack = start_stack(data_dir, demo=False)
    imported = stack.manage("site", "import", str(data_dir / "site.yaml"))
    assert imported.returncode == 0, imported.stderr

    specs = [
        StationSpec(identity=identity, free_vend=identity == "AUTH-F") for identity in SIMULATED
    ]
    fleet = Fleet.build(
        specs,
        Endpoint(f"ws://127.0.0.1:{stack.ocpp_port}"),
        arrivals=ArrivalPattern.parse("none"),
        drivers=Drivers(id_tags=("MEMBER",), ev_models=(CITY_CAR,)),
        seed=11,
    )
    site = LiveSite(stack, fleet)  # records list updates from the first connection on
    try:
        with fleet_in_thread(fleet) as site.loop:
            yield site
    finally:
        stack.stop()


EXPECTED = {
    # online mode → card → idTagInfo.status
    "RAW-M": {
        "MEMBER": "Accepted",
        "BLOCKED": "Blocked",
        "VISITOR": "Invalid",
        "NOBODY": "Invalid",
    },
    "RAW-V": {
        "MEMBER": "Accepted",
        "BLOCKED": "Blocked",
        "VISITOR": "Accepted",
        "NOBODY": "Accepted",
    },
    "RAW-P": {
        "PLUG-TAG": "Accepted",
        "BLOCKED": "Blocked",
        "VISITOR": "Accepted",
        "NOBODY": "Accepted",
    },
}


def test_every_online_mode_and_card_state_gets_the_right_answer(live):
    async def ask(identity: str) -> dict[str, str]:
        url = f"ws://127.0.0.1:{live.stack.ocpp_port}/ocpp"
        async with connected(url, identity) as cp:
            await cp.boot()
            answers = {}
            for id_tag in EXPECTED[identity]:
                result = await cp.call(call.Authorize(id_tag=id_tag))
                answers[id_tag] = result.id_tag_info["status"]
            return answers

    for identity, expected in EXPECTED.items():
        assert asyncio.run(ask(identity)) == expected, identity


def test_stations_get_their_group_configuration_and_a_full_local_list(live):
    live.wait_for(lambda: live.local_list("AUTH-M"), "the Members list")
    assert live.local_list("AUTH-M") == {
        "BLOCKED": "Blocked",
        "MEMBER": "Accepted",
        "MEMBER-VIP": "Accepted",
    }
    assert live.list_updates["AUTH-M"][0][1] == "Full"
    # All cards: the only cards refused are the blocked ones, wherever they are.
    live.wait_for(lambda: live.local_list("AUTH-V"), "the Visitors list")
    assert live.local_list("AUTH-V") == {"BLOCKED": "Blocked", "VISITOR": "Accepted"}
    live.wait_for(lambda: live.local_list("AUTH-P"), "the Plug list")
    assert live.local_list("AUTH-P") == {"BLOCKED": "Blocked", "PLUG-TAG": "Accepted"}

    assert live.config("AUTH-M", "LocalPreAuthorize") == "true"
    assert live.config("AUTH-M", "LocalAuthorizeOffline") == "true"
    assert live.config("AUTH-M", "AllowOfflineTxForUnknownId") == "false"
    assert live.config("AUTH-V", "AllowOfflineTxForUnknownId") == "true"
    assert live.config("AUTH-P", "LocalAuthorizeOffline") == "false"
    assert live.config("AUTH-P", "AuthorizationCacheEnabled") == "false"
    assert live.config("AUTH-P", "AuthorizeRemoteTxRequests") == "false"
    live.wait_for(lambda: live.config("AUTH-F", FREE_VEND_ACTIVE) == "true", "free vend on")


def test_changing_the_offline_strategy_reconfigures_the_group_stations(live):
    live.wait_for(lambda: live.local_list("AUTH-M"), "the first sync")
    assert live.config("AUTH-M", "AllowOfflineTxForUnknownId") == "false"
    live.shell(
        "from apps.rfid.models import AuthGroup; from apps.rfid import services; "
        "services.auth_group_update(group=AuthGroup.objects.get(name='Members'), "
        "offline_strategy='authorize_all', user=None)"
    )
    live.wait_for(
        lambda: live.config("AUTH-M", "AllowOfflineTxForUnknownId") == "true",
        "AllowOfflineTxForUnknownId on AUTH-M",
    )
    # ... and the station's OCPP log says so (it is written every half second).
    live.wait_for(
        lambda: any(
            "AllowOfflineTxForUnknownId" in str(row[0])
            for row in live.stack.query(
                "SELECT payload FROM stations_ocppmessage WHERE station_identity = ? "
                "AND action = 'ChangeConfiguration' AND direction = 'out'",
                "AUTH-M",
            )
        ),
        "the ChangeConfiguration in the OCPP log",
    )
    # The other groups' stations are left alone.
    assert live.config("AUTH-P", "AllowOfflineTxForUnknownId") == "false"


def _updates_after(live, identity: str, count: int) -> list[tuple[int, str, list[dict]]]:
    return live.wait_for(
        lambda: live.list_updates[identity][count:] or None, f"a list update on {identity}"
    )


def test_card_changes_reach_the_local_lists_differentially(live):
    live.wait_for(lambda: live.local_list("AUTH-M"), "the first sync")
    live.wait_for(lambda: live.local_list("AUTH-V"), "the first sync")
    before_m, before_v = len(live.list_updates["AUTH-M"]), len(live.list_updates["AUTH-V"])
    version = live.station("AUTH-M").auth.list_version

    # A new card in the group: one differential entry.
    live.shell(
        "from apps.rfid.models import AuthGroup; from apps.rfid import services; "
        "services.card_create(id_tag='NEWCOMER', groups=[AuthGroup.objects.get(name='Members')], "
        "user=None)"
    )
    ((new_version, kind, entries),) = _updates_after(live, "AUTH-M", before_m)
    assert (kind, new_version) == ("Differential", version + 1)
    assert entries == [{"id_tag": "NEWCOMER", "id_tag_info": {"status": "Accepted"}}]

    # Blocking a card: Blocked on its group's stations and on the open groups' ones.
    live.shell(
        "from apps.rfid.models import Card; from apps.rfid import services; "
        "services.card_update(card=Card.objects.get(id_tag='MEMBER'), authorized=False, user=None)"
    )
    live.wait_for(lambda: live.local_list("AUTH-M").get("MEMBER") == "Blocked", "MEMBER blocked")
    live.wait_for(lambda: live.local_list("AUTH-V").get("MEMBER") == "Blocked", "MEMBER blocked")
    assert live.list_updates["AUTH-M"][-1][1:] == (
        "Differential",
        [{"id_tag": "MEMBER", "id_tag_info": {"status": "Blocked"}}],
    )

    # Moving a card between groups: removed here, added there.
    before_v = len(live.list_updates["AUTH-V"])
    live.shell(
        "from apps.rfid.models import AuthGroup, Card; from apps.rfid import services; "
        "services.card_update(card=Card.objects.get(id_tag='VISITOR'), "
        "groups=[AuthGroup.objects.get(name='Members')], user=None)"
    )
    live.wait_for(lambda: "VISITOR" in live.local_list("AUTH-M"), "VISITOR on AUTH-M")
    live.wait_for(lambda: "VISITOR" not in live.local_list("AUTH-V"), "VISITOR off AUTH-V")
    assert live.list_updates["AUTH-V"][before_v:][-1][1:] == (
        "Differential",
        [{"id_tag": "VISITOR"}],
    )
    assert all(kind == "Differential" for _v, kind, _e in live.list_updates["AUTH-M"][1:])


def test_the_vip_flag_reaches_the_session(live):
    live.wait_for(lambda: live.local_list("AUTH-M"), "the first sync")
    live.plug_in("AUTH-M", "MEMBER-VIP")
    rows = live.wait_for(
        lambda: live.stack.query(
            "SELECT id_tag, vip FROM stations_transaction WHERE station_identity = ?",
            "AUTH-M",
        ),
        "the session on AUTH-M",
    )
    assert rows == [("MEMBER-VIP", True)] or rows == [("MEMBER-VIP", 1)]


def test_with_the_reader_disabled_a_plugged_in_car_charges(live):
    live.wait_for(lambda: live.local_list("AUTH-P"), "the first sync")
    live.wait_for(lambda: live.config("AUTH-F", FREE_VEND_ACTIVE) == "true", "free vend on")
    live.plug_in("AUTH-P", "")  # nobody badges: evce starts it remotely
    live.plug_in("AUTH-F", "")  # the station starts it by itself (free vend)
    for identity in ("AUTH-P", "AUTH-F"):
        rows = live.wait_for(
            lambda identity=identity: live.stack.query(
                "SELECT id_tag FROM stations_transaction WHERE station_identity = ? "
                "AND stopped_at IS NULL",
                identity,
            ),
            f"the session on {identity}",
        )
        assert rows == [("PLUG-TAG",)]
    remote_starts = live.wait_for(
        lambda: live.stack.query(
            "SELECT station_identity FROM stations_ocppmessage "
            "WHERE action = 'RemoteStartTransaction' AND direction = 'out'",
        ),
        "the remote start in the OCPP log",
    )
    assert {row[0] for row in remote_starts} == {"AUTH-P"}
