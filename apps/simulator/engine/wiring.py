"""Connector phase wiring: which building phase each phase of a station is on.

A station measures its own L1/L2/L3 terminals; the installer may have wired
them to the building with a rotation (TRI231: the station's L1 is the
building's L2) or used a single phase (MONO3: the station's only phase is the
building's L3). MeterValues report the station's own phases; the building
view (what a zone meter sees) goes through this mapping.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

PhaseCurrents = tuple[float, float, float]
"""Currents on L1, L2, L3 in amperes."""


class PhaseWiring(StrEnum):
    MONO1 = "MONO1"
    MONO2 = "MONO2"
    MONO3 = "MONO3"
    TRI123 = "TRI123"
    TRI231 = "TRI231"
    TRI312 = "TRI312"


# Building phase (1-3) of the station's L1, L2, L3, in that order.
_BUILDING_PHASES: dict[PhaseWiring, tuple[int, ...]] = {
    PhaseWiring.MONO1: (1,),
    PhaseWiring.MONO2: (2,),
    PhaseWiring.MONO3: (3,),
    PhaseWiring.TRI123: (1, 2, 3),
    PhaseWiring.TRI231: (2, 3, 1),
    PhaseWiring.TRI312: (3, 1, 2),
}

# OCPP ConnectorPhaseRotation values (R, S, T are the building's L1, L2, L3).
_OCPP_ROTATION: dict[PhaseWiring, str] = {
    PhaseWiring.TRI123: "RST",
    PhaseWiring.TRI231: "STR",
    PhaseWiring.TRI312: "TRS",
}


def building_phases(wiring: PhaseWiring) -> tuple[int, ...]:
    """Building phases (1-3) of the station's L1, L2, L3 in order."""
    return _BUILDING_PHASES[PhaseWiring(wiring)]


def phase_count(wiring: PhaseWiring) -> int:
    """How many phases the connector has: 1 for MONO wiring, else 3."""
    return len(building_phases(wiring))


def ocpp_phase_rotation(wiring: PhaseWiring) -> str:
    """The OCPP ``ConnectorPhaseRotation`` value; single phase is NotApplicable."""
    return _OCPP_ROTATION.get(PhaseWiring(wiring), "NotApplicable")


def station_phase_currents_a(current_a: float, phases_used: int) -> PhaseCurrents:
    """Currents on the station's own L1-L3 when the EV draws ``current_a`` on ``phases_used``.

    A single-phase EV always charges on the station's first phase.
    """
    used = max(0, min(3, phases_used))
    return tuple(current_a if index < used else 0.0 for index in range(3))  # type: ignore[return-value]


def building_phase_currents_a(
    wiring: PhaseWiring, station_currents_a: Sequence[float]
) -> PhaseCurrents:
    """Map currents on the station's own phases onto the building's L1-L3."""
    result = [0.0, 0.0, 0.0]
    for local_index, building_phase in enumerate(building_phases(wiring)):
        result[building_phase - 1] += station_currents_a[local_index]
    return result[0], result[1], result[2]
