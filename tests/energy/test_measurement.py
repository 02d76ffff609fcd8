"""What the load manager takes from a session's samples: phases and current, on the safe side."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from apps.energy.allocator import Connector, CurrentType, PhaseWiring
from apps.energy.measurement import (
    ac_current_a,
    dc_input_current_a,
    ev_measurement,
    ev_phases,
    phases_shown,
    previous_current_samples,
)
from tests.stations.factories import MeterSampleFactory, TransactionFactory

TRI = PhaseWiring.TRI123


def sample(l1=None, l2=None, l3=None, *, unknown=None, power_w=None) -> SimpleNamespace:
    return SimpleNamespace(
        current_l1_a=l1,
        current_l2_a=l2,
        current_l3_a=l3,
        current_unknown_phase_a=unknown,
        power_w=power_w,
    )


@pytest.mark.parametrize(
    ("values", "shown"),
    [
        ((16, 0, 0), 1),
        ((16, 15.9, 0.3), 2),
        ((16, 16, 16), 3),
        ((16, None, None), None),  # L2 and L3 not reported: unknown, not unused
        ((16, 0.7, 0), None),  # neither used nor unused
        ((0, 16, 0), None),  # an EV draws on its first phases: this is not a plain reading
        ((0.2, 0, 0), None),  # drawing nothing shows nothing
    ],
)
def test_a_sample_shows_phases_only_plainly(values, shown) -> None:
    assert phases_shown(TRI, sample(*values)) == shown


def test_a_phase_less_sample_shows_no_phases() -> None:
    assert phases_shown(TRI, sample(unknown=16)) is None


def test_only_the_wiring_phases_are_read() -> None:
    assert phases_shown(PhaseWiring.MONO2, sample(16)) == 1
    assert phases_shown(PhaseWiring.MONO2, sample(16, 16, 16)) == 1


def test_fewer_phases_than_the_wiring_need_two_samples_that_agree() -> None:
    single = sample(16, 0, 0)
    assert ev_phases(TRI, single, sample(15, 0.1, 0)) == 1
    assert ev_phases(TRI, sample(16, 16, 0), sample(16, 15, 0)) == 2
    assert ev_phases(TRI, single, None) is None
    assert ev_phases(TRI, single, sample(16, 16, 16)) is None
    assert ev_phases(TRI, single, sample(unknown=16)) is None


def test_more_phases_count_at_once() -> None:
    assert ev_phases(TRI, sample(16, 16, 16), sample(16, 0, 0)) is None
    assert ev_phases(TRI, sample(unknown=16), sample(16, 0, 0)) is None


def test_a_phase_less_current_is_taken_off_the_meter_on_the_first_wiring_phase_only() -> None:
    # The EV surely draws there; on L3 and L1 it may draw nothing at all.
    assert ac_current_a(PhaseWiring.TRI231, sample(unknown=16)) == (0.0, 16.0, 0.0)
    assert ac_current_a(PhaseWiring.TRI231, sample(10, None, 12)) == (12.0, 10.0, 0.0)
    assert ac_current_a(TRI, sample(power_w=7000)) is None


def test_a_dc_charger_counts_by_its_ac_input() -> None:
    assert dc_input_current_a(TRI, 41_400, 230) == pytest.approx((60.0, 60.0, 60.0))
    assert dc_input_current_a(PhaseWiring.MONO3, 4_600, 230) == pytest.approx((0.0, 0.0, 20.0))
    assert dc_input_current_a(TRI, -500, 230) == (0.0, 0.0, 0.0)
    assert dc_input_current_a(TRI, None, 230) is None


def test_a_dc_charger_is_never_counted_by_its_dc_amps() -> None:
    dc = Connector(key="DC/1", zone_id=1, current_type=CurrentType.DC, max_power_w=50_000)
    with_power = ev_measurement(dc, sample(unknown=103.5, power_w=41_400), None, voltage_v=230)
    assert with_power.measured_current_a == pytest.approx((60.0, 60.0, 60.0))
    assert with_power.ev_phases is None
    amps_only = ev_measurement(dc, sample(103.5, 0, 0), sample(103.5, 0, 0), voltage_v=230)
    assert amps_only.measured_current_a is None
    assert amps_only.ev_phases is None


@pytest.mark.django_db
def test_the_previous_sample_is_the_last_one_with_a_current_before_the_latest() -> None:
    at = timezone.now()
    session = TransactionFactory()
    first = MeterSampleFactory(transaction=session, sampled_at=at, current_l1_a=16)
    MeterSampleFactory(
        transaction=session, sampled_at=at + timedelta(seconds=5), current_l1_a=None, energy_wh=9
    )
    latest = MeterSampleFactory(
        transaction=session,
        sampled_at=at + timedelta(seconds=10),
        current_l1_a=None,
        current_unknown_phase_a=16,
    )
    energy_only = MeterSampleFactory(current_l1_a=None, energy_wh=100)
    alone = MeterSampleFactory(current_l1_a=12)
    found = previous_current_samples(
        {session.pk: latest, energy_only.transaction_id: energy_only, alone.transaction_id: alone}
    )
    assert found == {session.pk: first}


@pytest.mark.django_db
def test_a_sample_stored_after_the_latest_was_read_is_not_taken_for_the_previous() -> None:
    at = timezone.now()
    session = TransactionFactory()
    MeterSampleFactory(transaction=session, sampled_at=at, current_l1_a=16)
    latest = MeterSampleFactory(transaction=session, sampled_at=at + timedelta(seconds=10))
    MeterSampleFactory(transaction=session, sampled_at=at + timedelta(seconds=20))
    assert previous_current_samples({session.pk: latest}) == {}
