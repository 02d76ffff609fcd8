from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.meters.modbus.builtin import PM5320
from apps.meters.modbus.registers import (
    REGISTER_COUNT,
    RegisterFormat,
    RegisterMap,
    RegisterMapError,
    RegisterSpec,
    RegisterType,
    WordOrder,
    decode_registers,
    encode_registers,
    register_map_errors,
)

INTEGER_RANGES = {
    RegisterFormat.INT16: (-(2**15), 2**15 - 1),
    RegisterFormat.INT32: (-(2**31), 2**31 - 1),
    RegisterFormat.INT64: (-(2**63), 2**63 - 1),
    RegisterFormat.UINT16: (0, 2**16 - 1),
    RegisterFormat.UINT32: (0, 2**32 - 1),
    RegisterFormat.UINT64: (0, 2**64 - 1),
}


# ----- raw encoding -----------------------------------------------------------


@pytest.mark.parametrize(
    ("register_format", "value", "big_endian_words"),
    [
        (RegisterFormat.FLOAT32, 1.0, [0x3F80, 0x0000]),
        (RegisterFormat.FLOAT32, -2.5, [0xC020, 0x0000]),
        (RegisterFormat.INT16, -2, [0xFFFE]),
        (RegisterFormat.UINT16, 65534, [0xFFFE]),
        (RegisterFormat.INT32, -2, [0xFFFF, 0xFFFE]),
        (RegisterFormat.UINT32, 0x12345678, [0x1234, 0x5678]),
        (RegisterFormat.INT64, -2, [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE]),
        (RegisterFormat.UINT64, 0x0102030405060708, [0x0102, 0x0304, 0x0506, 0x0708]),
    ],
)
def test_known_values_big_word_order_first_register_most_significant(
    register_format, value, big_endian_words
):
    assert encode_registers(value, register_format, "big") == big_endian_words
    assert decode_registers(big_endian_words, register_format, "big") == value


@pytest.mark.parametrize(
    ("register_format", "value", "little_words"),
    [
        (RegisterFormat.FLOAT32, 1.0, [0x0000, 0x3F80]),
        (RegisterFormat.UINT32, 0x12345678, [0x5678, 0x1234]),
        (RegisterFormat.UINT64, 0x0102030405060708, [0x0708, 0x0506, 0x0304, 0x0102]),
        (RegisterFormat.INT16, -2, [0xFFFE]),
    ],
)
def test_little_word_order_swaps_words_not_bytes(register_format, value, little_words):
    assert encode_registers(value, register_format, "little") == little_words
    assert decode_registers(little_words, register_format, "little") == value


@given(
    register_format=st.sampled_from(list(INTEGER_RANGES)),
    word_order=st.sampled_from(list(WordOrder)),
    data=st.data(),
)
def test_integer_round_trip_over_the_whole_range(register_format, word_order, data):
    low, high = INTEGER_RANGES[register_format]
    value = data.draw(st.integers(low, high))
    registers = encode_registers(value, register_format, word_order)
    assert len(registers) == REGISTER_COUNT[register_format]
    assert all(0 <= register <= 0xFFFF for register in registers)
    assert decode_registers(registers, register_format, word_order) == value


@given(value=st.floats(width=32, allow_nan=False), word_order=st.sampled_from(list(WordOrder)))
def test_float32_round_trip(value, word_order):
    registers = encode_registers(value, RegisterFormat.FLOAT32, word_order)
    assert decode_registers(registers, RegisterFormat.FLOAT32, word_order) == value


def test_value_out_of_range_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        encode_registers(70000, RegisterFormat.UINT16, "big")
    with pytest.raises(ValueError, match="does not fit"):
        encode_registers(-1, RegisterFormat.UINT32, "big")


def test_wrong_register_count_or_value_is_refused():
    with pytest.raises(ValueError, match="needs 2 registers"):
        decode_registers([1], RegisterFormat.FLOAT32, "big")
    with pytest.raises(ValueError, match="16-bit"):
        decode_registers([70000], RegisterFormat.UINT16, "big")


