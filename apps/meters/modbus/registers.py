"""Register maps: where a meter model exposes each value and how to decode it.

A register map is plain data (frozen dataclasses) so that the Django model can
store it as JSON, installers can import/export it, and the poller, the
simulator and the tests share one definition of every format.

Conventions (Modbus has no standard for values wider than one register):

* addresses are 0-based, i.e. what goes into the request frame — vendors
  usually print 1-based register numbers (``address = number - 1``);
* bytes inside a register are big-endian (Modbus itself mandates this);
* ``word_order`` only says which register carries the most significant word:
  ``big`` = the first (lowest address) one, ``little`` = word-swapped;
* ``value x scale`` gives the unit in the field name (A, kW or kWh).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any


class RegisterFormat(StrEnum):
    FLOAT32 = "float32"
    INT64 = "int64"
    INT32 = "int32"
    INT16 = "int16"
    UINT64 = "uint64"
    UINT32 = "uint32"
    UINT16 = "uint16"


class RegisterType(StrEnum):
    HOLDING = "holding"
    INPUT = "input"


class WordOrder(StrEnum):
    BIG = "big"
    LITTLE = "little"


# struct code (big-endian) and number of 16-bit registers of each format.
_STRUCT_CODE: dict[RegisterFormat, str] = {
    RegisterFormat.FLOAT32: "f",
    RegisterFormat.INT64: "q",
    RegisterFormat.INT32: "i",
    RegisterFormat.INT16: "h",
    RegisterFormat.UINT64: "Q",
    RegisterFormat.UINT32: "I",
    RegisterFormat.UINT16: "H",
}
REGISTER_COUNT: dict[RegisterFormat, int] = {
    fmt: struct.calcsize(f">{code}") // 2 for fmt, code in _STRUCT_CODE.items()
}

# Raw integers that mean "not available" rather than a measurement: the most
# negative signed value and the all-ones unsigned value.  Schneider Electric
# register lists and SunSpec both use these markers (floats use NaN); reading
# them as numbers would turn an unavailable value into a plausible one.
NOT_AVAILABLE_RAW: dict[RegisterFormat, int] = {
    RegisterFormat.INT16: -(2**15),
    RegisterFormat.INT32: -(2**31),
    RegisterFormat.INT64: -(2**63),
    RegisterFormat.UINT16: 2**16 - 1,
    RegisterFormat.UINT32: 2**32 - 1,
    RegisterFormat.UINT64: 2**64 - 1,
}

MAX_ADDRESS = 65535

CURRENT_FIELDS: tuple[str, ...] = ("current_l1_a", "current_l2_a", "current_l3_a")
POWER_FIELDS: tuple[str, ...] = ("power_l1_kw", "power_l2_kw", "power_l3_kw")
REGISTER_FIELDS: tuple[str, ...] = (
    *CURRENT_FIELDS,
    *POWER_FIELDS,
    "power_total_kw",
    "energy_delivered_kwh",
)

NAME_MAX_LENGTH = 64
DESCRIPTION_MAX_LENGTH = 200

_MISSING_CURRENT = f"registers: at least one current ({', '.join(CURRENT_FIELDS)}) is required"
_SPEC_KEYS = ("address", "format", "register_type", "scale", "word_order")
_MAP_KEYS = ("name", "description", "registers")


class RegisterMapError(ValueError):
    """A register map is invalid; ``errors`` lists every problem with its path."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors: list[str] = list(errors)
        super().__init__("; ".join(self.errors))


# --------------------------------------------------------------------------
# Raw encoding and decoding
# --------------------------------------------------------------------------


def decode_registers(
    registers: Sequence[int], register_format: RegisterFormat | str, word_order: WordOrder | str
) -> int | float:
    """Decode the raw value held by ``registers`` (before scaling).

    Raises ``ValueError`` if the number of registers does not match the format
    or a register is not a 16-bit unsigned integer.
    """
    fmt = RegisterFormat(register_format)
    expected = REGISTER_COUNT[fmt]
    if len(registers) != expected:
        raise ValueError(f"{fmt} needs {expected} registers, got {len(registers)}")
    for register in registers:
        if not isinstance(register, int) or not 0 <= register <= 0xFFFF:
            raise ValueError(f"register value {register!r} is not a 16-bit unsigned integer")
    words = list(registers)
    if WordOrder(word_order) is WordOrder.LITTLE:
        words.reverse()
    payload = b"".join(word.to_bytes(2, "big") for word in words)
    (value,) = struct.unpack(f">{_STRUCT_CODE[fmt]}", payload)
    return value


