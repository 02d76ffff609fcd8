"""Meter readings as OCPP sampled values (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from apps.simulator.engine.meter import MeterReading, meter_value

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


def test_meter_value_of_a_single_phase_connector() -> None:
    reading = MeterReading(T0, (16.0, 0.0, 0.0), 1, 1234.4, 32.0, 1)
    value = meter_value(
        reading,
        [
            "Current.Import",
            "Power.Active.Import",
            "Energy.Active.Import.Register",
            "Current.Offered",
            "Power.Offered",
        ],
        "Sample.Periodic",
    )
    assert value["timestamp"] == "2025-03-03T08:00:00.000Z"
    by_measurand = {(v["measurand"], v.get("phase")): v["value"] for v in value["sampled_value"]}
    assert by_measurand == {
        ("Current.Import", "L1"): "16.0",
        ("Power.Active.Import", None): "3680",
        ("Energy.Active.Import.Register", None): "1234",
        ("Current.Offered", None): "32.0",
        ("Power.Offered", None): "7360",
    }
    assert {v["context"] for v in value["sampled_value"]} == {"Sample.Periodic"}
    assert meter_value(reading, [], "Trigger")["sampled_value"][0]["value"] == "1234"
