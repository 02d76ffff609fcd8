"""Read meters and digital inputs over Modbus TCP or RTU.

Every failure becomes a ``MeterError`` subclass with a message an installer
can act on; nothing here ever turns a failed read into a zero.

Polling runs every 500 ms for up to 20 meters, so connections are kept open
between polls by a ``MeterSession``: one pymodbus client per TCP endpoint or
serial line, shared by every unit id behind it (a gateway, an RS-485 bus) and
used by one request at a time.  A link that timed out or misbehaved is closed
and reopened on the next read, so a late answer can never be taken for the
answer to a newer request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal, TypeVar

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.pdu import ExceptionResponse, ModbusPDU

from apps.meters.modbus.planning import DEFAULT_MAX_GAP, ReadBlock, plan_reads
from apps.meters.modbus.registers import REGISTER_FIELDS, RegisterMap, RegisterType

DEFAULT_TIMEOUT_S = 1.0
BitKind = Literal["coil", "discrete_input"]
_T = TypeVar("_T")

# Modbus exception codes (Modbus Application Protocol v1.1b3, section 7).
EXCEPTION_NAMES: dict[int, str] = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge",
    0x06: "server device busy",
    0x07: "negative acknowledge",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
}
ILLEGAL_DATA_ADDRESS = 0x02
_GATEWAY_CODES = frozenset({0x0A, 0x0B})


# --------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TcpConnection:
    """A unit reached over Modbus TCP (directly, or behind a TCP gateway)."""

    host: str
    port: int = 502
    unit_id: int = 255

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host.strip():
            raise ValueError("host is required")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is outside 1-65535")
        if not 1 <= self.unit_id <= 255:
            raise ValueError(f"unit id {self.unit_id} is outside 1-255")

    @property
    def link_key(self) -> tuple[Any, ...]:
        return ("tcp", self.host, self.port)

    def __str__(self) -> str:
        return f"{self.host}:{self.port} unit {self.unit_id}"


@dataclass(frozen=True, slots=True)
class RtuConnection:
    """A unit on an RS-485 line (Modbus RTU); all units of a line share its settings."""

    device: str
    unit_id: int = 1
    baudrate: int = 19200
    bytesize: int = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.device, str) or not self.device.strip():
            raise ValueError("serial device is required")
        if not 1 <= self.unit_id <= 247:
            raise ValueError(f"unit id {self.unit_id} is outside 1-247 (Modbus RTU)")
        if self.baudrate <= 0:
            raise ValueError(f"baud rate {self.baudrate} must be positive")
        if self.bytesize not in (7, 8):
            raise ValueError(f"data bits {self.bytesize} must be 7 or 8")
        if self.parity not in ("N", "E", "O"):
            raise ValueError(f"parity {self.parity!r} must be N, E or O")
        if self.stopbits not in (1, 2):
            raise ValueError(f"stop bits {self.stopbits} must be 1 or 2")

    @property
    def link_key(self) -> tuple[Any, ...]:
        return ("rtu", self.device)

    @property
    def line_settings(self) -> str:
        return f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"

    def __str__(self) -> str:
        return f"{self.device} ({self.line_settings}) unit {self.unit_id}"


Connection = TcpConnection | RtuConnection


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class MeterError(Exception):
    """A meter could not be read; ``str(error)`` says why in plain words."""

    def __init__(self, message: str, *, connection: Connection | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.connection = connection


class MeterTimeout(MeterError):
    """No answer in time: device off, unreachable, or (RTU) wrong unit id or line settings."""


class MeterConnectionError(MeterError):
    """The TCP connection or the serial device could not be opened."""


class MeterConnectionRefused(MeterConnectionError):
    """The host answered but nothing accepts connections on that port."""


class MeterModbusException(MeterError):
    """The device answered with a Modbus exception (``code``, ``name``)."""

    def __init__(self, message: str, *, code: int, connection: Connection | None = None) -> None:
        super().__init__(message, connection=connection)
        self.code = code
        self.name = EXCEPTION_NAMES.get(code, f"exception {code}")


class MeterWrongUnit(MeterError):
    """The unit id does not answer: a gateway reported the path or device unavailable."""

    def __init__(
        self, message: str, *, code: int | None = None, connection: Connection | None = None
    ) -> None:
        super().__init__(message, connection=connection)
        self.code = code


class MeterDecodeError(MeterError):
    """The answer could not be turned into values (wrong size, garbled frame)."""


# --------------------------------------------------------------------------
# Readings
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MeterReading:
    """The values read in one poll; ``None`` = not mapped or unavailable (never 0)."""

    current_l1_a: float | None = None
    current_l2_a: float | None = None
    current_l3_a: float | None = None
    power_l1_kw: float | None = None
    power_l2_kw: float | None = None
    power_l3_kw: float | None = None
    power_total_kw: float | None = None
    energy_delivered_kwh: float | None = None
    read_at: datetime | None = None

    @property
    def currents_a(self) -> tuple[float | None, float | None, float | None]:
        return (self.current_l1_a, self.current_l2_a, self.current_l3_a)

    def values(self) -> dict[str, float | None]:
        """The eight values by field name (without the timestamp)."""
        return {name: getattr(self, name) for name in REGISTER_FIELDS}


assert tuple(f.name for f in fields(MeterReading))[:-1] == REGISTER_FIELDS


# --------------------------------------------------------------------------
# One transport shared by the units behind it
# --------------------------------------------------------------------------

# Generous internal timeout: the per-request timeout is enforced around each
# call instead, so meters sharing a gateway can each have their own.
_PYMODBUS_TIMEOUT_S = 60.0


class _Link:
    """One pymodbus client for a TCP endpoint or a serial line."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.lock = asyncio.Lock()
        self.client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None

    def matches(self, connection: Connection) -> bool:
        if isinstance(connection, RtuConnection) and isinstance(self.connection, RtuConnection):
            return connection.line_settings == self.connection.line_settings
        return True

    def _new_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        # retries=0 and reconnect_delay=0: a poll fails fast and the session,
        # not a background task, decides when to reconnect.
        conn = self.connection
        if isinstance(conn, TcpConnection):
            return AsyncModbusTcpClient(
                conn.host,
                port=conn.port,
                timeout=_PYMODBUS_TIMEOUT_S,
                retries=0,
                reconnect_delay=0,
                name=f"evce-{conn.host}:{conn.port}",
            )
        return AsyncModbusSerialClient(
            conn.device,
            baudrate=conn.baudrate,
            bytesize=conn.bytesize,
            parity=conn.parity,
            stopbits=conn.stopbits,
            timeout=_PYMODBUS_TIMEOUT_S,
            retries=0,
            reconnect_delay=0,
            name=f"evce-{conn.device}",
        )

    async def ensure_connected(self, connection: Connection, timeout_s: float) -> None:
        if self.client is not None and self.client.connected:
            return
        self.close()
        client = self._new_client()
        # pymodbus reports a failed connect as a bare False; keep the OS error
        # to tell "refused" from "unreachable" from "no such serial device".
        failures: list[OSError] = []
        create = client.ctx.call_create

        async def create_remembering_failure() -> Any:
            try:
                return await create()
            except OSError as exc:
                failures.append(exc)
                raise

        client.ctx.call_create = create_remembering_failure
        try:
            connected = await asyncio.wait_for(client.connect(), timeout_s)
        except TimeoutError:
            connected = False
        finally:
            client.ctx.call_create = create
        if connected and client.connected:
            self.client = client
            return
        client.close()
        raise _connect_error(connection, failures[0] if failures else None, timeout_s)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    async def execute(
        self,
        connection: Connection,
        timeout_s: float,
        what: str,
        call: Callable[[AsyncModbusTcpClient | AsyncModbusSerialClient], Awaitable[ModbusPDU]],
        *,
        address_hint: str,
    ) -> ModbusPDU:
        """Run one request; any failure closes the link and becomes a ``MeterError``."""
        await self.ensure_connected(connection, timeout_s)
        assert self.client is not None
        try:
            response = await asyncio.wait_for(call(self.client), timeout_s)
        except TimeoutError as exc:
            self.close()
            raise MeterTimeout(
                _timeout_message(connection, timeout_s, what), connection=connection
            ) from exc
        except ConnectionException as exc:
            self.close()
            raise MeterConnectionError(
                f"connection to {connection} was lost while reading {what}", connection=connection
            ) from exc
        except ModbusIOException as exc:
            self.close()
            raise _io_error(connection, exc, timeout_s, what) from exc
        if isinstance(response, ExceptionResponse) or response.isError():
            code = int(getattr(response, "exception_code", 0))
            raise _exception_error(connection, code, what, address_hint)
        return response