# ----- specs: scale and unavailable values ---------------------------------------


def test_scale_turns_raw_counts_into_units():
    energy = RegisterSpec(address=3203, format="int64", scale=0.001)
    assert energy.decode(encode_registers(123_456_789, "int64", "big")) == pytest.approx(
        123_456.789
    )
    power = RegisterSpec(address=12037, format="int16", scale=0.1)
    assert power.decode([0xFFF6]) == pytest.approx(-1.0)  # -10 counts of 0.1 kW
    assert power.encode(-1.0) == [0xFFF6]


def test_float32_is_rounded_to_its_precision():
    spec = RegisterSpec(address=0, format="float32")
    assert spec.decode(encode_registers(2.415, "float32", "big")) == 2.415


@pytest.mark.parametrize("word_order", list(WordOrder))
def test_float32_nan_and_infinity_read_as_unavailable(word_order):
    spec = RegisterSpec(address=0, format="float32", word_order=word_order)
    assert spec.decode(encode_registers(math.nan, "float32", word_order)) is None
    assert spec.decode(encode_registers(math.inf, "float32", word_order)) is None
    assert spec.decode(spec.encode(None)) is None


@pytest.mark.parametrize("register_format", list(INTEGER_RANGES))
def test_integer_not_available_markers_read_as_unavailable(register_format):
    spec = RegisterSpec(address=0, format=register_format)
    assert spec.decode(spec.encode(None)) is None
    # The neighbour of the marker is an ordinary value.
    low, high = INTEGER_RANGES[register_format]
    ordinary = low + 1 if low < 0 else high - 1
    assert spec.decode(encode_registers(ordinary, register_format, "big")) == float(ordinary)


def test_spec_accepts_strings_and_stores_enums():
    spec = RegisterSpec(address=10, format="uint32", register_type="input", word_order="little")
    assert spec.format is RegisterFormat.UINT32
    assert spec.register_type is RegisterType.INPUT
    assert spec.word_order is WordOrder.LITTLE
    assert (spec.register_count, spec.end_address) == (2, 12)


def test_invalid_spec_is_refused_with_every_problem():
    with pytest.raises(RegisterMapError) as excinfo:
        RegisterSpec(address=-1, format="float33", scale=0)
    assert excinfo.value.errors == [
        "format: unknown format 'float33' (expected one of float32, int64, int32, int16, "
        "uint64, uint32, uint16)",
        "address: -1 is outside 0-65535",
        "scale: must be finite and non-zero, got 0",
    ]


# ----- JSON shape ---------------------------------------------------------------


def test_builtin_map_json_round_trip():
    text = PM5320.to_json()
    data = json.loads(text)
    assert data["name"] == "pm5320"
    assert data["registers"]["current_l1_a"] == {
        "address": 2999,
        "format": "float32",
        "register_type": "holding",
        "scale": 1.0,
        "word_order": "big",
    }
    assert RegisterMap.from_json(text) == PM5320
    assert RegisterMap.from_dict(data) == PM5320
    assert RegisterMap.from_json(data) == PM5320  # an already parsed JSON object


def test_optional_keys_take_their_defaults():
    register_map = RegisterMap.from_dict(
        {"name": "minimal", "registers": {"current_l1_a": {"address": 0, "format": "uint16"}}}
    )
    assert register_map.description == ""
    assert register_map.current_l1_a == RegisterSpec(0, RegisterFormat.UINT16)
    assert register_map.specs() == {"current_l1_a": register_map.current_l1_a}


