"""Modbus RTU over a serial line made of two joined pseudo-terminals."""

from __future__ import annotations

import asyncio

import pytest

from apps.meters.modbus import (
    PM5320,
    MeterConnectionError,
    MeterError,
    MeterReading,
    MeterSession,
    MeterTimeout,
    RtuConnection,
)
from apps.simulator.modbus_meter import MeterSimulator


@pytest.fixture
def rtu_sim(serial_line):
    simulator = MeterSimulator(serial_device=serial_line.end_a)
    simulator.add_unit(3, PM5320, coil_count=2)
    simulator.add_unit(4, PM5320)
    simulator.start_in_thread()
    yield simulator
    simulator.stop_thread()


def test_meters_on_one_line_are_read_over_rtu(rtu_sim, serial_line):
    rtu_sim.set_values(3, current_a=(5.0, 6.0, 7.0), energy_kwh=12.0)
    rtu_sim.set_values(4, current_a=(1.0, 2.0, 3.0))
    rtu_sim.set_bit(3, "coil", 1, True)

    async def scenario() -> tuple[list[MeterReading], bool]:
        async with MeterSession() as session:
            readings = await session.read_meters(
                [
                    (RtuConnection(serial_line.end_b, unit_id=3), PM5320),
                    (RtuConnection(serial_line.end_b, unit_id=4), PM5320),
                ]
            )
            coil = await session.read_bit(RtuConnection(serial_line.end_b, unit_id=3), 1, "coil")
            return readings, coil

    (meter_3, meter_4), coil = asyncio.run(scenario())

    assert meter_3.currents_a == (5.0, 6.0, 7.0)
    assert meter_3.power_total_kw == pytest.approx(4.14)
    assert meter_3.energy_delivered_kwh == 12.0
    assert meter_4.currents_a == (1.0, 2.0, 3.0)
    assert coil is True


def test_absent_unit_is_silent_on_a_bus_then_the_line_keeps_working(rtu_sim, serial_line):
    rtu_sim.set_values(3, current_a=(5.0, 6.0, 7.0))

    async def scenario() -> tuple[MeterError, MeterReading]:
        async with MeterSession(timeout_s=0.3) as session:
            with pytest.raises(MeterTimeout) as excinfo:
                await session.read_meter(RtuConnection(serial_line.end_b, unit_id=9), PM5320)
            reading = await session.read_meter(RtuConnection(serial_line.end_b, unit_id=3), PM5320)
            return excinfo.value, reading

    error, reading = asyncio.run(scenario())

    assert "unit 9" in str(error)
    assert "wrong unit id, line settings or wiring" in str(error)
    assert reading.currents_a == (5.0, 6.0, 7.0)


def test_units_of_one_line_must_share_its_settings(rtu_sim, serial_line):
    async def scenario() -> None:
        async with MeterSession() as session:
            await session.read_meter(RtuConnection(serial_line.end_b, unit_id=3), PM5320)
            await session.read_meter(
                RtuConnection(serial_line.end_b, unit_id=4, baudrate=9600), PM5320
            )

    with pytest.raises(MeterConnectionError, match="already used at 19200 8N1"):
        asyncio.run(scenario())


def test_missing_serial_device():
    async def scenario() -> None:
        async with MeterSession() as session:
            await session.read_meter(RtuConnection("/dev/evce-no-such-tty", unit_id=1), PM5320)

    with pytest.raises(
        MeterConnectionError, match="cannot open serial device /dev/evce-no-such-tty"
    ):
        asyncio.run(scenario())
