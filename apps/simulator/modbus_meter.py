"""A Modbus meter simulator, plus daily load and solar curves to drive it.

It serves real Modbus (TCP, or RTU on a serial device) from pymodbus's
server, so demos, commissioning dry runs and tests exercise exactly the code
that talks to real meters.  Each simulated unit exposes a register map
(PM5320 by default) whose values are set from Python — typically a building
load profile plus the current the simulated EVs draw — and optionally coils
and discrete inputs for external inputs.

Behaviour that matters for testing failure paths:

* registers outside a unit's map answer "illegal data address";
* a unit id that is not simulated answers "gateway target device failed to
  respond" (0x0B) over TCP, as a gateway would, and stays silent over RTU,
  as a bus would;
* ``set_online(unit_id, False)`` makes a unit stop answering (meter lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Literal

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from apps.meters.modbus.builtin import PM5320
from apps.meters.modbus.registers import POWER_FIELDS, RegisterMap, RegisterType

BitKind = Literal["coil", "discrete_input"]

DEFAULT_VOLTAGE_V = 230.0

# Function code -> the datastore block it touches (c/d: bits, h/i: registers).
_BLOCK_OF_FUNCTION = {
    1: "c",
    5: "c",
    15: "c",
    2: "d",
    3: "h",
    6: "h",
    16: "h",
    22: "h",
    23: "h",
    4: "i",
}
_BLOCK_OF_REGISTER_TYPE = {RegisterType.HOLDING: "h", RegisterType.INPUT: "i"}
_BLOCK_OF_BIT_KIND = {"coil": "c", "discrete_input": "d"}


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """A request as the simulator received it (to count round trips in tests)."""

    unit_id: int
    function_code: int
    address: int | None
    count: int | None


class _Unit:
    """Register image of one simulated unit; guarded by the simulator's lock."""

    def __init__(
        self,
        unit_id: int,
        register_map: RegisterMap | None,
        coil_count: int,
        discrete_input_count: int,
        contiguous: bool,
    ) -> None:
        self.unit_id = unit_id
        self.register_map = register_map
        self.bit_counts = {"c": coil_count, "d": discrete_input_count}
        self.online = True
        # Valid register ranges [start, end) per block, as served.
        self.ranges: dict[str, list[tuple[int, int]]] = {"h": [], "i": []}
        specs = register_map.specs() if register_map else {}
        for register_type, block in _BLOCK_OF_REGISTER_TYPE.items():
            spans = sorted(
                (spec.address, spec.end_address)
                for spec in specs.values()
                if spec.register_type == register_type
            )
            if spans and contiguous:
                spans = [(spans[0][0], max(end for _, end in spans))]
            self.ranges[block] = _merge_spans(spans)
        self.image: dict[str, dict[int, int]] = {"h": {}, "i": {}, "c": {}, "d": {}}
        self.pending: dict[str, dict[int, int]] = {"h": {}, "i": {}, "c": {}, "d": {}}

    def serves(self, block: str, address: int, count: int) -> bool:
        if block in ("c", "d"):
            return address >= 0 and address + count <= self.bit_counts[block]
        return any(start <= address and address + count <= end for start, end in self.ranges[block])

    def write(self, block: str, address: int, values: Sequence[int]) -> None:
        for offset, value in enumerate(values):
            self.image[block][address + offset] = value
            self.pending[block][address + offset] = value

    def read(self, block: str, address: int, count: int) -> list[int]:
        return [self.image[block].get(address + offset, 0) for offset in range(count)]

    def sim_device(self, action: object) -> SimDevice:
        def register_blocks(block: str) -> list[SimData]:
            spans = self.ranges[block]
            if not spans:
                return [SimData(0, datatype=DataType.INVALID)]
            return [
                SimData(start, count=end - start, values=0, datatype=DataType.REGISTERS)
                for start, end in spans
            ]

        def bit_block(block: str) -> list[SimData]:
            # pymodbus needs one bit block per kind; the action rejects bits
            # beyond the configured count (including all of them when 0).
            count = max(1, self.bit_counts[block])
            return [SimData(0, count=count, values=False, datatype=DataType.BITS)]

        return SimDevice(
            self.unit_id,
            simdata=(bit_block("c"), bit_block("d"), register_blocks("h"), register_blocks("i")),
            action=action,  # type: ignore[arg-type]
        )


