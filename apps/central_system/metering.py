"""Turn OCPP ``MeterValue`` elements into readings with explicit units.

OCPP defaults matter here: a sampled value without measurand is the energy
register, a value without unit is in Wh. Stations report power in W or kW
and energy in Wh or kWh; everything leaves this module in A, W and Wh.
Signed values and values measured elsewhere than the outlet are skipped.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from ocpp.v16.enums import Location, Measurand, Phase, ReadingContext, UnitOfMeasure, ValueFormat

from apps.central_system.protocol import parse_ocpp_datetime
from apps.stations.services import MeterReading

ENERGY = Measurand.energy_active_import_register
POWER = Measurand.power_active_import
CURRENT = Measurand.current_import
OFFERED = Measurand.current_offered
WANTED_MEASURANDS = (CURRENT, POWER, ENERGY, OFFERED)
_KILO_UNITS = {(POWER, UnitOfMeasure.kw), (ENERGY, UnitOfMeasure.kwh)}
_IGNORED_LOCATIONS = {Location.ev, Location.body, Location.cable}
_PHASES = {
    Phase.l1: 1,
    Phase.l2: 2,
    Phase.l3: 3,
    Phase.l1_n: 1,
    Phase.l2_n: 2,
    Phase.l3_n: 3,
}


def parse_meter_values(meter_values: list[dict[str, Any]]) -> list[MeterReading]:
    """One reading per ``meterValue`` element that carries something we use."""
    readings = []
    for element in meter_values:
        sampled_at = parse_ocpp_datetime(element.get("timestamp", ""))
        if sampled_at is None:
            continue
        reading = _reading(sampled_at, element.get("sampledValue") or [])
        if reading.has_measurement:
            readings.append(reading)
    return readings


def _reading(sampled_at: datetime, sampled_values: list[dict[str, Any]]) -> MeterReading:
    # measurand -> phase (0 = no phase) -> value in A, W or Wh
    values: dict[str, dict[int, float]] = defaultdict(dict)
    context = ""
    for sample in sampled_values:
        if sample.get("format") == ValueFormat.signed_data:
            continue
        if sample.get("location") in _IGNORED_LOCATIONS:
            continue
        measurand = sample.get("measurand", ENERGY)
        if measurand not in WANTED_MEASURANDS:
            continue
        number = _number(sample.get("value"))
        if number is None:
            continue
        unit = sample.get("unit", UnitOfMeasure.wh)
        if (measurand, unit) in _KILO_UNITS:
            number *= 1000
        phase = sample.get("phase")
        if phase == Phase.n:
            continue
        values[measurand][_PHASES.get(phase, 0)] = number
        context = context or sample.get("context", "")

    currents = values.get(CURRENT, {})
    per_phase = {p: v for p, v in currents.items() if p}
    # A current without a phase may flow on any phase of the connector: it is
    # kept apart, never filed under L1 (which would make the EV look
    # single-phase). With per-phase values beside it, those say more.
    unknown_phase_a = None if per_phase else currents.get(0)
    return MeterReading(
        sampled_at=sampled_at,
        current_l1_a=per_phase.get(1),
        current_l2_a=per_phase.get(2),
        current_l3_a=per_phase.get(3),
        current_unknown_phase_a=unknown_phase_a,
        power_w=_total(values.get(POWER)),
        energy_wh=_total(values.get(ENERGY)),
        current_offered_a=_offered(values.get(OFFERED)),
        context=context or ReadingContext.sample_periodic,
    )


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return number


def _total(by_phase: dict[int, float] | None) -> float | None:
    """The phase-less value when given, else the sum of the phases."""
    if not by_phase:
        return None
    if 0 in by_phase:
        return by_phase[0]
    return sum(by_phase.values())


def _offered(by_phase: dict[int, float] | None) -> float | None:
    if not by_phase:
        return None
    return by_phase.get(0, max(by_phase.values()))
