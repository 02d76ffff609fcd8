"""Built-in models read the documented registers as A, kW and kWh.

The raw values are encoded here from the vendors' tables (printed 1-based
register number, format, unit), independently of the maps under test.
"""

from __future__ import annotations

import asyncio

import pytest

from apps.meters.modbus import MeterSession, TcpConnection, read_meter_sync
from apps.meters.modbus.builtin import BUILTIN_MODELS, MTZ, NSX, NSX_LEGACY, PM5320, builtin_model
from apps.meters.modbus.registers import REGISTER_FIELDS, RegisterMap, encode_registers

# field: (printed register, format, raw value in the device's unit, value in A/kW/kWh)
VENDOR_TABLES = {
    "pm5320": {
        "current_l1_a": (3000, "float32", 41.5, 41.5),
        "current_l2_a": (3002, "float32", 38.25, 38.25),
        "current_l3_a": (3004, "float32", 40.0, 40.0),
        "power_l1_kw": (3054, "float32", 9.5, 9.5),
        "power_l2_kw": (3056, "float32", 8.75, 8.75),
        "power_l3_kw": (3058, "float32", 9.25, 9.25),
        "power_total_kw": (3060, "float32", 27.5, 27.5),
        "energy_delivered_kwh": (3204, "int64", 123_456_789, 123_456.789),  # Wh
    },
    "nsx_legacy": {
        "current_l1_a": (12016, "uint16", 41, 41.0),
        "current_l2_a": (12017, "uint16", 38, 38.0),
        "current_l3_a": (12018, "uint16", 40, 40.0),
        "power_l1_kw": (12038, "int16", 95, 9.5),  # kW x 10
        "power_l2_kw": (12039, "int16", -12, -1.2),
        "power_l3_kw": (12040, "int16", 92, 9.2),
        "power_total_kw": (12041, "int16", 175, 17.5),
        "energy_delivered_kwh": (12050, "int32", 1_234_567, 1_234_567.0),  # kWh
    },
    **{
        name: {
            "current_l1_a": (32028, "float32", 41.5, 41.5),
            "current_l2_a": (32030, "float32", 38.25, 38.25),
            "current_l3_a": (32032, "float32", 40.0, 40.0),
            "power_l1_kw": (32072, "float32", 9500.0, 9.5),  # W
            "power_l2_kw": (32074, "float32", 8750.0, 8.75),
            "power_l3_kw": (32076, "float32", -250.0, -0.25),
            "power_total_kw": (32078, "float32", 18000.0, 18.0),
            "energy_delivered_kwh": (32104, "uint64", 987_654_321, 987_654.321),  # Wh
        }
        for name in ("nsx", "mtz")
    },
}


def test_every_builtin_model_maps_all_values_as_holding_big_endian():
    assert set(BUILTIN_MODELS) == {"pm5320", "nsx_legacy", "nsx", "mtz"}
    for name, register_map in BUILTIN_MODELS.items():
        assert builtin_model(name) is register_map
        specs = register_map.specs()
        assert list(specs) == list(REGISTER_FIELDS), name
        assert {str(spec.register_type) for spec in specs.values()} == {"holding"}
        assert {str(spec.word_order) for spec in specs.values()} == {"big"}
        assert RegisterMap.from_json(register_map.to_json()) == register_map


def test_pm5320_addresses_are_the_printed_numbers_minus_one():
    assert [spec.address for spec in PM5320.specs().values()] == [
        2999,
        3001,
        3003,
        3053,
        3055,
        3057,
        3059,
        3203,
    ]
    assert PM5320.energy_delivered_kwh.format == "int64"
    assert PM5320.energy_delivered_kwh.scale == 0.001


@pytest.mark.parametrize("register_map", [PM5320, NSX_LEGACY, NSX, MTZ], ids=lambda m: m.name)
def test_builtin_model_reads_documented_registers(sim, register_map):
    sim.add_unit(7, register_map)
    port = sim.start_in_thread()
    table = VENDOR_TABLES[register_map.name]
    for printed, register_format, raw, _expected in table.values():
        sim.set_registers(7, "holding", printed - 1, encode_registers(raw, register_format, "big"))

    reading = read_meter_sync(TcpConnection("127.0.0.1", port, unit_id=7), register_map)

    for field, (_printed, _format, _raw, expected) in table.items():
        assert getattr(reading, field) == pytest.approx(expected), field


def test_simulator_values_come_back_through_each_builtin_model(sim):
    for unit_id, register_map in enumerate(BUILTIN_MODELS.values(), start=1):
        sim.add_unit(unit_id, register_map)
    port = sim.start_in_thread()
    for unit_id in range(1, 5):
        sim.set_values(unit_id, current_a=(30.0, 20.0, 10.0), energy_kwh=4321.0)

    async def read_all():
        async with MeterSession() as session:
            return await session.read_meters(
                [
                    (TcpConnection("127.0.0.1", port, unit_id), register_map)
                    for unit_id, register_map in enumerate(BUILTIN_MODELS.values(), start=1)
                ]
            )

    for reading in asyncio.run(read_all()):
        assert reading.currents_a == (30.0, 20.0, 10.0)
        assert reading.power_l1_kw == pytest.approx(6.9, abs=0.05)  # 30 A x 230 V
        assert reading.power_total_kw == pytest.approx(13.8, abs=0.1)
        assert reading.energy_delivered_kwh == pytest.approx(4321.0)
