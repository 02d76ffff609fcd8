"""A meter's state as the poller left it, and the one rule for using its values (SPEC §4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from apps.meters.selectors import MeterState, meter_state, meter_states
from apps.meters.services import meters_poll
from apps.meters.state import MeterStatus, meters_hot_state_set
from apps.zones.models import Zone
from tests.meters.factories import modbus_meter

READ_AT = datetime(2026, 3, 2, 8, 0, 0, tzinfo=UTC)
HORIZON = timedelta(seconds=5)
VALUES = {"current_l1_a": 31.5, "current_l2_a": 20.0, "current_l3_a": 12.25}


def state(status: str = MeterStatus.CONNECTED, *, failures: int = 0, values=VALUES) -> MeterState:
    return MeterState(
        meter_id=1,
        status=status,
        failures=failures,
        values=values,
        read_at=READ_AT,
        read_done_at=READ_AT + timedelta(milliseconds=40),
        usable_until=READ_AT + HORIZON,
    )


@pytest.mark.parametrize(
    ("after", "usable"),
    [
        (timedelta(0), True),
        (HORIZON - timedelta(microseconds=1), True),
        (HORIZON, True),  # the end of the loss horizon is included
        (HORIZON + timedelta(microseconds=1), False),
    ],
)
def test_last_good_values_are_usable_until_their_loss_horizon(after, usable):
    for status in (MeterStatus.CONNECTED, MeterStatus.ERROR):
        current = state(status, failures=0 if status == MeterStatus.CONNECTED else 2)
        assert current.is_usable(READ_AT + after) is usable
        expected = (31.5, 20.0, 12.25) if usable else None
        assert current.usable_currents_a(READ_AT + after) == expected


def test_a_lost_or_never_read_meter_is_never_usable_not_even_as_zero():
    assert not state(MeterStatus.LOST, failures=3).is_usable(READ_AT)
    assert state(MeterStatus.LOST, failures=3).usable_currents_a(READ_AT) is None
    never = MeterState(meter_id=1)
    assert never.status == MeterStatus.NOT_CONNECTED
    assert not never.is_usable(READ_AT)
    assert never.age_s(READ_AT) is None and never.currents_a is None


def test_a_meter_missing_a_phase_current_gives_no_currents():
    partial = state(values={"current_l1_a": 10.0, "current_l2_a": None, "current_l3_a": 9.0})
    assert partial.is_usable(READ_AT)
    assert partial.usable_currents_a(READ_AT) is None


def test_the_age_of_the_last_good_values():
    assert state().age_s(READ_AT + timedelta(seconds=2.5)) == 2.5


def test_states_read_back_from_redis(hot_state):
    meters_hot_state_set(
        {
            7: {
                "status": MeterStatus.ERROR,
                "failures": 2,
                "values": VALUES,
                "read_at": READ_AT.isoformat(),
                "read_done_at": (READ_AT + timedelta(milliseconds=40)).isoformat(),
                "usable_until": (READ_AT + HORIZON).isoformat(),
                "error": "no answer",
                "failed_at": (READ_AT + timedelta(seconds=1)).isoformat(),
            }
        }
    )
    current = meter_state(7)
    assert current == MeterState(
        meter_id=7,
        status=MeterStatus.ERROR,
        failures=2,
        values=VALUES,
        read_at=READ_AT,
        read_done_at=READ_AT + timedelta(milliseconds=40),
        usable_until=READ_AT + HORIZON,
        failed_at=READ_AT + timedelta(seconds=1),
        error="no answer",
    )
    states = meter_states([7, 8])
    assert states[7] == current
    assert states[8] == MeterState(meter_id=8)  # never read
    assert meter_states([]) == {}


@pytest.mark.django_db
def test_a_meter_stays_usable_through_failed_polls_until_it_is_lost(meter_simulator, hot_state):
    meter = modbus_meter(meter_simulator.port)
    Zone.objects.create(name="Main", max_current_a=100, meter=meter, degraded_current_a=20)
    meter_simulator.set_values(1, current_a=(31.5, 20.0, 12.25))
    now = timezone.now()
    meters_poll(now=now, lost_after=3)
    current = meter_state(meter.pk)
    assert current.status == MeterStatus.CONNECTED and current.failures == 0
    assert current.usable_currents_a(now) == pytest.approx((31.5, 20.0, 12.25))

    meter_simulator.set_online(1, False)
    for failures in (1, 2):
        at = now + timedelta(seconds=failures)
        meters_poll(now=at, lost_after=3)
        current = meter_state(meter.pk)
        assert (current.status, current.failures) == (MeterStatus.ERROR, failures)
        assert current.is_usable(at) and current.read_at == now
        assert current.age_s(at) == pytest.approx(failures)
    at = now + timedelta(seconds=3)
    meters_poll(now=at, lost_after=3)
    current = meter_state(meter.pk)
    assert (current.status, current.failures) == (MeterStatus.LOST, 3)
    assert not current.is_usable(at)
    assert current.currents_a == pytest.approx((31.5, 20.0, 12.25))  # kept, but not used
