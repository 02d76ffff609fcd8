"""The Modbus meter simulator: daily curves and a real Modbus server (no Django)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pymodbus.client import AsyncModbusTcpClient

from apps.meters.modbus import (
    PM5320,
    MeterConnectionRefused,
    MeterSession,
    TcpConnection,
    read_meter_sync,
)
from apps.simulator.modbus_meter import MeterSimulator, building_load_a, solar_production_a
from tests.purity import forbidden_imports

LOCAL = "127.0.0.1"
MONDAY = datetime(2024, 6, 17, tzinfo=UTC)
SATURDAY = datetime(2024, 6, 22, tzinfo=UTC)


@pytest.fixture
def sim() -> Iterator[MeterSimulator]:
    """A simulator on 127.0.0.1 and a free port; add units, then ``start_in_thread()``."""
    simulator = MeterSimulator(LOCAL, 0)
    yield simulator
    simulator.stop_thread()


def test_meter_simulator_imports_no_framework():
    """Demos and tests run it beside evce, talking to it over Modbus only."""
    assert forbidden_imports("apps.simulator.modbus_meter") == []


def at(day: datetime, hour: float) -> datetime:
    return day + timedelta(hours=hour)


# ----- curves --------------------------------------------------------------


def test_building_load_is_low_at_night_and_high_on_weekdays():
    night = building_load_a(at(MONDAY, 3))
    morning = building_load_a(at(MONDAY, 10.5))
    lunch = building_load_a(at(MONDAY, 12.75))
    weekend = building_load_a(at(SATURDAY, 10.5))
    assert all(8 <= current <= 16 for current in night)
    assert sum(morning) > 3 * sum(night)
    assert sum(lunch) < sum(morning)
    assert sum(night) < sum(weekend) < sum(morning) / 2
    assert len(set(morning)) == 3  # phases are unbalanced


def test_building_load_is_a_pure_function_of_time():
    t = at(MONDAY, 15.2)
    assert building_load_a(t) == building_load_a(t)
    assert building_load_a(t, peak_a=100)[0] > building_load_a(t)[0]
    for minute in range(0, 24 * 60, 7):
        assert all(current > 0 for current in building_load_a(at(MONDAY, minute / 60)))


def test_solar_production_follows_the_day_and_the_season():
    june, december = MONDAY, datetime(2024, 12, 16, tzinfo=UTC)
    assert solar_production_a(at(june, 0), 40) == (0.0, 0.0, 0.0)
    assert solar_production_a(at(june, 23), 40) == (0.0, 0.0, 0.0)
    noon = solar_production_a(at(june, 13), 40)
    assert noon[0] == noon[1] == noon[2]
    assert 35 <= noon[0] <= 40
    assert solar_production_a(at(june, 9), 40)[0] < noon[0]
    assert solar_production_a(at(december, 13), 40)[0] < noon[0] / 1.5
    assert solar_production_a(at(december, 18), 40) == (0.0, 0.0, 0.0)
    assert solar_production_a(at(june, 18), 40)[0] > 0
    with pytest.raises(ValueError):
        solar_production_a(at(june, 13), -1)


# ----- serving -----------------------------------------------------------------


def test_simulator_runs_inside_an_event_loop_and_reports_its_port():
    async def scenario() -> tuple[int, tuple]:
        simulator = MeterSimulator(LOCAL, 0)
        simulator.add_unit(1)  # PM5320 by default
        async with simulator:
            assert simulator.port > 0
            simulator.set_values(1, current_a=(3.0, 4.0, 5.0))
            async with MeterSession() as session:
                reading = await session.read_meter(TcpConnection(LOCAL, simulator.port, 1), PM5320)
        await simulator.stop()  # idempotent
        return simulator.port, reading.currents_a

    port, currents = asyncio.run(scenario())

    assert currents == (3.0, 4.0, 5.0)
    with pytest.raises(MeterConnectionRefused):
        read_meter_sync(TcpConnection(LOCAL, port, 1), PM5320)


def test_powers_default_to_current_times_voltage(sim):
    sim.add_unit(1)
    port = sim.start_in_thread()
    sim.set_values(1, current_a=(10.0, 20.0, 0.0), energy_kwh=100.0)
    first = read_meter_sync(TcpConnection(LOCAL, port, 1), PM5320)
    sim.set_values(1, current_a=(1.0, 1.0, 1.0), power_kw=(0.1, 0.2, 0.3), voltage_v=400)
    second = read_meter_sync(TcpConnection(LOCAL, port, 1), PM5320)

    assert (first.power_l1_kw, first.power_l2_kw, first.power_l3_kw) == (2.3, 4.6, 0.0)
    assert first.power_total_kw == pytest.approx(6.9)
    assert (second.power_l1_kw, second.power_l2_kw, second.power_l3_kw) == (0.1, 0.2, 0.3)
    assert second.power_total_kw == pytest.approx(0.6)
    assert second.energy_delivered_kwh == 100.0  # left unchanged


def test_client_writes_reach_the_simulated_coils(sim):
    sim.add_unit(2, None, coil_count=8)
    port = sim.start_in_thread()

    async def write() -> None:
        client = AsyncModbusTcpClient(LOCAL, port=port)
        await client.connect()
        try:
            response = await client.write_coil(6, True, device_id=2)
            assert not response.isError()
        finally:
            client.close()

    asyncio.run(write())

    assert sim.get_bit(2, "coil", 6) is True
    assert sim.get_bit(2, "coil", 5) is False


def test_configuration_errors(sim):
    sim.add_unit(1)
    sim.add_unit(2, None, discrete_input_count=1)
    with pytest.raises(ValueError, match="already"):
        sim.add_unit(1)
    with pytest.raises(ValueError, match="outside 1-255"):
        sim.add_unit(0)
    with pytest.raises(KeyError):
        sim.set_values(3, current_a=(1, 2, 3))
    with pytest.raises(ValueError, match="no register map"):
        sim.set_values(2, current_a=(1, 2, 3))
    with pytest.raises(KeyError, match="voltage"):
        sim.set_value(1, "voltage_l1_v", 230)
    with pytest.raises(ValueError, match="does not serve"):
        sim.set_registers(1, "holding", 10, [1])
    with pytest.raises(ValueError, match="does not serve"):
        sim.set_registers(1, "input", 2999, [1])
    with pytest.raises(ValueError, match="no discrete_input 1"):
        sim.set_bit(2, "discrete_input", 1, True)
    sim.start_in_thread()
    with pytest.raises(RuntimeError):
        sim.add_unit(5)
    with pytest.raises(RuntimeError):
        sim.start_in_thread()
    assert sim.unit_ids == [1, 2]


def test_raw_registers_round_trip(sim):
    sim.add_unit(1)
    sim.start_in_thread()
    sim.set_registers(1, "holding", 3000, [0x1234, 0xABCD])
    assert sim.get_registers(1, "holding", 2999, 3) == [0, 0x1234, 0xABCD]
    with pytest.raises(ValueError, match="0-65535"):
        sim.set_registers(1, "holding", 3000, [70000])
