"""Phase wiring: station phases to building phases (pure)."""

from __future__ import annotations

import pytest

from apps.simulator.engine.wiring import (
    PhaseWiring,
    building_phase_currents_a,
    ocpp_phase_rotation,
    phase_count,
    station_phase_currents_a,
)


@pytest.mark.parametrize(
    ("wiring", "single_phase", "three_phase"),
    [
        (PhaseWiring.MONO1, (16, 0, 0), (16, 0, 0)),
        (PhaseWiring.MONO2, (0, 16, 0), (0, 16, 0)),
        (PhaseWiring.MONO3, (0, 0, 16), (0, 0, 16)),
        (PhaseWiring.TRI123, (16, 0, 0), (16, 16, 16)),
        (PhaseWiring.TRI231, (0, 16, 0), (16, 16, 16)),
        (PhaseWiring.TRI312, (0, 0, 16), (16, 16, 16)),
    ],
)
def test_single_phase_evs_load_the_first_wired_phase(
    wiring: PhaseWiring, single_phase: tuple[float, ...], three_phase: tuple[float, ...]
) -> None:
    assert building_phase_currents_a(wiring, station_phase_currents_a(16, 1)) == single_phase
    used = min(3, phase_count(wiring))
    assert building_phase_currents_a(wiring, station_phase_currents_a(16, used)) == three_phase


def test_phase_counts_and_ocpp_rotation() -> None:
    assert phase_count(PhaseWiring.MONO2) == 1
    assert phase_count(PhaseWiring.TRI312) == 3
    assert ocpp_phase_rotation(PhaseWiring.TRI123) == "RST"
    assert ocpp_phase_rotation(PhaseWiring.TRI231) == "STR"
    assert ocpp_phase_rotation(PhaseWiring.TRI312) == "TRS"
    assert ocpp_phase_rotation(PhaseWiring.MONO1) == "NotApplicable"


def test_station_phase_currents() -> None:
    assert station_phase_currents_a(10, 0) == (0, 0, 0)
    assert station_phase_currents_a(10, 2) == (10, 10, 0)