def _connect_error(connection: Connection, failure: OSError | None, timeout_s: float) -> MeterError:
    if isinstance(connection, RtuConnection):
        if failure is None or isinstance(failure, TimeoutError):
            return MeterTimeout(
                f"serial device {connection.device} did not open within {timeout_s:g} s",
                connection=connection,
            )
        return MeterConnectionError(
            f"cannot open serial device {connection.device}: {failure.strerror or failure}",
            connection=connection,
        )
    where = f"{connection.host}:{connection.port}"
    if failure is None or isinstance(failure, TimeoutError):
        return MeterTimeout(
            f"no answer from {where} within {timeout_s:g} s (device off, unreachable or "
            "blocked by a firewall?)",
            connection=connection,
        )
    if isinstance(failure, ConnectionRefusedError):
        return MeterConnectionRefused(
            f"connection refused by {where}: nothing listens on port {connection.port} "
            "(wrong port, or Modbus TCP disabled on the device?)",
            connection=connection,
        )
    if isinstance(failure, socket.gaierror):
        return MeterConnectionError(f"unknown host {connection.host!r}", connection=connection)
    return MeterConnectionError(
        f"cannot connect to {where}: {failure.strerror or failure}", connection=connection
    )


def _timeout_message(connection: Connection, timeout_s: float, what: str) -> str:
    hint = (
        "wrong unit id, line settings or wiring?"
        if isinstance(connection, RtuConnection)
        else "wrong unit id, or device busy?"
    )
    return f"no answer from {connection} within {timeout_s:g} s when reading {what} ({hint})"