def encode_registers(
    value: int | float, register_format: RegisterFormat | str, word_order: WordOrder | str
) -> list[int]:
    """Encode a raw value (after un-scaling) into registers, the inverse of decode.

    Integers are rounded to the nearest whole number; a value that does not
    fit the format raises ``ValueError``.
    """
    fmt = RegisterFormat(register_format)
    code = _STRUCT_CODE[fmt]
    raw: int | float = float(value) if fmt is RegisterFormat.FLOAT32 else round(value)
    try:
        payload = struct.pack(f">{code}", raw)
    except (struct.error, OverflowError) as exc:
        raise ValueError(f"{value!r} does not fit in {fmt}") from exc
    words = [int.from_bytes(payload[i : i + 2], "big") for i in range(0, len(payload), 2)]
    if WordOrder(word_order) is WordOrder.LITTLE:
        words.reverse()
    return words


# --------------------------------------------------------------------------
# Register specs and maps
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """Where one value lives and how to turn its registers into A, kW or kWh."""

    address: int
    format: RegisterFormat
    register_type: RegisterType = RegisterType.HOLDING
    scale: float = 1.0
    word_order: WordOrder = WordOrder.BIG

    def __post_init__(self) -> None:
        errors = _spec_errors(
            {
                "address": self.address,
                "format": str(self.format),
                "register_type": str(self.register_type),
                "scale": self.scale,
                "word_order": str(self.word_order),
            },
            path="",
        )
        if errors:
            raise RegisterMapError(errors)
        # Accept plain strings for convenience; store the enums.
        object.__setattr__(self, "format", RegisterFormat(self.format))
        object.__setattr__(self, "register_type", RegisterType(self.register_type))
        object.__setattr__(self, "word_order", WordOrder(self.word_order))
        object.__setattr__(self, "scale", float(self.scale))

    @property
    def register_count(self) -> int:
        return REGISTER_COUNT[self.format]

    @property
    def end_address(self) -> int:
        """First address after this value (exclusive end)."""
        return self.address + self.register_count

    def decode(self, registers: Sequence[int]) -> float | None:
        """The scaled value, or ``None`` when the meter marks it unavailable (NaN, N/A).

        float32 values are rounded to the 7 significant digits the format
        carries, so 2.415 reads back as 2.415 and not 2.4149999618530273.
        """
        raw = decode_registers(registers, self.format, self.word_order)
        if isinstance(raw, float):
            if not math.isfinite(raw):
                return None
            raw = float(f"{raw:.7g}")
        elif raw == NOT_AVAILABLE_RAW[self.format]:
            return None
        return raw * self.scale

    def encode(self, value: float | None) -> list[int]:
        """Registers a meter would hold for ``value`` (``None`` = the N/A marker)."""
        if value is None:
            if self.format is RegisterFormat.FLOAT32:
                return encode_registers(math.nan, self.format, self.word_order)
            return encode_registers(NOT_AVAILABLE_RAW[self.format], self.format, self.word_order)
        return encode_registers(value / self.scale, self.format, self.word_order)

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "format": str(self.format),
            "register_type": str(self.register_type),
            "scale": self.scale,
            "word_order": str(self.word_order),
        }


