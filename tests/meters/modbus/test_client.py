"""Reading meters over Modbus TCP against a real pymodbus server."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from apps.meters.modbus import (
    NSX_LEGACY,
    PM5320,
    BlockingMeterSession,
    MeterConnectionError,
    MeterConnectionRefused,
    MeterError,
    MeterModbusException,
    MeterReading,
    MeterSession,
    MeterTimeout,
    MeterWrongUnit,
    RegisterMap,
    RegisterSpec,
    RtuConnection,
    TcpConnection,
    read_bit,
    read_bit_sync,
    read_meter,
    read_meter_sync,
)
from apps.meters.modbus.registers import REGISTER_FIELDS, RegisterFormat, encode_registers
from apps.simulator.modbus_meter import MeterSimulator

LOCAL = "127.0.0.1"

# One representative, non-marker raw value per format.
FORMAT_VALUES = {
    RegisterFormat.FLOAT32: -12.5,
    RegisterFormat.INT64: -1_234_567_890_123,
    RegisterFormat.INT32: -123_456,
    RegisterFormat.INT16: -1234,
    RegisterFormat.UINT64: 2**40 + 5,
    RegisterFormat.UINT32: 3_000_000_000,
    RegisterFormat.UINT16: 60_000,
}


def all_formats_map(register_type: str, word_order: str) -> RegisterMap:
    """A map with one value per format (7 formats on 7 of the 8 fields), 10 registers apart."""
    specs = {
        field: RegisterSpec(
            address=100 + index * 10,
            format=register_format,
            register_type=register_type,
            word_order=word_order,
        )
        for index, (field, register_format) in enumerate(
            zip(REGISTER_FIELDS, FORMAT_VALUES, strict=False)
        )
    }
    return RegisterMap(name=f"all-{register_type}-{word_order}", **specs)


def test_every_format_in_both_word_orders_and_register_types(sim):
    maps = {
        unit_id: all_formats_map(register_type, word_order)
        for unit_id, (register_type, word_order) in enumerate(
            [("holding", "big"), ("holding", "little"), ("input", "big"), ("input", "little")],
            start=1,
        )
    }
    for unit_id, register_map in maps.items():
        sim.add_unit(unit_id, register_map)
    port = sim.start_in_thread()
    for unit_id, register_map in maps.items():
        for spec in register_map.specs().values():
            raw = encode_registers(FORMAT_VALUES[spec.format], spec.format, spec.word_order)
            sim.set_registers(unit_id, spec.register_type, spec.address, raw)

    async def read_all() -> dict[int, MeterReading]:
        async with MeterSession() as session:
            return {
                unit_id: await session.read_meter(TcpConnection(LOCAL, port, unit_id), register_map)
                for unit_id, register_map in maps.items()
            }

    readings = asyncio.run(read_all())
    for unit_id, register_map in maps.items():
        for field, spec in register_map.specs().items():
            assert getattr(readings[unit_id], field) == FORMAT_VALUES[spec.format], (unit_id, field)
        assert readings[unit_id].energy_delivered_kwh is None  # not mapped


def test_register_type_selects_the_table(sim):
    both = RegisterMap(
        name="same address, two tables",
        current_l1_a=RegisterSpec(10, "float32", register_type="holding"),
        current_l2_a=RegisterSpec(10, "float32", register_type="input"),
    )
    sim.add_unit(1, both)
    port = sim.start_in_thread()
    sim.set_registers(1, "holding", 10, encode_registers(11.0, "float32", "big"))
    sim.set_registers(1, "input", 10, encode_registers(22.0, "float32", "big"))

    reading = read_meter_sync(TcpConnection(LOCAL, port, 1), both)

    assert (reading.current_l1_a, reading.current_l2_a) == (11.0, 22.0)


def test_a_poll_takes_few_requests_and_reuses_the_connection(sim):
    sim.add_unit(1, PM5320)
    port = sim.start_in_thread()
    sim.set_values(1, current_a=(10.0, 11.0, 12.0), energy_kwh=5.0)
    connection = TcpConnection(LOCAL, port, 1)

    async def poll_twice() -> list[MeterReading]:
        async with MeterSession() as session:
            return [await session.read_meter(connection, PM5320) for _ in range(2)]

    first, second = asyncio.run(poll_twice())

    assert first.currents_a == second.currents_a == (10.0, 11.0, 12.0)
    assert [(r.function_code, r.address, r.count) for r in sim.requests] == [
        (3, 2999, 6),
        (3, 3053, 8),
        (3, 3203, 4),
    ] * 2
    assert sim.connections_opened == 1


def test_unavailable_values_read_as_none_not_zero(sim):
    sim.add_unit(1, PM5320)
    port = sim.start_in_thread()
    sim.set_values(1, current_a=(10.0, 11.0, 12.0), energy_kwh=5.0)
    sim.set_value(1, "current_l2_a", None)  # NaN
    sim.set_value(1, "energy_delivered_kwh", None)  # int64 N/A marker

    reading = read_meter_sync(TcpConnection(LOCAL, port, 1), PM5320)

    assert reading.currents_a == (10.0, None, 12.0)
    assert reading.energy_delivered_kwh is None
    assert reading.power_l1_kw == pytest.approx(2.3)


def test_timestamp_is_the_one_passed_in(sim):
    sim.add_unit(1, PM5320)
    port = sim.start_in_thread()
    at = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)

    reading = read_meter_sync(TcpConnection(LOCAL, port, 1), PM5320, read_at=at)

    assert reading.read_at == at
    assert set(reading.values()) == set(REGISTER_FIELDS)


def test_silent_device_times_out(silent_port):
    started = time.monotonic()
    with pytest.raises(MeterTimeout) as excinfo:
        read_meter_sync(TcpConnection(LOCAL, silent_port, 1), PM5320, timeout_s=0.2)
    assert time.monotonic() - started < 1.5
    assert f"no answer from {LOCAL}:{silent_port} unit 1 within 0.2 s" in str(excinfo.value)
    assert isinstance(excinfo.value, MeterError)


def test_closed_port_is_refused(closed_port):
    with pytest.raises(MeterConnectionRefused) as excinfo:
        read_meter_sync(TcpConnection(LOCAL, closed_port), PM5320, timeout_s=0.5)
    assert isinstance(excinfo.value, MeterConnectionError)
    assert "connection refused" in str(excinfo.value)
    assert excinfo.value.connection == TcpConnection(LOCAL, closed_port)


def test_unknown_host_is_a_connection_error():
    with pytest.raises(MeterConnectionError, match="unknown host"):
        read_meter_sync(TcpConnection("no-such-host.invalid"), PM5320, timeout_s=2)


def test_unmapped_address_is_a_modbus_exception(sim):
    sim.add_unit(1, PM5320)
    port = sim.start_in_thread()
    wrong = RegisterMap(name="wrong", current_l1_a=RegisterSpec(100, "float32"))

    with pytest.raises(MeterModbusException) as excinfo:
        read_meter_sync(TcpConnection(LOCAL, port, 1), wrong)

    assert (excinfo.value.code, excinfo.value.name) == (2, "illegal data address")
    assert "holding registers 100-101 (current_l1_a)" in str(excinfo.value)


def test_wrong_unit_id_behind_a_gateway(sim):
    sim.add_unit(1, PM5320)
    port = sim.start_in_thread()

    with pytest.raises(MeterWrongUnit) as excinfo:
        read_meter_sync(TcpConnection(LOCAL, port, 9), PM5320)

    assert excinfo.value.code == 0x0B
    assert "no device answers as unit 9" in str(excinfo.value)


def test_lost_meter_times_out_then_recovers(sim):
    sim.add_unit(1, PM5320)
    port = sim.start_in_thread()
    sim.set_values(1, current_a=(1.0, 2.0, 3.0))
    connection = TcpConnection(LOCAL, port, 1)

    async def scenario() -> tuple[MeterError, MeterReading]:
        async with MeterSession(timeout_s=0.2) as session:
            await session.read_meter(connection, PM5320)
            sim.set_online(1, False)
            with pytest.raises(MeterTimeout) as excinfo:
                await session.read_meter(connection, PM5320)
            sim.set_online(1, True)
            return excinfo.value, await session.read_meter(connection, PM5320)

    error, reading = asyncio.run(scenario())

    assert "unit 1" in str(error)
    assert reading.currents_a == (1.0, 2.0, 3.0)
    assert sim.connections_opened == 2  # the timed-out link was dropped and reopened


def test_session_reconnects_after_the_device_restarts(sim):
    sim.add_unit(1, PM5320)
    port = sim.start_in_thread()
    connection = TcpConnection(LOCAL, port, 1)
    session = BlockingMeterSession(timeout_s=0.5)
    try:
        session.read_meter(connection, PM5320)
        sim.stop_thread()
        with pytest.raises(MeterError):
            session.read_meter(connection, PM5320)
        restarted = MeterSimulator(LOCAL, port)
        restarted.add_unit(1, PM5320)
        restarted.start_in_thread()
        try:
            restarted.set_values(1, current_a=(4.0, 5.0, 6.0))
            assert session.read_meter(connection, PM5320).currents_a == (4.0, 5.0, 6.0)
        finally:
            restarted.stop_thread()
    finally:
        session.close()


def test_devices_rejecting_reads_across_gaps_are_read_value_by_value(sim):
    sim.add_unit(1, NSX_LEGACY, contiguous=False)  # registers 12041-12048 are not served
    port = sim.start_in_thread()
    sim.set_values(1, current_a=(10.0, 20.0, 30.0), power_kw=(1.0, 2.0, 3.0), energy_kwh=77)
    connection = TcpConnection(LOCAL, port, 1)

    async def poll_twice() -> list[MeterReading]:
        async with MeterSession() as session:
            return [await session.read_meter(connection, NSX_LEGACY) for _ in range(2)]

    first, second = asyncio.run(poll_twice())

    for reading in (first, second):
        assert reading.currents_a == (10.0, 20.0, 30.0)
        assert reading.power_total_kw == pytest.approx(6.0)
        assert reading.energy_delivered_kwh == 77
    assert [(r.address, r.count) for r in sim.requests] == [
        (12015, 3),
        (12037, 14),  # rejected: spans unserved registers
        (12037, 4),
        (12049, 2),
        # the next poll goes straight to gapless requests
        (12015, 3),
        (12037, 4),
        (12049, 2),
    ]


def test_many_meters_are_read_concurrently(sim):
    for unit_id in range(1, 21):
        sim.add_unit(unit_id, PM5320)
    port = sim.start_in_thread()
    for unit_id in range(1, 21):
        sim.set_values(unit_id, current_a=(unit_id, unit_id + 0.5, unit_id + 0.25))
    requests = [(TcpConnection(LOCAL, port, unit_id), PM5320) for unit_id in range(1, 21)]
    requests.append((TcpConnection(LOCAL, port, 99), PM5320))

    with BlockingMeterSession() as session:
        started = time.monotonic()
        results = session.read_meters(requests)
        elapsed_s = time.monotonic() - started

    assert elapsed_s < 2.0
    for unit_id, reading in enumerate(results[:20], start=1):
        assert isinstance(reading, MeterReading)
        assert reading.current_l1_a == unit_id
    assert isinstance(results[20], MeterWrongUnit)
    assert sim.connections_opened == 1  # one link for the whole endpoint


def test_blocking_session_refuses_use_after_close(sim):
    sim.add_unit(1, PM5320)
    port = sim.start_in_thread()
    session = BlockingMeterSession()
    session.close()
    session.close()  # idempotent
    with pytest.raises(RuntimeError):
        session.read_meter(TcpConnection(LOCAL, port, 1), PM5320)


def test_coils_and_discrete_inputs(sim):
    sim.add_unit(5, None, coil_count=4, discrete_input_count=3)
    port = sim.start_in_thread()
    sim.set_bit(5, "coil", 2, True)
    sim.set_bit(5, "discrete_input", 0, True)
    connection = TcpConnection(LOCAL, port, 5)

    async def read_bits() -> list[bool]:
        async with MeterSession() as session:
            return [
                await session.read_bit(connection, 2, "coil"),
                await session.read_bit(connection, 1, "coil"),
                await session.read_bit(connection, 0, "discrete_input"),
                await session.read_bit(connection, 2, "discrete_input"),
            ]

    assert asyncio.run(read_bits()) == [True, False, True, False]
    sim.set_bit(5, "coil", 2, False)
    assert read_bit_sync(connection, 2, "coil") is False
    assert asyncio.run(read_bit(connection, 0, "discrete_input")) is True

    with pytest.raises(MeterModbusException) as excinfo:
        read_bit_sync(connection, 3, "discrete_input")
    assert excinfo.value.code == 2
    assert "discrete input 3" in str(excinfo.value)
    with pytest.raises(ValueError):
        read_bit_sync(connection, 0, "register")  # type: ignore[arg-type]


def test_one_shot_async_read(sim):
    sim.add_unit(1, PM5320)
    port = sim.start_in_thread()
    sim.set_values(1, current_a=(7.0, 8.0, 9.0))

    reading = asyncio.run(read_meter(TcpConnection(LOCAL, port, 1), PM5320))

    assert reading.currents_a == (7.0, 8.0, 9.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: TcpConnection(""),
        lambda: TcpConnection("meter", port=0),
        lambda: TcpConnection("meter", unit_id=0),
        lambda: TcpConnection("meter", unit_id=256),
        lambda: RtuConnection(""),
        lambda: RtuConnection("/dev/ttyUSB0", unit_id=248),
        lambda: RtuConnection("/dev/ttyUSB0", parity="X"),
        lambda: RtuConnection("/dev/ttyUSB0", bytesize=6),
        lambda: RtuConnection("/dev/ttyUSB0", stopbits=3),
    ],
)
def test_invalid_connections_are_refused(make):
    with pytest.raises(ValueError):
        make()


def test_connection_defaults_follow_the_spec():
    assert TcpConnection("meter") == TcpConnection("meter", port=502, unit_id=255)
    rtu = RtuConnection("/dev/ttyUSB0")
    assert (rtu.baudrate, rtu.bytesize, rtu.parity, rtu.stopbits) == (19200, 8, "N", 1)
    assert str(rtu) == "/dev/ttyUSB0 (19200 8N1) unit 1"
