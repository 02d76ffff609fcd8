"""Inputs refuse bad data; helpers map phases and units."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest

from apps.energy.allocator import (
    Connector,
    CurrentType,
    PhaseWiring,
    Ranking,
    Reduction,
    ReductionSource,
    Reserve,
    Session,
    SiteSettings,
    Zone,
    connector_to_building_phases,
    current_to_power_w,
    detect_ev_phases,
    power_to_current_a,
)
from apps.energy.allocator.units import deciamps_down, deciamps_up


@pytest.mark.parametrize(
    "build",
    [
        lambda: Zone(zone_id=1, max_current_a=math.nan),
        lambda: Zone(zone_id=1, max_current_a=-1),
        lambda: Zone(zone_id=1, max_current_a=10, dynamic=True, meter_current_a=(1, math.inf, 1)),
        lambda: Zone(zone_id=1, max_current_a=10, meter_current_a=(1, 2)),  # type: ignore[arg-type]
        lambda: Connector(key="a", zone_id=1),
        lambda: Connector(key="a", zone_id=1, current_type=CurrentType.DC, max_current_a=32),
        lambda: Reduction(source=ReductionSource.TOU),
        lambda: Reduction(source=ReductionSource.EBMS, percent=50, current_a=20),
        lambda: Reserve(zone_id=1, current_a=(-1, 0, 0)),
        lambda: Session(connector=Connector(key="a", zone_id=1, max_current_a=32), ev_phases=4),
        lambda: SiteSettings(nominal_voltage_v=0),
    ],
)
def test_bad_inputs_are_refused_where_they_are_built(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()


def test_inputs_are_immutable() -> None:
    zone = Zone(zone_id=1, max_current_a=10)
    with pytest.raises(AttributeError):
        zone.max_current_a = 20  # type: ignore[misc]


def test_connector_phases_map_to_building_phases_through_the_wiring() -> None:
    assert connector_to_building_phases(PhaseWiring.TRI231, (16, 0, 0)) == (0.0, 16.0, 0.0)
    assert connector_to_building_phases(PhaseWiring.TRI312, (1, 2, 3)) == (2.0, 3.0, 1.0)
    assert connector_to_building_phases(PhaseWiring.MONO3, (7, 9, 9)) == (0.0, 0.0, 7.0)


def test_ev_phase_count_is_detected_from_current() -> None:
    assert detect_ev_phases(PhaseWiring.TRI123, (16, 0.2, 0)) == 1
    assert detect_ev_phases(PhaseWiring.TRI123, (16, 16, 15.8)) == 3
    assert detect_ev_phases(PhaseWiring.TRI123, (0, 0, 0)) is None
    assert detect_ev_phases(PhaseWiring.MONO1, (16, 16, 16)) == 1


def test_power_and_current_convert_at_cos_phi_1() -> None:
    assert current_to_power_w(10, 3, 230) == 6900
    assert power_to_current_a(6900, 3, 230) == 10


def test_ranking_survives_a_json_round_trip() -> None:
    ranking = Ranking(keys=("b", "a"), ranked_at_s=12.5, capacity_signature="1:100:ok")
    assert Ranking.from_dict(json.loads(json.dumps(ranking.as_dict()))) == ranking


def test_deciamp_rounding_is_safe_and_absorbs_float_noise() -> None:
    assert deciamps_down(19.37) == 193
    assert deciamps_up(19.37) == 194
    assert deciamps_down(0.1 + 0.2) == 3  # 0.30000000000000004
    assert deciamps_down(70 * 0.7) == 490  # 48.99999999999999
    assert deciamps_up(48.00000000000001) == 480