def _io_error(
    connection: Connection, exc: ModbusIOException, timeout_s: float, what: str
) -> MeterError:
    text = str(exc)
    if "No response" in text:
        return MeterTimeout(_timeout_message(connection, timeout_s, what), connection=connection)
    if "device id" in text:
        return MeterWrongUnit(
            f"{connection}: the answer to {what} came from another unit id", connection=connection
        )
    return MeterDecodeError(
        f"{connection}: unreadable answer to {what} ({exc.string})", connection=connection
    )


def _exception_error(connection: Connection, code: int, what: str, address_hint: str) -> MeterError:
    name = EXCEPTION_NAMES.get(code, "unknown exception")
    if code in _GATEWAY_CODES:
        return MeterWrongUnit(
            f"{connection}: the gateway reports {name} (exception 0x{code:02X}) for {what}: "
            f"no device answers as unit {connection.unit_id}, or it is off",
            code=code,
            connection=connection,
        )
    hint = f" ({address_hint})" if code == ILLEGAL_DATA_ADDRESS else ""
    return MeterModbusException(
        f"{connection} answered {name} (exception 0x{code:02X}) for {what}{hint}",
        code=code,
        connection=connection,
    )


def _describe_block(block: ReadBlock) -> str:
    last = block.address + block.count - 1
    return f"{block.register_type} registers {block.address}-{last} ({', '.join(block.fields)})"


@functools.lru_cache(maxsize=256)
def _cached_plan(register_map: RegisterMap, max_gap: int) -> tuple[ReadBlock, ...]:
    return plan_reads(register_map, max_gap=max_gap)


def _has_gaps(block: ReadBlock, register_map: RegisterMap) -> bool:
    used: set[int] = set()
    for name in block.fields:
        spec = getattr(register_map, name)
        used.update(range(spec.address, spec.end_address))
    return len(used) < block.count


# --------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------


