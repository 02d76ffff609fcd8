"""The station page shows what load management and authentication did to the station."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from asgiref.sync import async_to_sync

from apps.central_system import hotstate
from apps.rfid.models import StationAuthState
from apps.siteconfig.models import SiteSettings
from tests.admin_pages import allocation_results_store, change_page
from tests.stations.factories import StationFactory

pytestmark = pytest.mark.django_db


def test_the_setpoint_and_a_refused_profile_are_shown(admin_client, hot_state):
    station = StationFactory(identity="CP-SHOWN")
    assert "no session" in change_page(admin_client, station)
    session = {"setpoint_a": 12.5, "setpoint_w": None, "reason": "fair_share"}
    allocation_results_store(
        sessions={
            "CP-SHOWN/1": {**session, "delivery": "Rejected (TxProfile and ChargePointMaxProfile)"},
            "CP-SHOWN/2": {**session, "delivery": "Accepted"},
            "OTHER/1": {**session, "delivery": None},
        }
    )
    page = change_page(admin_client, station)
    assert "#1: 12.5 A (fair_share) — not applied: Rejected (TxProfile and" in page
    assert "#2: 12.5 A (fair_share);" not in page and "#2: 12.5 A (fair_share)" in page
    assert "OTHER" not in page


def test_refused_configuration_keys_are_shown(admin_client, hot_state):
    station = StationFactory()
    StationAuthState.objects.create(
        station=station,
        list_version=3,
        list_entries={"A": {"status": "Accepted"}},
        rejected_keys={"LocalPreAuthorize": "Rejected"},
    )
    page = change_page(admin_client, station)
    assert "local list version 3, 1 cards" in page
    assert "refused: LocalPreAuthorize (Rejected)" in page


def test_the_limiting_zone_phase_of_a_setpoint_is_shown(admin_client, hot_state):
    station = StationFactory(identity="CP-LIMITED")
    allocation_results_store(
        sessions={
            "CP-LIMITED/1": {
                "setpoint_a": 16.0,
                "setpoint_w": None,
                "reason": "zone_limit",
                "limiting_zone_id": 4,
                "limiting_phase": 2,
                "delivery": "Accepted",
            }
        }
    )
    assert "#1: 16 A (zone_limit, zone 4 L2)" in change_page(admin_client, station)


def test_the_connection_follows_the_online_rule(admin_client, hot_state):
    station = StationFactory(identity="CP-LINK")
    assert "offline (not connected)" in change_page(admin_client, station)
    async_to_sync(hotstate.connection_open)("CP-LINK", "specific.p!l", remote_addr="10.1.2.3")
    page = change_page(admin_client, station)
    assert "online — last message" in page and "10.1.2.3" in page
    window_s = 2 * SiteSettings.load().heartbeat_interval_s
    with mock.patch("apps.stations.selectors.time") as clock:  # silent since it connected
        clock.time.return_value = time.time() + window_s + 5
        assert "offline (silent)" in change_page(admin_client, station)