def test_every_problem_is_reported_with_its_path():
    data = {
        "name": "",
        "colour": "red",
        "registers": {
            "current_l1_a": {"address": 2999, "format": "float33"},
            "current_l2_a": {"address": 65535, "format": "float32"},
            "current_l3_a": {"address": "3003", "format": "float32", "word_order": "middle"},
            "power_l1_kw": {
                "address": 70000,
                "format": "int16",
                "scale": float("inf"),
                "register_type": "coil",
            },
            "power_l2_kw": {"format": "int16", "scale": "1", "unit": "kW"},
            "voltage_l1_v": {"address": 1, "format": "float32"},
            "energy_delivered_kwh": [1, 2],
        },
    }
    with pytest.raises(RegisterMapError) as excinfo:
        RegisterMap.from_dict(data)
    errors = excinfo.value.errors
    expected = [
        "colour: unknown key (expected name, description, registers)",
        "name: required (a non-empty string)",
        "registers.current_l1_a.format: unknown format 'float33' "
        "(expected one of float32, int64, int32, int16, uint64, uint32, uint16)",
        "registers.current_l2_a.address: a float32 at 65535 needs registers up to 65536, "
        "beyond 65535",
        "registers.current_l3_a.address: must be an integer, got '3003'",
        "registers.current_l3_a.word_order: unknown word order 'middle' (expected one of big, "
        "little)",
        "registers.power_l1_kw.address: 70000 is outside 0-65535",
        "registers.power_l1_kw.register_type: unknown register type 'coil' (expected one of "
        "holding, input)",
        "registers.power_l1_kw.scale: must be finite and non-zero, got inf",
        "registers.power_l2_kw.unit: unknown key (expected address, format, register_type, "
        "scale, word_order)",
        "registers.power_l2_kw.address: required (0-65535)",
        "registers.power_l2_kw.scale: must be a number, got '1'",
        "registers.voltage_l1_v: unknown field 'voltage_l1_v' (expected one of current_l1_a, "
        "current_l2_a, current_l3_a, power_l1_kw, power_l2_kw, power_l3_kw, power_total_kw, "
        "energy_delivered_kwh)",
        "registers.energy_delivered_kwh: must be an object with address and format",
    ]
    assert errors == expected
    assert str(excinfo.value) == "; ".join(expected)


def test_a_map_needs_at_least_one_current():
    errors = register_map_errors(
        {"name": "power only", "registers": {"power_total_kw": {"address": 0, "format": "int32"}}}
    )
    assert errors == [
        "registers: at least one current (current_l1_a, current_l2_a, current_l3_a) is required"
    ]


def test_partly_overlapping_values_are_refused_but_a_shared_register_is_fine():
    errors = register_map_errors(
        {
            "name": "overlap",
            "registers": {
                "current_l1_a": {"address": 0, "format": "float32"},
                "power_l3_kw": {"address": 32075, "format": "float32"},
                "power_l1_kw": {"address": 32076, "format": "float32"},
                "power_total_kw": {"address": 32075, "format": "float32"},
            },
        }
    )
    assert errors == [
        "registers.power_l1_kw.address: registers 32076-32077 overlap power_l3_kw (32075-32076)",
        "registers.power_total_kw.address: registers 32075-32076 overlap power_l1_kw (32076-32077)",
    ]
    # The same register in another register type is another register.
    assert (
        register_map_errors(
            {
                "name": "types",
                "registers": {
                    "current_l1_a": {"address": 0, "format": "float32"},
                    "current_l2_a": {"address": 1, "format": "float32", "register_type": "input"},
                },
            }
        )
        == []
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "must be an object with name, description and registers"),
        ({"name": "x"}, "registers: required"),
        ({"name": "x", "registers": []}, "registers: must be an object"),
        ({"name": "x" * 65, "registers": {}}, "name: at most 64 characters"),
        ({"name": "x", "description": 3, "registers": {}}, "description: must be a string"),
    ],
)
def test_malformed_documents(data, expected):
    errors = register_map_errors(data)
    assert any(expected in error for error in errors), errors


def test_valid_map_has_no_errors_and_a_built_map_is_validated_too():
    assert register_map_errors(PM5320.to_json()) == []
    with pytest.raises(RegisterMapError, match="at least one current"):
        RegisterMap(name="empty")