class MeterSession:
    """Keeps Modbus links open across polls; use from one event loop.

    Reads of units behind the same link are serialised (a serial line or a
    gateway handles one request at a time); different links run concurrently.
    """

    def __init__(
        self, *, timeout_s: float = DEFAULT_TIMEOUT_S, max_gap: int = DEFAULT_MAX_GAP
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.timeout_s = timeout_s
        self.max_gap = max_gap
        self._links: dict[tuple[Any, ...], _Link] = {}
        # Maps whose merged reads a device rejected: read them without gaps.
        self._gapless: set[tuple[Connection, RegisterMap]] = set()

    def _link(self, connection: Connection) -> _Link:
        link = self._links.get(connection.link_key)
        if link is None:
            link = self._links[connection.link_key] = _Link(connection)
        elif not link.matches(connection):
            assert isinstance(link.connection, RtuConnection)
            raise MeterConnectionError(
                f"serial line {link.connection.device} is already used at "
                f"{link.connection.line_settings}; every unit on a line must use the same settings",
                connection=connection,
            )
        return link

    async def read_meter(
        self,
        connection: Connection,
        register_map: RegisterMap,
        *,
        read_at: datetime | None = None,
        timeout_s: float | None = None,
    ) -> MeterReading:
        """Read every value of ``register_map`` from one unit, in as few requests as possible.

        Raises a ``MeterError`` if any request fails; values the meter marks
        unavailable (NaN, N/A markers) come back as ``None``.
        """
        timeout = timeout_s or self.timeout_s
        link = self._link(connection)
        gapless = (connection, register_map) in self._gapless
        plan = _cached_plan(register_map, 0 if gapless else self.max_gap)
        values: dict[str, float | None] = {}
        async with link.lock:
            for block in plan:
                try:
                    registers = await self._read_block(link, connection, block, timeout)
                except MeterModbusException as exc:
                    # Some devices reject reads that touch unmapped registers:
                    # retry this block without gaps and remember the choice.
                    if exc.code != ILLEGAL_DATA_ADDRESS or not _has_gaps(block, register_map):
                        raise
                    self._gapless.add((connection, register_map))
                    sub_specs = {name: getattr(register_map, name) for name in block.fields}
                    for sub_block in plan_reads(sub_specs, max_gap=0):
                        sub_registers = await self._read_block(link, connection, sub_block, timeout)
                        values.update(_decode_block(sub_block, sub_registers, register_map))
                    continue
                values.update(_decode_block(block, registers, register_map))
        return MeterReading(**values, read_at=read_at)

    async def read_meters(
        self,
        requests: Iterable[tuple[Connection, RegisterMap]],
        *,
        read_at: datetime | None = None,
        timeout_s: float | None = None,
    ) -> list[MeterReading | MeterError]:
        """Read several meters concurrently; each result is a reading or the error it raised."""

        async def one(
            connection: Connection, register_map: RegisterMap
        ) -> MeterReading | MeterError:
            try:
                return await self.read_meter(
                    connection, register_map, read_at=read_at, timeout_s=timeout_s
                )
            except MeterError as exc:
                return exc

        return list(await asyncio.gather(*(one(conn, rmap) for conn, rmap in requests)))

    async def read_bit(
        self, connection: Connection, address: int, kind: BitKind, *, timeout_s: float | None = None
    ) -> bool:
        """Read one coil or discrete input (an external input), 0-based address."""
        if kind not in ("coil", "discrete_input"):
            raise ValueError(f"kind must be 'coil' or 'discrete_input', not {kind!r}")
        if not 0 <= address <= 65535:
            raise ValueError(f"address {address} is outside 0-65535")
        timeout = timeout_s or self.timeout_s
        link = self._link(connection)
        label = "coil" if kind == "coil" else "discrete input"
        what = f"{label} {address}"

        def call(client: AsyncModbusTcpClient | AsyncModbusSerialClient) -> Awaitable[ModbusPDU]:
            read = client.read_coils if kind == "coil" else client.read_discrete_inputs
            return read(address, count=1, device_id=connection.unit_id)

        async with link.lock:
            response = await link.execute(
                connection, timeout, what, call, address_hint="check the input's address and kind"
            )
        bits = getattr(response, "bits", None)
        if not bits:
            raise MeterDecodeError(f"{connection}: empty answer for {what}", connection=connection)
        return bool(bits[0])

    async def _read_block(
        self, link: _Link, connection: Connection, block: ReadBlock, timeout_s: float
    ) -> list[int]:
        what = _describe_block(block)

        def call(client: AsyncModbusTcpClient | AsyncModbusSerialClient) -> Awaitable[ModbusPDU]:
            read = (
                client.read_holding_registers
                if block.register_type == RegisterType.HOLDING
                else client.read_input_registers
            )
            return read(block.address, count=block.count, device_id=connection.unit_id)

        response = await link.execute(
            connection,
            timeout_s,
            what,
            call,
            address_hint="check the meter model's addresses and register types",
        )
        registers = list(getattr(response, "registers", None) or [])
        if len(registers) != block.count:
            link.close()
            raise MeterDecodeError(
                f"{connection}: asked {block.count} registers for {what}, got {len(registers)}",
                connection=connection,
            )
        return registers

    def close(self) -> None:
        """Close every link (safe to call twice)."""
        for link in self._links.values():
            link.close()
        self._links.clear()

    async def __aenter__(self) -> MeterSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


def _decode_block(
    block: ReadBlock, registers: list[int], register_map: RegisterMap
) -> dict[str, float | None]:
    values = {}
    for name in block.fields:
        spec = getattr(register_map, name)
        values[name] = spec.decode(block.registers_of(spec, registers))
    return values


# --------------------------------------------------------------------------
# One-shot helpers
# --------------------------------------------------------------------------


async def read_meter(
    connection: Connection,
    register_map: RegisterMap,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    read_at: datetime | None = None,
) -> MeterReading:
    """Connect, read one meter and disconnect (commissioning checks, one-off reads)."""
    async with MeterSession(timeout_s=timeout_s) as session:
        return await session.read_meter(connection, register_map, read_at=read_at)


async def read_bit(
    connection: Connection, address: int, kind: BitKind, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> bool:
    """Connect, read one coil or discrete input and disconnect."""
    async with MeterSession(timeout_s=timeout_s) as session:
        return await session.read_bit(connection, address, kind)


def read_meter_sync(
    connection: Connection,
    register_map: RegisterMap,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    read_at: datetime | None = None,
) -> MeterReading:
    """Blocking ``read_meter`` for code without an event loop (not from inside one)."""
    return asyncio.run(read_meter(connection, register_map, timeout_s=timeout_s, read_at=read_at))


def read_bit_sync(
    connection: Connection, address: int, kind: BitKind, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> bool:
    """Blocking ``read_bit`` for code without an event loop (not from inside one)."""
    return asyncio.run(read_bit(connection, address, kind, timeout_s=timeout_s))


class BlockingMeterSession:
    """A ``MeterSession`` for synchronous callers (Celery tasks, commands).

    It runs its own event loop in a daemon thread, so links stay open between
    calls and several meters are read concurrently.  Create it in the process
    that uses it (after a fork), and ``close()`` it when done.
    """

    def __init__(
        self, *, timeout_s: float = DEFAULT_TIMEOUT_S, max_gap: int = DEFAULT_MAX_GAP
    ) -> None:
        self._session = MeterSession(timeout_s=timeout_s, max_gap=max_gap)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="evce-modbus", daemon=True
        )
        self._thread.start()
        self._closed = False

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        if self._closed:
            coroutine.close()
            raise RuntimeError("session is closed")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def read_meter(
        self,
        connection: Connection,
        register_map: RegisterMap,
        *,
        read_at: datetime | None = None,
        timeout_s: float | None = None,
    ) -> MeterReading:
        return self._run(
            self._session.read_meter(connection, register_map, read_at=read_at, timeout_s=timeout_s)
        )

    def read_meters(
        self,
        requests: Sequence[tuple[Connection, RegisterMap]],
        *,
        read_at: datetime | None = None,
        timeout_s: float | None = None,
    ) -> list[MeterReading | MeterError]:
        return self._run(self._session.read_meters(requests, read_at=read_at, timeout_s=timeout_s))

    def read_bit(
        self, connection: Connection, address: int, kind: BitKind, *, timeout_s: float | None = None
    ) -> bool:
        return self._run(self._session.read_bit(connection, address, kind, timeout_s=timeout_s))

    def close(self) -> None:
        if self._closed:
            return

        async def shutdown() -> None:
            self._session.close()
            await asyncio.sleep(0)  # let transports finish closing

        self._run(shutdown())
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        with contextlib.suppress(RuntimeError):
            self._loop.close()

    def __enter__(self) -> BlockingMeterSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
