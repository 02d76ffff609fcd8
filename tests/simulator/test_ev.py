"""The EV charging curve (pure)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.simulator.engine.ev import EV_CATALOGUE, Ev, EvModel, random_ev

SEDAN = EvModel("sedan", phases=3, max_current_a=16, battery_kwh=64)


def test_constant_current_then_taper_then_nothing_when_full() -> None:
    assert SEDAN.demand_current_a(0.1) == 16
    assert SEDAN.demand_current_a(0.8) == 16
    assert SEDAN.demand_current_a(0.9) == pytest.approx(10)
    assert SEDAN.demand_current_a(0.99) == pytest.approx(4.6)
    assert SEDAN.demand_current_a(0.99999) == pytest.approx(4, abs=0.01)  # never below 25 %
    assert SEDAN.demand_current_a(1.0) == 0


def test_draws_the_smaller_of_demand_and_offer_and_nothing_below_6_a() -> None:
    ev = Ev(SEDAN, 0.5)
    assert ev.draw_current_a(32) == 16
    assert ev.draw_current_a(10) == 10
    assert ev.draw_current_a(6) == 6
    assert ev.draw_current_a(5.9) == 0
    assert ev.draw_current_a(0) == 0


def test_energy_and_state_of_charge() -> None:
    ev = Ev(SEDAN, 0.5)
    energy_wh = ev.charge(16, 3, 3600)
    assert energy_wh == pytest.approx(16 * 230 * 3)
    assert ev.soc == pytest.approx(0.5 + energy_wh * 0.9 / 64_000)
    assert ev.energy_wh == energy_wh
    assert ev.charge(0, 3, 60) == 0


def test_a_charge_from_20_percent_ends_full_in_a_realistic_time() -> None:
    ev = Ev(SEDAN, 0.2)
    elapsed_s = 0
    while not ev.full and elapsed_s < 24 * 3600:
        ev.charge(ev.draw_current_a(32), 3, 10)
        elapsed_s += 10
    assert ev.full
    # 0.6 × 64 kWh / 0.9 at 11 kW is about 3.9 h, then about 2.4 h of taper.
    assert 5.5 * 3600 < elapsed_s < 7 * 3600


@given(
    st.floats(0, 1),
    st.floats(0, 80, allow_nan=False),
    st.sampled_from(EV_CATALOGUE),
)
def test_never_draws_more_than_offered_or_its_charger_allows(
    soc: float, offered_a: float, model: EvModel
) -> None:
    drawn = Ev(model, soc).draw_current_a(offered_a)
    assert 0 <= drawn <= model.max_current_a
    assert drawn == 0 or offered_a >= 6
    assert drawn <= offered_a


@given(st.floats(0, 1), st.floats(0, 1), st.sampled_from(EV_CATALOGUE))
def test_demand_never_rises_as_the_battery_fills(low: float, high: float, model: EvModel) -> None:
    low, high = sorted((low, high))
    assert model.demand_current_a(high) <= model.demand_current_a(low)


def test_random_ev_is_repeatable_with_a_seed() -> None:
    first, second = random_ev(random.Random(3)), random_ev(random.Random(3))
    assert (first.model, first.soc) == (second.model, second.soc)
    assert 0.1 <= first.soc <= 0.6


def test_invalid_models_are_refused() -> None:
    with pytest.raises(ValueError):
        EvModel("bad", phases=4, max_current_a=16, battery_kwh=50)
    with pytest.raises(ValueError):
        EvModel("bad", phases=1, max_current_a=16, battery_kwh=50, taper_soc=1.2)
