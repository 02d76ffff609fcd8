"""Live setpoints and zone figures read back, typed, from what the control loop stored."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from unittest import mock

import pytest

from apps.central_system import commands
from apps.energy import state
from apps.energy.allocator import Phase, Ranking, Reason
from apps.energy.allocator.envelope import ConnectorProfiles, Slot
from apps.energy.control import rebalance_once
from apps.energy.selectors import (
    ZoneFigures,
    connector_setpoints,
    station_setpoints,
    zone_figures,
    zones_figures,
)
from tests.energy.helpers import all_accepted, charging_station
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db


def test_a_setpoint_limited_by_its_zone_reads_back_with_its_reason(hot_state):
    zone = ZoneFactory(max_current_a=Decimal("20"))
    station, tx = charging_station(zone)
    before = time.time()
    with mock.patch.object(commands, "call_many", all_accepted):
        rebalance_once()
    after = time.time()

    item = station_setpoints(station.identity)[1]
    assert item.key == f"{station.identity}/1" and item.station_identity == station.identity
    assert (item.station_id, item.transaction_id) == (station.pk, tx.pk)
    assert item.setpoint_a == 20.0 and item.setpoint_w is None
    assert item.reason is Reason.ZONE_LIMIT
    assert item.limiting_zone_id == zone.pk and isinstance(item.limiting_phase, Phase)
    assert item.delivery == "Accepted" and item.applied and not item.held
    # What the station accepted, and since when; its lease runs on.
    assert item.accepted_a == 20.0
    assert before <= item.accepted_at.timestamp() <= after
    assert item.valid_until.timestamp() > after
    assert before <= item.allocated_at.timestamp() <= after
    assert item.envelope_a == 20.0
    assert connector_setpoints() == {item.key: item}
    assert station_setpoints("ELSEWHERE") == {}

    figures = zone_figures(zone.pk)
    live = figures.allocation
    assert figures.zone_id == live.zone_id == zone.pk
    assert live.limit_a == 20.0 and live.reduction_percent is None
    assert live.other_loads_a is None and not live.meter_lost  # a static zone
    assert live.session_count == 1
    assert max(live.allocated_a) == 20.0
    assert live.available_a == (20.0, 20.0, 20.0)
    assert before <= figures.computed_at.timestamp() <= after
    assert zones_figures() == {zone.pk: figures}
    assert zone_figures(zone.pk + 1) is None


def test_a_held_connector_shows_what_it_may_draw_and_what_evce_asks(hot_state):
    now_s = time.time()
    state.save_profiles(
        {
            "CP-H/2": ConnectorProfiles(
                fallback=Slot().accepted(6.0, at_s=now_s - 600, response_s=5),
                live=Slot().accepted(32.0, at_s=now_s - 600, response_s=5),
                live_transaction_id=41,
                live_valid_until_s=now_s + 600,
            )
        },
        since_s=now_s,
    )
    state.save_results(
        Ranking(keys=(), ranked_at_s=now_s),
        {
            "CP-H/2": {
                "station_id": 5,
                "transaction_id": 41,
                "setpoint_a": 32.0,
                "setpoint_w": None,
                "reason": "held",
                "limiting_zone_id": None,
                "limiting_phase": None,
                "phases": [1, 2, 3],
                "rank": None,
                "vip": False,
                "wanted_a": 10.0,
                "delivery": "Rejected",
            }
        },
        {
            3: {
                "limit_a": 40.0,
                "reduction_percent": 50.0,
                "meter_lost": True,
                "production_lost": False,
                "other_loads_a": None,
                "production_a": [0.0, 0.0, 0.0],
                "grid_available_a": [8.0, 8.0, 8.0],
                "available_a": [8.0, 8.0, 8.0],
                "reserved_a": [32.0, 32.0, 32.0],
                "allocated_a": [0.0, 0.0, 0.0],
                "headroom_a": [0.0, 0.0, 0.0],
                "session_count": 1,
                "charging_count": 0,
                "held_since_s": now_s - 3,
                "reductions": [
                    {
                        "source": "ebms",
                        "percent": 50.0,
                        "current_a": None,
                        "description": "EBMS",
                        "valid_until": "2026-03-02T09:00:00+00:00",
                    }
                ],
                "at_s": now_s,
            }
        },
    )
    item = station_setpoints("CP-H")[2]
    assert item.held and item.reason is Reason.HELD
    assert (item.setpoint_a, item.wanted_a) == (32.0, 10.0)
    assert not item.applied and item.delivery == "Rejected"
    assert item.accepted_a is None and item.accepted_at is None  # nothing recorded as sent
    assert item.envelope_a == 32.0
    assert item.phases == (1, 2, 3)

    figures = zone_figures(3)
    assert isinstance(figures, ZoneFigures)
    live = figures.allocation
    assert live.meter_lost and live.reduction_percent == 50.0
    assert live.reserved_a == (32.0, 32.0, 32.0) and live.other_loads_a is None
    assert [(r.source, r.percent) for r in figures.reductions] == [("ebms", 50.0)]
    assert figures.reductions[0].valid_until == datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert figures.held_since.timestamp() == pytest.approx(now_s - 3)


def test_nothing_allocated_reads_as_nothing(hot_state):
    assert connector_setpoints() == {}
    assert zones_figures() == {}
    assert zone_figures(1) is None
