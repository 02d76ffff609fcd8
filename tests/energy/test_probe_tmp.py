import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from apps.energy.allocator.readings import sample_cap
from tests.energy.allocator.strategies import Decoder
from tests.energy.allocator.test_transition_loop import PROPERTY
from tests.energy.test_meter_loop import MeterLoop, _lowest

CAP = sample_cap


@settings(PROPERTY, max_examples=10000)
@given(
    data=st.binary(min_size=600, max_size=600),
    n=st.integers(2, 6),
    max_a=st.sampled_from([40.0, 63.0, 100.0]),
    share=st.sampled_from([0.25, 0.5, 0.75]),
)
def test_probe(data, n, max_a, share):
    loop = MeterLoop(
        Decoder(data), n, max_a, faults=True, building_max_a=round(max_a * share), cap=CAP
    )
    try:
        for _ in range(20):
            loop.cars_come_and_go()
            loop.world_changes()
            loop.second()
    except AssertionError:
        with open("/tmp/fail.pkl", "wb") as f:
            pickle.dump((data, n, max_a, share), f)
        raise
