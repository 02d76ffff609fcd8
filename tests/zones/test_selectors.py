"""Which reductions are in force at a given time (TOU slots, inputs, EBMS)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from apps.zones.models import EbmsReduction, ExternalInput, InputKind, TouPeriod, TouSlot, Zone
from apps.zones.selectors import active_reductions, slot_active, tou_period_name_at

MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("start", "end", "days", "moment", "expected"),
    [
        (time(7), time(10), ["mon"], datetime(2026, 11, 23, 7, 0), True),
        (time(7), time(10), ["mon"], datetime(2026, 11, 23, 10, 0), False),  # end excluded
        (time(7), time(10), ["tue"], datetime(2026, 11, 23, 8, 0), False),
        # A slot crossing midnight belongs to the day it starts.
        (time(22), time(6), ["mon"], datetime(2026, 11, 23, 23, 0), True),
        (time(22), time(6), ["mon"], datetime(2026, 11, 24, 3, 0), True),  # Tuesday 03:00
        (
            time(22),
            time(6),
            ["mon"],
            datetime(2026, 11, 23, 3, 0),
            False,
        ),  # Monday 03:00: Sunday's slot
        (time(22), time(6), ["sun"], datetime(2026, 11, 23, 3, 0), True),
        (time(22), time(6), ["mon"], datetime(2026, 11, 24, 6, 0), False),
    ],
)
def test_slot_active(start, end, days, moment, expected):
    assert slot_active(start, end, days, moment) is expected


@pytest.mark.django_db
def test_active_reductions_by_source(settings):
    settings.TIME_ZONE = "UTC"
    main = Zone.objects.create(name="Main", max_current_a=100)
    sub = Zone.objects.create(name="Sub", max_current_a=63, parent=main)
    peak = TouPeriod.objects.create(name="Peak", days=["mon"], max_percent=60)
    TouSlot.objects.create(period=peak, start=time(11), end=time(13))
    peak.zones.set([main])
    night = TouPeriod.objects.create(name="Night", days=["mon"], max_percent=80)
    TouSlot.objects.create(period=night, start=time(22), end=time(6))
    ExternalInput.objects.create(
        number=1, name="Grid signal", percent=40, kind=InputKind.API, active=True
    )
    EbmsReduction.objects.create(
        zone=sub,
        current_a=20,
        created_at=MONDAY_NOON - timedelta(minutes=5),
        valid_until=MONDAY_NOON + timedelta(minutes=5),
    )
    EbmsReduction.objects.create(
        zone=sub,
        percent=10,
        created_at=MONDAY_NOON - timedelta(hours=2),
        valid_until=MONDAY_NOON - timedelta(hours=1),
    )  # expired

    found = active_reductions(MONDAY_NOON)
    main_sources = sorted((r.source, r.percent) for r in found[main.pk])
    assert main_sources == [("input", 40.0), ("tou", 60.0)]
    sub_sources = sorted((r.source, r.percent, r.current_a) for r in found[sub.pk])
    assert sub_sources == [("ebms", None, 20.0), ("input", 40.0, None)]  # Peak applies to Main only

    assert tou_period_name_at(MONDAY_NOON) == "Peak"
    assert tou_period_name_at(MONDAY_NOON + timedelta(hours=11)) == "Night"
    assert tou_period_name_at(MONDAY_NOON + timedelta(hours=5)) is None


@pytest.mark.django_db
def test_disabled_period_and_inactive_input_do_not_apply():
    zone = Zone.objects.create(name="Main", max_current_a=100)
    period = TouPeriod.objects.create(name="Peak", days=["mon"], max_percent=60, enabled=False)
    TouSlot.objects.create(period=period, start=time(0), end=time(23, 59))
    ExternalInput.objects.create(
        number=1, name="Signal", percent=40, kind=InputKind.API, active=False
    )
    assert active_reductions(MONDAY_NOON).get(zone.pk, []) == []
