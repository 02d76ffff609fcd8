"""Phase wiring: station phases to building phases, one table for the simulator and evce."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ocpp.charge_point import snake_to_camel_case

from apps.central_system.metering import parse_meter_values
from apps.energy.allocator import CurrentType, PhaseWiring, loaded_phases
from apps.energy.measurement import ac_current_a
from apps.simulator.engine.meter import MeterReading, meter_value
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


@pytest.mark.parametrize("wiring", list(PhaseWiring))
@pytest.mark.parametrize("ev_phases", [1, 3])
def test_evce_reads_a_simulated_station_on_the_building_phases_it_loads(
    wiring: PhaseWiring, ev_phases: int
) -> None:
    """The station reports its own L1-L3; evce maps them back to where a zone meter sees them."""
    used = min(ev_phases, phase_count(wiring))
    station_currents_a = station_phase_currents_a(16, used)
    reading = MeterReading(
        at=datetime(2025, 3, 3, 8, 0, tzinfo=UTC),
        currents_a=station_currents_a,
        phase_count=phase_count(wiring),
        energy_wh=1000,
        offered_a=16,
        offered_phases=used,
    )
    sent = snake_to_camel_case(meter_value(reading, ["Current.Import"], "Sample.Periodic"))
    (parsed,) = parse_meter_values([sent])
    assert ac_current_a(wiring, parsed) == building_phase_currents_a(wiring, station_currents_a)