@dataclass(frozen=True, slots=True)
class RegisterMap:
    """A meter model: a name, a description and a spec for each value it exposes.

    At least one phase current is required since currents are what load
    management runs on; every other value is optional.
    """

    name: str
    description: str = ""
    current_l1_a: RegisterSpec | None = None
    current_l2_a: RegisterSpec | None = None
    current_l3_a: RegisterSpec | None = None
    power_l1_kw: RegisterSpec | None = None
    power_l2_kw: RegisterSpec | None = None
    power_l3_kw: RegisterSpec | None = None
    power_total_kw: RegisterSpec | None = None
    energy_delivered_kwh: RegisterSpec | None = None

    def __post_init__(self) -> None:
        errors = _header_errors(self.name, self.description)
        errors += _map_level_errors(self.specs(), path="registers")
        if errors:
            raise RegisterMapError(errors)

    def specs(self) -> dict[str, RegisterSpec]:
        """The configured values, by field name, in canonical order."""
        result = {}
        for name in REGISTER_FIELDS:
            spec = getattr(self, name)
            if spec is not None:
                result[name] = spec
        return result

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "registers": {name: spec.to_dict() for name, spec in self.specs().items()},
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: object) -> RegisterMap:
        """Build a map from its JSON shape; raise one ``RegisterMapError`` listing every problem."""
        errors: list[str] = []
        if not isinstance(data, Mapping):
            raise RegisterMapError(["must be an object with name, description and registers"])
        for key in data:
            if key not in _MAP_KEYS:
                errors.append(f"{key}: unknown key (expected {', '.join(_MAP_KEYS)})")
        name = data.get("name")
        description = data.get("description", "")
        errors += _header_errors(name, description)

        specs: dict[str, RegisterSpec] = {}
        registers = data.get("registers")
        if registers is None:
            errors.append("registers: required")
        elif not isinstance(registers, Mapping):
            errors.append("registers: must be an object")
        else:
            for field_name, raw_spec in registers.items():
                path = f"registers.{field_name}"
                if field_name not in REGISTER_FIELDS:
                    errors.append(
                        f"{path}: unknown field {field_name!r} (expected one of "
                        f"{', '.join(REGISTER_FIELDS)})"
                    )
                    continue
                spec_errors = _spec_errors(raw_spec, path=path)
                if spec_errors:
                    errors += spec_errors
                    continue
                specs[field_name] = _spec_from_valid_dict(raw_spec)
            # A current that is present but invalid is reported once, by its own path.
            if not any(name in registers for name in CURRENT_FIELDS):
                errors.append(_MISSING_CURRENT)
            errors += _map_level_errors(specs, path="registers", check_required=False)
        if errors:
            raise RegisterMapError(_unique(errors))
        return cls(name=name, description=description, **specs)  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, data: str | bytes | bytearray | Mapping[str, Any]) -> RegisterMap:
        """Build a map from JSON text, or from an already parsed JSON object."""
        if isinstance(data, str | bytes | bytearray):
            try:
                data = json.loads(data)
            except (ValueError, UnicodeDecodeError) as exc:
                raise RegisterMapError([f"not valid JSON: {exc}"]) from exc
        return cls.from_dict(data)


def register_map_errors(data: object) -> list[str]:
    """Every problem of a register map in its JSON shape (text or object), or ``[]``."""
    try:
        if isinstance(data, str | bytes | bytearray | Mapping):
            RegisterMap.from_json(data)
        else:
            RegisterMap.from_dict(data)
    except RegisterMapError as exc:
        return exc.errors
    return []


# --------------------------------------------------------------------------
# Validation helpers (collect, never stop at the first problem)
# --------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _prefix(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _choices(enum: type[StrEnum]) -> str:
    return ", ".join(member.value for member in enum)


def _header_errors(name: object, description: object) -> list[str]:
    errors = []
    if not isinstance(name, str) or not name.strip():
        errors.append("name: required (a non-empty string)")
    elif len(name) > NAME_MAX_LENGTH:
        errors.append(f"name: at most {NAME_MAX_LENGTH} characters")
    if not isinstance(description, str):
        errors.append("description: must be a string")
    elif len(description) > DESCRIPTION_MAX_LENGTH:
        errors.append(f"description: at most {DESCRIPTION_MAX_LENGTH} characters")
    return errors


