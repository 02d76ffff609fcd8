"""MeterValues → readings in A, W and Wh."""

from __future__ import annotations

from datetime import UTC, datetime

from apps.central_system.metering import parse_meter_values


def element(*values, timestamp="2025-03-01T08:00:00Z"):
    return {"timestamp": timestamp, "sampledValue": list(values)}


def test_per_phase_current_power_in_kw_energy_in_kwh_and_offered_current():
    [reading] = parse_meter_values(
        [
            element(
                {"measurand": "Current.Import", "phase": "L1", "unit": "A", "value": "16.1"},
                {"measurand": "Current.Import", "phase": "L2", "unit": "A", "value": "15.9"},
                {"measurand": "Current.Import", "phase": "L3", "unit": "A", "value": "0.2"},
                {"measurand": "Current.Import", "phase": "N", "unit": "A", "value": "9"},
                {"measurand": "Power.Active.Import", "unit": "kW", "value": "7.4"},
                {"measurand": "Energy.Active.Import.Register", "unit": "kWh", "value": "12.5"},
                {"measurand": "Current.Offered", "unit": "A", "value": "32", "context": "Trigger"},
            )
        ]
    )
    assert reading.sampled_at == datetime(2025, 3, 1, 8, tzinfo=UTC)
    assert reading.phase_currents_a == [16.1, 15.9, 0.2]
    assert (reading.power_w, reading.energy_wh, reading.current_offered_a) == (7400, 12500, 32)
    assert reading.context == "Trigger"


def test_ocpp_defaults_measurand_energy_and_unit_wh():
    [reading] = parse_meter_values([element({"value": "1234"})])
    assert reading.energy_wh == 1234
    assert reading.context == "Sample.Periodic"


def test_a_phase_less_current_is_kept_apart_and_per_phase_power_is_summed():
    [reading] = parse_meter_values(
        [
            element(
                {"measurand": "Current.Import", "value": "10"},
                {"measurand": "Power.Active.Import", "phase": "L1-N", "unit": "W", "value": "1000"},
                {"measurand": "Power.Active.Import", "phase": "L2-N", "unit": "W", "value": "1100"},
            )
        ]
    )
    # Filed under L1 it would make a three-phase EV look single-phase.
    assert reading.phase_currents_a == []
    assert reading.current_unknown_phase_a == 10
    assert reading.currents_a == [10]
    assert reading.power_w == 2100


def test_per_phase_currents_say_more_than_a_phase_less_one_beside_them():
    [reading] = parse_meter_values(
        [
            element(
                {"measurand": "Current.Import", "value": "30"},
                {"measurand": "Current.Import", "phase": "L1", "value": "16"},
            )
        ]
    )
    assert reading.phase_currents_a == [16]
    assert reading.current_unknown_phase_a is None


def test_a_reading_with_only_a_phase_less_current_is_kept():
    [reading] = parse_meter_values([element({"measurand": "Current.Import", "value": "7"})])
    assert reading.current_unknown_phase_a == 7


def test_unusable_values_are_skipped():
    readings = parse_meter_values(
        [
            element({"value": "abc"}),
            element({"value": "5", "format": "SignedData"}),
            element({"value": "5", "location": "EV"}),
            element({"measurand": "Voltage", "value": "230"}),
            element({"value": "5"}, timestamp="not a time"),
            element({"value": "NaN"}),
        ]
    )
    assert readings == []
