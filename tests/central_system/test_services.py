"""Central-system services: registration, configuration, background commands, presence."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from asgiref.sync import async_to_sync

from apps.central_system import hotstate, services
from apps.central_system.authorization import AuthorizationStatus, authorize_id_tag
from apps.central_system.models import CommandResult, CommandStatus
from apps.rfid.models import AuthGroup
from apps.stations import presence, selectors
from apps.stations.models import StationState
from tests.rfid.factories import CardFactory
from tests.stations.factories import DiscoveredStationFactory, StationFactory

pytestmark = pytest.mark.django_db


def test_registration_follows_the_station_state():
    assert services.registration_status(StationFactory()) == "Accepted"
    assert services.registration_status(DiscoveredStationFactory()) == "Pending"
    assert services.registration_status(StationFactory(state=StationState.REFUSED)) == "Rejected"


def test_configuration_pushed_after_boot_follows_the_site_settings():
    from apps.siteconfig.models import SiteSettings

    site = SiteSettings.load()
    site.heartbeat_interval_s, site.meter_value_sample_interval_s = 120, 15
    site.save()
    pushed = services.station_configuration_commands(StationFactory())
    assert [(c.payload["key"], c.payload["value"]) for c in pushed] == [
        ("HeartbeatInterval", "120"),
        ("MeterValueSampleInterval", "15"),
        ("MeterValuesSampledData", services.SAMPLED_MEASURANDS),
    ]


def test_authorization_known_blocked_unknown_case_insensitive():
    CardFactory(id_tag="04A1B2", parent_id_tag="FLEET")
    CardFactory(id_tag="BLOCKED1", authorized=False)
    station = StationFactory()
    accepted = authorize_id_tag(station, "04a1b2")
    assert accepted.status == AuthorizationStatus.ACCEPTED and accepted.card is not None
    assert accepted.as_ocpp() == {"status": "Accepted", "parentIdTag": "FLEET"}
    accepted.card.refresh_from_db()
    assert accepted.card.last_seen_at is not None
    assert authorize_id_tag(station, "BLOCKED1").as_ocpp() == {"status": "Blocked"}
    assert authorize_id_tag(station, "NOPE").as_ocpp() == {"status": "Invalid"}


def test_command_execute_keeps_the_outcome(redis_url):
    offline = services.command_execute(identity="GONE", action="Reset", payload={"type": "Soft"})
    assert offline.status == CommandStatus.OFFLINE and offline.finished_at is not None
    invalid = services.command_execute(identity="GONE", action="Reset", payload={"type": "x"})
    assert invalid.status == CommandStatus.INVALID
    with mock.patch("apps.central_system.commands.call_sync", return_value={"status": "Rejected"}):
        answered = services.command_execute(
            identity="CP1", action="Reset", payload={"type": "Hard"}, request_id=offline.request_id
        )
    assert answered.pk == offline.pk  # same request, same row
    assert (answered.status, answered.response) == (CommandStatus.ANSWERED, {"status": "Rejected"})


def test_command_request_queues_a_task_after_commit(django_capture_on_commit_callbacks):
    with (
        mock.patch("apps.central_system.tasks.station_command_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = services.command_request(identity="CP1", action="ClearCache", payload={})
    assert result.status == CommandStatus.PENDING
    delay.assert_called_once_with(
        "CP1", "ClearCache", {}, request_id=str(result.request_id), timeout_s=30.0
    )
    assert CommandResult.objects.count() == 1


def test_presence_needs_a_socket_and_a_recent_message(redis_url):
    async def connect(identity, channel):
        await hotstate.connection_open(identity, channel, remote_addr=None)

    async_to_sync(connect)("PRES-1", "specific.p1!a")
    async_to_sync(connect)("PRES-2", "specific.p1!b")
    later = time.time() + 3600
    assert presence.connected_identities(["PRES-1", "PRES-2", "PRES-3"]) == {"PRES-1", "PRES-2"}
    assert presence.connected_identities(["PRES-1"], now=later) == set()
    assert selectors.station_is_online("pres-1")
    assert "PRES-2" in selectors.stations_online()

    async def release():
        assert not await hotstate.connection_close("PRES-1", "specific.other!x")
        assert await hotstate.connection_close("PRES-1", "specific.p1!a")
        await hotstate.connection_close("PRES-2", "specific.p1!b")

    async_to_sync(release)()
    assert not selectors.station_is_online("PRES-1")


def test_station_keys_are_channel_safe_and_distinct():
    keys = {
        hotstate.station_key(i) for i in ["CP*1", "CP=1", "CP+1", "CP|1", "CP@1", "CP_1", "CP.1"]
    }
    assert len(keys) == 7
    assert len(hotstate.station_group("A|" * 15)) < 100  # the channel layer's name limit
    assert hotstate.station_key("CP-01") == hotstate.station_key("cp-01")


@pytest.mark.parametrize(
    ("mode", "card_state", "expected"),
    [
        ("known_cards", "member", "Accepted"),
        ("known_cards", "other_group", "Invalid"),
        ("known_cards", "blocked_member", "Blocked"),
        ("known_cards", "unknown", "Invalid"),
        ("all_cards", "member", "Accepted"),
        ("all_cards", "other_group", "Accepted"),
        ("all_cards", "blocked_member", "Blocked"),
        ("all_cards", "unknown", "Accepted"),
        ("reader_disabled", "unknown", "Accepted"),
        ("reader_disabled", "blocked_member", "Blocked"),
    ],
)
def test_authorization_follows_the_groups_online_mode(mode, card_state, expected):
    group = AuthGroup.objects.create(name="Staff", online_mode=mode)
    other = AuthGroup.objects.create(name="Visitors")
    station = StationFactory(auth_group=group)
    tags = {
        "member": "MEMBER",
        "other_group": "OTHER",
        "blocked_member": "BLOCKED",
        "unknown": "NOBODY",
    }
    CardFactory(id_tag="MEMBER").groups.add(group)
    CardFactory(id_tag="OTHER").groups.add(other)
    CardFactory(id_tag="BLOCKED", authorized=False).groups.add(group)
    assert authorize_id_tag(station, tags[card_state]).as_ocpp()["status"] == expected
