"""What a connector's meter reports: one reading turned into OCPP sampled values.

Per-phase values are on the station's own L1/L2/L3 (as its meter sees
them); a single-phase connector only has L1. The central system maps them to
building phases with the connector's wiring.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ocpp.v16.enums import Location, Measurand, Phase, UnitOfMeasure

from apps.simulator.engine.clock import format_ocpp_time
from apps.simulator.engine.wiring import PhaseCurrents

_PHASES = (Phase.l1, Phase.l2, Phase.l3)
_PHASES_TO_NEUTRAL = (Phase.l1_n, Phase.l2_n, Phase.l3_n)


@dataclass(frozen=True, slots=True)
class MeterReading:
    """The meter of one connector at one instant."""

    at: datetime
    currents_a: PhaseCurrents
    phase_count: int
    energy_wh: float
    offered_a: float
    offered_phases: int
    voltage_v: float = 230.0

    @property
    def power_w(self) -> float:
        return sum(self.currents_a) * self.voltage_v


def meter_value(reading: MeterReading, measurands: Iterable[str], context: str) -> dict[str, Any]:
    """One OCPP ``MeterValue`` (snake_case keys) with the requested measurands."""
    sampled: list[dict[str, str]] = []
    for measurand in measurands:
        base = {"context": context, "measurand": measurand, "location": Location.outlet}
        if measurand == Measurand.current_import:
            for index in range(reading.phase_count):
                value = f"{reading.currents_a[index]:.1f}"
                sampled.append(
                    {**base, "value": value, "phase": _PHASES[index], "unit": UnitOfMeasure.a}
                )
        elif measurand == Measurand.voltage:
            for index in range(reading.phase_count):
                value = f"{reading.voltage_v:.1f}"
                phase = _PHASES_TO_NEUTRAL[index]
                sampled.append({**base, "value": value, "phase": phase, "unit": UnitOfMeasure.v})
        elif measurand == Measurand.power_active_import:
            sampled.append({**base, "value": f"{reading.power_w:.0f}", "unit": UnitOfMeasure.w})
        elif measurand == Measurand.energy_active_import_register:
            sampled.append({**base, "value": f"{reading.energy_wh:.0f}", "unit": UnitOfMeasure.wh})
        elif measurand == Measurand.current_offered:
            sampled.append({**base, "value": f"{reading.offered_a:.1f}", "unit": UnitOfMeasure.a})
        elif measurand == Measurand.power_offered:
            power_w = reading.offered_a * reading.voltage_v * reading.offered_phases
            sampled.append({**base, "value": f"{power_w:.0f}", "unit": UnitOfMeasure.w})
    if not sampled:
        # A MeterValue needs at least one sampled value; the register is the OCPP default.
        sampled.append(
            {"context": context, "value": f"{reading.energy_wh:.0f}", "unit": UnitOfMeasure.wh}
        )
    return {"timestamp": format_ocpp_time(reading.at), "sampled_value": sampled}
