"""Connector phase wiring, seen from the station: its own L1/L2/L3 and the building's.

A station measures its own L1/L2/L3 terminals; the installer may have wired
them to the building with a rotation (TRI231: the station's L1 is the
building's L2) or used a single phase (MONO3: the station's only phase is the
building's L3). MeterValues report the station's own phases; the building
view (what a zone meter sees) goes through this mapping.

The wiring values and their phase table are the allocator's
(:class:`apps.energy.allocator.PhaseWiring`), so the simulated site loads the
building phases evce budgets for.
"""

from __future__ import annotations

from collections.abc import Sequence

from apps.energy.allocator import PhaseWiring, connector_to_building_phases

PhaseCurrents = tuple[float, float, float]
"""Currents on L1, L2, L3 in amperes."""

# OCPP ConnectorPhaseRotation letters: R, S, T are the building's L1, L2, L3.
_ROTATION_LETTERS = "RST"


def phase_count(wiring: PhaseWiring) -> int:
    """How many phases the connector has: 1 for MONO wiring, else 3."""
    return len(PhaseWiring(wiring).building_phases)


def ocpp_phase_rotation(wiring: PhaseWiring) -> str:
    """The OCPP ``ConnectorPhaseRotation`` value; single phase is NotApplicable.

    The letters name the building phases of the station's L1, L2, L3 in order
    (TRI231 → ``STR``), read from the same table as the allocator's.
    """
    phases = PhaseWiring(wiring).building_phases
    if len(phases) < 3:
        return "NotApplicable"
    return "".join(_ROTATION_LETTERS[index] for index in phases)


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
    return connector_to_building_phases(PhaseWiring(wiring), station_currents_a)