def _spec_errors(raw: object, *, path: str) -> list[str]:
    """Problems of one register spec in its JSON shape."""
    if not isinstance(raw, Mapping):
        return [f"{path or 'register'}: must be an object with address and format"]
    errors = []
    for key in raw:
        if key not in _SPEC_KEYS:
            errors.append(
                f"{_prefix(path, str(key))}: unknown key (expected {', '.join(_SPEC_KEYS)})"
            )

    register_format: RegisterFormat | None = None
    if "format" not in raw:
        errors.append(f"{_prefix(path, 'format')}: required ({_choices(RegisterFormat)})")
    else:
        fmt = raw["format"]
        if isinstance(fmt, str) and fmt in RegisterFormat._value2member_map_:
            register_format = RegisterFormat(fmt)
        else:
            errors.append(
                f"{_prefix(path, 'format')}: unknown format {fmt!r} "
                f"(expected one of {_choices(RegisterFormat)})"
            )

    if "address" not in raw:
        errors.append(f"{_prefix(path, 'address')}: required (0-{MAX_ADDRESS})")
    else:
        address = raw["address"]
        if not _is_int(address):
            errors.append(f"{_prefix(path, 'address')}: must be an integer, got {address!r}")
        elif not 0 <= address <= MAX_ADDRESS:
            errors.append(f"{_prefix(path, 'address')}: {address} is outside 0-{MAX_ADDRESS}")
        elif register_format is not None:
            last = address + REGISTER_COUNT[register_format] - 1
            if last > MAX_ADDRESS:
                errors.append(
                    f"{_prefix(path, 'address')}: a {register_format} at {address} needs "
                    f"registers up to {last}, beyond {MAX_ADDRESS}"
                )

    register_type = raw.get("register_type", RegisterType.HOLDING.value)
    if not (isinstance(register_type, str) and register_type in RegisterType._value2member_map_):
        errors.append(
            f"{_prefix(path, 'register_type')}: unknown register type {register_type!r} "
            f"(expected one of {_choices(RegisterType)})"
        )

    scale = raw.get("scale", 1.0)
    if not _is_number(scale):
        errors.append(f"{_prefix(path, 'scale')}: must be a number, got {scale!r}")
    elif not math.isfinite(scale) or scale == 0:
        errors.append(f"{_prefix(path, 'scale')}: must be finite and non-zero, got {scale!r}")

    word_order = raw.get("word_order", WordOrder.BIG.value)
    if not (isinstance(word_order, str) and word_order in WordOrder._value2member_map_):
        errors.append(
            f"{_prefix(path, 'word_order')}: unknown word order {word_order!r} "
            f"(expected one of {_choices(WordOrder)})"
        )
    return errors


def _spec_from_valid_dict(raw: Mapping[str, Any]) -> RegisterSpec:
    return RegisterSpec(
        address=raw["address"],
        format=RegisterFormat(raw["format"]),
        register_type=RegisterType(raw.get("register_type", RegisterType.HOLDING.value)),
        scale=float(raw.get("scale", 1.0)),
        word_order=WordOrder(raw.get("word_order", WordOrder.BIG.value)),
    )


def _map_level_errors(
    specs: Mapping[str, RegisterSpec], *, path: str, check_required: bool = True
) -> list[str]:
    """Problems that involve several values: no current, or values sharing registers.

    Two values may use the very same register (e.g. the only phase power of a
    single-phase meter mapped as the total too) but never partly overlap:
    that is always a typo in an address and would decode garbage.
    """
    errors = []
    if check_required and not any(name in specs for name in CURRENT_FIELDS):
        errors.append(_MISSING_CURRENT)
    items = list(specs.items())
    for index, (name, spec) in enumerate(items):
        for other_name, other in items[:index]:
            if (
                spec.register_type == other.register_type
                and spec.address < other.end_address
                and other.address < spec.end_address
                and (spec.address, spec.format) != (other.address, other.format)
            ):
                errors.append(
                    f"{path}.{name}.address: registers {spec.address}-{spec.end_address - 1} "
                    f"overlap {other_name} ({other.address}-{other.end_address - 1})"
                )
    return errors


def _unique(errors: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(errors))


# Keep the dataclass field list and the public field tuple in step.
assert tuple(f.name for f in fields(RegisterMap))[2:] == REGISTER_FIELDS
