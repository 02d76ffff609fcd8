"""The zone page shows the zone's live figures, through the zone-figures selector."""

from __future__ import annotations

from unittest import mock

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.admin_pages import allocation_results_store, change_page
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db


def test_the_last_allocations_figures_are_shown(admin_client, hot_state):
    zone = ZoneFactory(name="Car park")
    assert "not allocated yet" in change_page(admin_client, zone)
    allocation_results_store(
        zones={
            zone.pk: {
                "limit_a": 63.0,
                "meter_lost": False,
                "other_loads_a": [10.0, 12.5, 8.0],
                "available_a": [53.0, 50.5, 55.0],
                "allocated_a": [32.0, 32.0, 32.0],
                "reserved_a": [0.0, 0.0, 0.0],
                "session_count": 2,
                "at_s": 1_700_000_000.0,
            }
        }
    )
    page = change_page(admin_client, zone)
    assert "limit 63 A; other loads 10.0 / 12.5 / 8.0 A; available 53.0 / 50.5 / 55.0 A" in page
    assert "allocated 32.0 / 32.0 / 32.0 A; reserved 0.0 / 0.0 / 0.0 A; 2 sessions" in page
    assert "computed 2023-11-1" in page


def test_the_page_opens_while_redis_is_down(admin_client):
    zone = ZoneFactory()
    with mock.patch("apps.zones.admin.zone_figures", side_effect=RedisConnectionError("down")):
        assert "unavailable" in change_page(admin_client, zone)
