"""Energy of each transaction inside each TOU period and outside any (SPEC §3.6)."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from apps.stations.services import (
    MeterReading,
    meter_values_record,
    transaction_start,
    transaction_stop,
)
from apps.zones.models import TouPeriod, TouSlot
from tests.stations.factories import ConnectorFactory

pytestmark = pytest.mark.django_db


def at(hour: int, minute: int) -> datetime:
    return datetime(2026, 11, 23, hour, minute, tzinfo=UTC)  # a Monday


def test_energy_is_split_between_periods_and_no_period(settings):
    settings.TIME_ZONE = "UTC"
    peak = TouPeriod.objects.create(name="Peak", days=["mon"], max_percent=60)
    TouSlot.objects.create(period=peak, start=time(7), end=time(10))
    station = ConnectorFactory(connector_id=1).station
    session = transaction_start(
        station=station, connector_id=1, id_tag="TAG1", meter_start_wh=1000, started_at=at(6, 50)
    )
    for moment, register_wh in (
        (at(6, 55), 1200),
        (at(7, 5), 1500),
        (at(9, 59), 1900),
        (at(10, 30), 2500),
    ):
        meter_values_record(
            station=station,
            connector_id=1,
            transaction_id=session.pk,
            readings=[MeterReading(sampled_at=moment, energy_wh=register_wh)],
        )
    session.refresh_from_db()
    assert session.tou_energy_wh == {"NoPeriod": 800, "Peak": 700}

    transaction_stop(
        station=station, transaction_id=session.pk, meter_stop_wh=2600, stopped_at=at(10, 40)
    )
    session.refresh_from_db()
    assert session.energy_wh == 1600
    assert session.tou_energy_wh == {"NoPeriod": 900, "Peak": 700}
    assert sum(session.tou_energy_wh.values()) == session.energy_wh


def test_a_stop_without_samples_credits_the_period_of_the_stop(settings):
    settings.TIME_ZONE = "UTC"
    peak = TouPeriod.objects.create(name="Peak", days=["mon"], max_percent=60)
    TouSlot.objects.create(period=peak, start=time(7), end=time(10))
    station = ConnectorFactory(connector_id=1).station
    session = transaction_start(
        station=station, connector_id=1, id_tag="TAG2", meter_start_wh=0, started_at=at(8, 0)
    )
    transaction_stop(
        station=station, transaction_id=session.pk, meter_stop_wh=5000, stopped_at=at(9, 0)
    )
    session.refresh_from_db()
    assert session.tou_energy_wh == {"Peak": 5000}