def _merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class MeterSimulator:
    """Simulated Modbus meters on one TCP port (or one serial device).

    Configure units with ``add_unit`` before ``start``; set values at any time
    and from any thread.  Use ``async with`` or ``start``/``stop`` inside an
    event loop, or ``start_in_thread``/``stop_thread`` from synchronous code.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        serial_device: str | None = None,
        baudrate: int = 19200,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: int = 1,
    ) -> None:
        self.host = host
        self.port = port
        self.serial_device = serial_device
        self._serial_settings = {
            "baudrate": baudrate,
            "bytesize": bytesize,
            "parity": parity,
            "stopbits": stopbits,
        }
        self._units: dict[int, _Unit] = {}
        self._lock = threading.Lock()
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._drop_next_response = False
        self.requests: list[ReceivedRequest] = []
        self.connections_opened = 0
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    # ----- configuration -------------------------------------------------

    def add_unit(
        self,
        unit_id: int,
        register_map: RegisterMap | None = PM5320,
        *,
        coil_count: int = 0,
        discrete_input_count: int = 0,
        contiguous: bool = True,
    ) -> None:
        """Simulate a unit: a meter (``register_map``), an I/O module (bits only), or both.

        ``contiguous`` serves every register between a map's first and last
        value (as most meters do); ``False`` serves only the mapped registers,
        like devices that reject reads spanning reserved registers.
        """
        if self._server is not None:
            raise RuntimeError("add units before starting the simulator")
        if not 1 <= unit_id <= 255:
            raise ValueError(f"unit id {unit_id} is outside 1-255")
        if unit_id in self._units:
            raise ValueError(f"unit {unit_id} is already simulated")
        if coil_count < 0 or discrete_input_count < 0:
            raise ValueError("bit counts must be >= 0")
        self._units[unit_id] = _Unit(
            unit_id, register_map, coil_count, discrete_input_count, contiguous
        )

    @property
    def unit_ids(self) -> list[int]:
        return sorted(self._units)

    # ----- values ---------------------------------------------------------

    def set_values(
        self,
        unit_id: int,
        *,
        current_a: Sequence[float] | None = None,
        power_kw: Sequence[float] | None = None,
        power_total_kw: float | None = None,
        energy_kwh: float | None = None,
        voltage_v: float = DEFAULT_VOLTAGE_V,
    ) -> None:
        """Set what a meter measures (only the values its register map has are written).

        Per-phase powers default to current x ``voltage_v`` (cos phi = 1) when
        currents are given, and the total to the sum of the phase powers.
        Arguments left out keep their previous value.
        """
        values: dict[str, float | None] = {}
        if current_a is not None:
            l1, l2, l3 = current_a
            values.update(current_l1_a=l1, current_l2_a=l2, current_l3_a=l3)
            if power_kw is None:
                power_kw = tuple(current * voltage_v / 1000 for current in (l1, l2, l3))
        if power_kw is not None:
            values.update(zip(POWER_FIELDS, power_kw, strict=True))
            if power_total_kw is None:
                power_total_kw = math.fsum(power_kw)
        if power_total_kw is not None:
            values["power_total_kw"] = power_total_kw
        if energy_kwh is not None:
            values["energy_delivered_kwh"] = energy_kwh
        unit = self._unit(unit_id)
        if unit.register_map is None:
            raise ValueError(f"unit {unit_id} has no register map")
        specs = unit.register_map.specs()
        with self._lock:
            for name, value in values.items():
                if name in specs:
                    spec = specs[name]
                    unit.write(
                        _BLOCK_OF_REGISTER_TYPE[spec.register_type],
                        spec.address,
                        spec.encode(value),
                    )

    def set_value(self, unit_id: int, field: str, value: float | None) -> None:
        """Set one value of a unit's map; ``None`` writes the format's "not available" marker."""
        unit = self._unit(unit_id)
        spec = unit.register_map.specs().get(field) if unit.register_map else None
        if spec is None:
            raise KeyError(f"unit {unit_id} has no {field!r} in its register map")
        with self._lock:
            unit.write(
                _BLOCK_OF_REGISTER_TYPE[spec.register_type], spec.address, spec.encode(value)
            )

    def set_registers(
        self,
        unit_id: int,
        register_type: RegisterType | str,
        address: int,
        registers: Sequence[int],
    ) -> None:
        """Write raw registers (within the served ranges)."""
        block = _BLOCK_OF_REGISTER_TYPE[RegisterType(register_type)]
        unit = self._unit(unit_id)
        if not unit.serves(block, address, len(registers)):
            raise ValueError(
                f"unit {unit_id} does not serve {len(registers)} {register_type} registers "
                f"from {address}"
            )
        if any(not 0 <= value <= 0xFFFF for value in registers):
            raise ValueError("register values must be 0-65535")
        with self._lock:
            unit.write(block, address, list(registers))

    def get_registers(
        self, unit_id: int, register_type: RegisterType | str, address: int, count: int
    ) -> list[int]:
        block = _BLOCK_OF_REGISTER_TYPE[RegisterType(register_type)]
        with self._lock:
            return self._unit(unit_id).read(block, address, count)

    def set_bit(self, unit_id: int, kind: BitKind, address: int, value: bool) -> None:
        """Set a coil or discrete input (e.g. an external input contact closing)."""
        block = _BLOCK_OF_BIT_KIND[kind]
        unit = self._unit(unit_id)
        if not unit.serves(block, address, 1):
            raise ValueError(f"unit {unit_id} has no {kind} {address}")
        with self._lock:
            unit.write(block, address, [int(bool(value))])

    def get_bit(self, unit_id: int, kind: BitKind, address: int) -> bool:
        with self._lock:
            return bool(self._unit(unit_id).read(_BLOCK_OF_BIT_KIND[kind], address, 1)[0])

    def set_online(self, unit_id: int, online: bool) -> None:
        """An offline unit receives requests but never answers (a lost meter)."""
        self._unit(unit_id).online = online

    def _unit(self, unit_id: int) -> _Unit:
        try:
            return self._units[unit_id]
        except KeyError:
            raise KeyError(f"unit {unit_id} is not simulated") from None

    # ----- server hooks (run on the server's event loop) -------------------

    async def _action(
        self,
        unit: _Unit,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Bring pymodbus's register store up to date just before it answers."""
        block = _BLOCK_OF_FUNCTION.get(function_code)
        if block is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if not unit.serves(block, address, count):
            return ExcCodes.ILLEGAL_ADDRESS
        with self._lock:
            pending = unit.pending[block]
            for pending_address, value in pending.items():
                if block in ("c", "d"):
                    index = pending_address // 16 - start_address
                    mask = 1 << (pending_address % 16)
                    registers[index] = (
                        registers[index] | mask if value else registers[index] & ~mask
                    )
                else:
                    registers[pending_address - start_address] = value
            pending.clear()
            if set_values is not None:
                for offset, value in enumerate(set_values):
                    unit.image[block][address + offset] = int(value)
        return None

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending:
            self.requests.append(
                ReceivedRequest(
                    unit_id=pdu.dev_id,
                    function_code=pdu.function_code,
                    address=getattr(pdu, "address", None),
                    count=getattr(pdu, "count", None),
                )
            )
            return pdu
        unit = self._units.get(pdu.dev_id)
        if unit is None and self.serial_device is None:
            return ExceptionResponse(
                pdu.function_code & 0x7F,
                ExcCodes.GATEWAY_NO_RESPONSE,
                device_id=pdu.dev_id,
                transaction=pdu.transaction_id,
            )
        if unit is None or not unit.online:
            self._drop_next_response = True
        return pdu

    def _trace_connect(self, connected: bool) -> None:
        if connected:
            self.connections_opened += 1

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        # Called right after _trace_pdu for the same response, on the same thread.
        if sending and self._drop_next_response:
            self._drop_next_response = False
            return b""
        return data

    # ----- lifecycle ---------------------------------------------------------

    async def start(self) -> int:
        """Start serving; returns once listening, with the bound TCP port (0 for serial)."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        devices = [unit.sim_device(partial(self._action, unit)) for unit in self._units.values()]
        # Unit 0 catches every other unit id so that the hooks above decide the answer.
        devices.append(_Unit(0, None, 0, 0, True).sim_device(partial(self._refuse_unknown_unit)))
        common = {
            "trace_pdu": self._trace_pdu,
            "trace_packet": self._trace_packet,
            "trace_connect": self._trace_connect,
        }
        if self.serial_device is not None:
            server: ModbusTcpServer | ModbusSerialServer = ModbusSerialServer(
                devices,
                framer=FramerType.RTU,
                port=self.serial_device,
                **self._serial_settings,
                **common,
            )
        else:
            server = ModbusTcpServer(devices, address=(self.host, self.port), **common)
        await server.serve_forever(background=True)
        self._server = server
        if self.serial_device is None:
            sockets = getattr(server.transport, "sockets", None) or []
            if sockets:
                self.port = sockets[0].getsockname()[1]
            return self.port
        return 0

    async def _refuse_unknown_unit(self, *_args: object) -> ExcCodes:
        return ExcCodes.GATEWAY_NO_RESPONSE

    async def stop(self) -> None:
        """Stop serving and close client connections (safe to call twice)."""
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()
            await asyncio.sleep(0)

    async def __aenter__(self) -> MeterSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def start_in_thread(self) -> int:
        """Serve from a background thread (for synchronous callers); returns the TCP port."""
        if self._thread is not None:
            raise RuntimeError("simulator already running in a thread")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="evce-meter-simulator", daemon=True)
        thread.start()
        try:
            port = asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=10)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()
            raise
        self._thread, self._thread_loop = thread, loop
        return port

    def stop_thread(self) -> None:
        """Stop a simulator started with ``start_in_thread``."""
        thread, loop = self._thread, self._thread_loop
        if thread is None or loop is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        with contextlib.suppress(RuntimeError):
            loop.close()
        self._thread = self._thread_loop = None


# --------------------------------------------------------------------------
# Curves (pure functions of the time passed in)
# --------------------------------------------------------------------------

# Phase imbalance of a typical office building: single-phase loads (lighting,
# sockets, IT) never spread evenly.
_PHASE_FACTORS = (1.06, 0.95, 0.99)


def _hour_of_day(t: datetime) -> float:
    return t.hour + t.minute / 60 + t.second / 3600


def _smoothstep(edge0: float, edge1: float, x: float) -> float:
    """0 before edge0, 1 after edge1, a smooth S-curve in between."""
    if x <= edge0:
        return 0.0
    if x >= edge1:
        return 1.0
    y = (x - edge0) / (edge1 - edge0)
    return y * y * (3 - 2 * y)


def building_load_a(
    t: datetime,
    *,
    night_a: float = 12.0,
    peak_a: float = 55.0,
    weekend_factor: float = 0.3,
) -> tuple[float, float, float]:
    """Per-phase current of an office building at wall-clock time ``t``.

    Low at night (standby, ventilation), rising from 06:30 to 09:00, a dip at
    lunch, falling from 17:00 to 20:00; weekends reach only ``weekend_factor``
    of the weekday daytime load.  A slow ripple (a few %) keeps the curve
    alive between polls, and the phases are slightly unbalanced.  Pure and
    deterministic: the same ``t`` gives the same currents.
    """
    hour = _hour_of_day(t)
    occupancy = _smoothstep(6.5, 9.0, hour) * (1 - _smoothstep(17.0, 20.0, hour))
    lunch_dip = 1 - 0.15 * math.exp(-(((hour - 12.75) / 0.6) ** 2))
    day_factor = weekend_factor if t.weekday() >= 5 else 1.0
    total_a = night_a + (peak_a - night_a) * occupancy * lunch_dip * day_factor
    minutes = hour * 60
    result = []
    for phase, factor in enumerate(_PHASE_FACTORS):
        ripple = 1 + 0.03 * math.sin(2 * math.pi * minutes / 7.0 + phase * 2.1)
        result.append(round(total_a * factor * ripple, 2))
    return (result[0], result[1], result[2])


def solar_production_a(
    t: datetime,
    peak_a: float,
    *,
    solar_noon_h: float = 13.0,
) -> tuple[float, float, float]:
    """Per-phase current of a three-phase PV inverter at wall-clock time ``t``.

    Zero at night; a sine-shaped day whose length and height follow the
    season (about 8 h and 45 % of ``peak_a`` at the winter solstice, 16 h
    and 100 % at the summer solstice, northern hemisphere), centred on
    ``solar_noon_h`` (13:00 suits summer-time Europe).  Balanced phases.
    """
    if peak_a < 0:
        raise ValueError("peak_a must be >= 0")
    day_of_year = t.timetuple().tm_yday
    season = math.sin(2 * math.pi * (day_of_year - 80) / 365.25)  # +1 late June, -1 late December
    day_length_h = 12 + 4 * season
    height = 0.725 + 0.275 * season
    hour = _hour_of_day(t)
    sunrise = solar_noon_h - day_length_h / 2
    if not sunrise < hour < sunrise + day_length_h:
        return (0.0, 0.0, 0.0)
    current_a = round(peak_a * height * math.sin(math.pi * (hour - sunrise) / day_length_h), 2)
    return (current_a, current_a, current_a)
