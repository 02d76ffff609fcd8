"""Plan the Modbus requests that read a register map.

Meters and especially gateways (a serial line behind a TCP gateway, trip
units behind a ULP module) answer a handful of requests per second; with
polling every 500 ms a poll must cost as few round trips as possible.  Values
of the same register type that sit close together are therefore read in one
request, accepting a few unused registers in between.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from apps.meters.modbus.registers import RegisterMap, RegisterSpec, RegisterType

# Modbus limit for function codes 3 and 4 (the response must fit 253 bytes).
MAX_REGISTERS_PER_REQUEST = 125
# Unused registers accepted between two values before a new request is cheaper.
DEFAULT_MAX_GAP = 16


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: ``count`` registers of one type from ``address``, feeding ``fields``."""

    register_type: RegisterType
    address: int
    count: int
    fields: tuple[str, ...]

    @property
    def end_address(self) -> int:
        return self.address + self.count

    def registers_of(self, spec: RegisterSpec, registers: list[int]) -> list[int]:
        """The slice of this block's response that holds ``spec``'s value."""
        offset = spec.address - self.address
        return registers[offset : offset + spec.register_count]


def plan_reads(
    register_map: RegisterMap | Mapping[str, RegisterSpec],
    *,
    max_gap: int = DEFAULT_MAX_GAP,
    max_count: int = MAX_REGISTERS_PER_REQUEST,
) -> tuple[ReadBlock, ...]:
    """Group the map's values into as few requests as the limits allow.

    Guarantees: every value is covered entirely by exactly one block of its
    register type; no block is longer than ``max_count``; a block never spans
    more than ``max_gap`` consecutive unused registers.  Deterministic:
    holding registers first, then input registers, each by address.
    """
    if max_gap < 0:
        raise ValueError("max_gap must be >= 0")
    if max_count < 4:
        raise ValueError("max_count must hold the widest format (4 registers)")
    specs = register_map.specs() if isinstance(register_map, RegisterMap) else dict(register_map)

    blocks: list[ReadBlock] = []
    for register_type in RegisterType:
        ordered = sorted(
            ((name, spec) for name, spec in specs.items() if spec.register_type == register_type),
            key=lambda item: (item[1].address, item[1].end_address, item[0]),
        )
        start = end = 0
        names: list[str] = []
        for name, spec in ordered:
            fits = spec.address - end <= max_gap and max(end, spec.end_address) - start <= max_count
            if names and fits:
                end = max(end, spec.end_address)
                names.append(name)
                continue
            if names:
                blocks.append(ReadBlock(register_type, start, end - start, tuple(names)))
            start, end, names = spec.address, spec.end_address, [name]
        if names:
            blocks.append(ReadBlock(register_type, start, end - start, tuple(names)))
    return tuple(blocks)
