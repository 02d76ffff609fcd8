from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.meters.modbus.builtin import MTZ, NSX, NSX_LEGACY, PM5320
from apps.meters.modbus.planning import ReadBlock, plan_reads
from apps.meters.modbus.registers import REGISTER_FIELDS, RegisterFormat, RegisterSpec, RegisterType

HOLDING = RegisterType.HOLDING
INPUT = RegisterType.INPUT


def spec(address: int, register_format: str = "float32", register_type: str = "holding"):
    return RegisterSpec(address=address, format=register_format, register_type=register_type)


def test_neighbouring_values_are_read_in_one_request():
    blocks = plan_reads({"a": spec(0), "b": spec(2), "c": spec(4, "int64")})
    assert blocks == (ReadBlock(HOLDING, 0, 8, ("a", "b", "c")),)


def test_small_gaps_are_read_through_large_ones_split():
    specs = {"a": spec(0), "b": spec(2 + 16), "c": spec(20 + 17)}
    assert plan_reads(specs) == (
        ReadBlock(HOLDING, 0, 20, ("a", "b")),
        ReadBlock(HOLDING, 37, 2, ("c",)),
    )
    assert len(plan_reads(specs, max_gap=0)) == 3
    assert len(plan_reads(specs, max_gap=17)) == 1


def test_requests_never_exceed_the_register_limit():
    specs = {f"v{i}": spec(i * 2) for i in range(100)}  # 200 contiguous registers
    blocks = plan_reads(specs)
    assert [block.count for block in blocks] == [124, 76]
    assert all(block.count <= 125 for block in blocks)
    assert [block.count for block in plan_reads(specs, max_count=10)] == [10] * 20


def test_register_types_are_never_mixed():
    blocks = plan_reads({"a": spec(0), "b": spec(2, register_type="input"), "c": spec(4)})
    assert blocks == (
        ReadBlock(HOLDING, 0, 6, ("a", "c")),
        ReadBlock(INPUT, 2, 2, ("b",)),
    )


def test_a_register_shared_by_two_values_is_read_once():
    blocks = plan_reads({"power_l1_kw": spec(10), "power_total_kw": spec(10)})
    assert blocks == (ReadBlock(HOLDING, 10, 2, ("power_l1_kw", "power_total_kw")),)


def test_block_slices_the_response_for_each_value():
    block = ReadBlock(HOLDING, 100, 6, ("a", "b"))
    assert block.registers_of(spec(104), [0, 1, 2, 3, 4, 5]) == [4, 5]


@pytest.mark.parametrize(
    ("register_map", "expected_blocks"),
    [
        # currents 2999-3004 | powers 3053-3060 | energy 3203-3206
        (PM5320, [(2999, 6), (3053, 8), (3203, 4)]),
        # currents 12015-12017 | powers 12037-12040 + energy 12049-12050
        (NSX_LEGACY, [(12015, 3), (12037, 14)]),
        # currents 32027-32032 | powers 32071-32078 | energy 32103-32106
        (NSX, [(32027, 6), (32071, 8), (32103, 4)]),
        (MTZ, [(32027, 6), (32071, 8), (32103, 4)]),
    ],
)
def test_builtin_models_need_few_requests(register_map, expected_blocks):
    blocks = plan_reads(register_map)
    assert [(block.address, block.count) for block in blocks] == expected_blocks
    assert sorted(name for block in blocks for name in block.fields) == sorted(REGISTER_FIELDS)


def test_invalid_limits_are_refused():
    with pytest.raises(ValueError):
        plan_reads({"a": spec(0)}, max_gap=-1)
    with pytest.raises(ValueError):
        plan_reads({"a": spec(0)}, max_count=3)


specs_strategy = st.dictionaries(
    keys=st.sampled_from(REGISTER_FIELDS),
    values=st.builds(
        RegisterSpec,
        address=st.integers(0, 500),
        format=st.sampled_from(list(RegisterFormat)),
        register_type=st.sampled_from(list(RegisterType)),
    ),
    min_size=1,
)


@given(specs=specs_strategy, max_gap=st.integers(0, 40), max_count=st.integers(4, 125))
def test_plan_covers_every_value_within_the_limits(specs, max_gap, max_count):
    blocks = plan_reads(specs, max_gap=max_gap, max_count=max_count)
    planned = [name for block in blocks for name in block.fields]
    assert sorted(planned) == sorted(specs)  # every value exactly once
    for block in blocks:
        assert 1 <= block.count <= max_count
        members = [specs[name] for name in block.fields]
        for member in members:
            assert member.register_type == block.register_type
            assert block.address <= member.address
            assert member.end_address <= block.end_address
        used = set()
        for member in members:
            used.update(range(member.address, member.end_address))
        longest_gap = run = 0
        for address in range(block.address, block.end_address):
            run = 0 if address in used else run + 1
            longest_gap = max(longest_gap, run)
        assert longest_gap <= max_gap
    assert plan_reads(specs, max_gap=max_gap, max_count=max_count) == blocks  # deterministic
