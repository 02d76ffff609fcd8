"""Phase wiring: station phases to building phases (pure)."""

from __future__ import annotations

import pytest

from apps.energy.allocator import CurrentType, PhaseWiring, loaded_phases
from apps.simulator.engine.wiring import (
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


@pytest.mark.parametrize("wiring", list(PhaseWiring))
@pytest.mark.parametrize("ev_phases", [1, 2, 3])
def test_simulated_load_lands_on_the_phases_the_allocator_budgets(
    wiring: PhaseWiring, ev_phases: int
) -> None:
    """A simulated EV loads exactly the building phases the allocator counts it on.

    E.g. a single-phase EV on a TRI231 station draws on the station's L1, which a
    zone meter sees on L2 — where the allocator budgets that session.
    """
    drawn = building_phase_currents_a(wiring, station_phase_currents_a(16, ev_phases))
    loaded = tuple(index for index, current_a in enumerate(drawn) if current_a > 0)
    assert loaded == loaded_phases(wiring, ev_phases, CurrentType.AC)


def test_rotation_follows_the_wiring_table() -> None:
    """The rotation a simulated station announces names the building phase of its L1, L2, L3."""
    for wiring in PhaseWiring:
        rotation = ocpp_phase_rotation(wiring)
        if phase_count(wiring) == 1:
            assert rotation == "NotApplicable"
        else:
            assert tuple("RST".index(letter) for letter in rotation) == wiring.building_phases
