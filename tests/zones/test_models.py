from datetime import time, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from apps.siteconfig.models import SiteSettings
from apps.zones.models import EbmsReduction, ExternalInput, InputKind, TouSlot, Zone
from tests.meters.factories import MeterFactory
from tests.stations.factories import StationFactory
from tests.zones.factories import (
    EbmsReductionFactory,
    ExternalInputFactory,
    TouPeriodFactory,
    TouSlotFactory,
    ZoneFactory,
)

pytestmark = pytest.mark.django_db


def errors_of(obj) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as excinfo:
        obj.full_clean()
    return excinfo.value.message_dict


def chain(levels: int) -> list[Zone]:
    """A top zone and its descendants, one per level."""
    zones = [ZoneFactory()]
    for _ in range(levels - 1):
        zones.append(ZoneFactory(parent=zones[-1]))
    return zones


# --- tree shape -------------------------------------------------------------------------


def test_a_fourth_level_is_accepted():
    *_, level3 = chain(3)
    ZoneFactory.build(parent=level3).full_clean()


def test_a_fifth_level_is_refused():
    *_, level4 = chain(4)
    assert errors_of(ZoneFactory.build(parent=level4))["parent"] == [
        "Zones are limited to 4 levels."
    ]


def test_moving_a_subtree_counts_its_own_depth():
    *_, level3 = chain(3)
    subtree_top = ZoneFactory()
    ZoneFactory(parent=subtree_top)
    subtree_top.parent = level3
    assert errors_of(subtree_top)["parent"] == ["Zones are limited to 4 levels."]


def test_the_level_limit_is_a_site_setting():
    site = SiteSettings.load()
    site.max_zone_levels = 2
    site.save()
    _, level2 = chain(2)
    assert errors_of(ZoneFactory.build(parent=level2))["parent"] == [
        "Zones are limited to 2 levels."
    ]
    site.max_zone_levels = 3
    site.save()
    ZoneFactory.build(parent=level2).full_clean()


def test_the_twenty_first_zone_is_refused():
    ZoneFactory.create_batch(20)
    assert errors_of(ZoneFactory.build())["__all__"] == ["The site is limited to 20 zones."]


def test_editing_an_existing_zone_is_allowed_at_the_limit():
    zones = ZoneFactory.create_batch(20)
    zones[0].max_current_a = Decimal("90")
    zones[0].full_clean()


def test_the_zone_count_limit_is_a_site_setting():
    site = SiteSettings.load()
    site.max_zones = 2
    site.save()
    ZoneFactory.create_batch(2)
    assert errors_of(ZoneFactory.build())["__all__"] == ["The site is limited to 2 zones."]


def test_a_sub_zone_may_not_exceed_its_parent():
    parent = ZoneFactory(max_current_a=Decimal("63"))
    assert errors_of(ZoneFactory.build(parent=parent, max_current_a=Decimal("63.5")))[
        "max_current_a"
    ] == ["exceeds parent's 63 A"]
    ZoneFactory.build(parent=parent, max_current_a=Decimal("63")).full_clean()


def test_a_parent_may_not_drop_below_a_child():
    parent = ZoneFactory(max_current_a=Decimal("100"))
    ZoneFactory(parent=parent, max_current_a=Decimal("80"))
    parent.max_current_a = Decimal("79.5")
    assert errors_of(parent)["max_current_a"] == ["is below the 80 A of one of its sub-zones"]
    parent.max_current_a = Decimal("80")
    parent.full_clean()


def test_a_zone_cannot_be_its_own_parent():
    zone = ZoneFactory()
    zone.parent = zone
    assert errors_of(zone)["parent"] == ["A zone cannot be placed below itself."]


def test_a_zone_cannot_be_placed_below_its_descendant():
    top, middle, bottom = chain(3)
    top.parent = bottom
    assert errors_of(top)["parent"] == ["A zone cannot be placed below itself."]
    middle.parent = bottom
    assert errors_of(middle)["parent"] == ["A zone cannot be placed below itself."]


def test_the_database_refuses_a_zone_that_is_its_own_parent():
    zone = ZoneFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Zone.objects.filter(pk=zone.pk).update(parent=zone)


def test_level_helpers_describe_the_tree():
    top, middle, bottom = chain(3)
    assert [z.level() for z in (top, middle, bottom)] == [1, 2, 3]
    assert top.subtree_height() == 3
    assert bottom.subtree_height() == 1
    assert bottom.ancestors() == [middle, top]


# --- stations and deletion --------------------------------------------------------------


def test_a_zone_holding_stations_cannot_get_sub_zones():
    terminal = ZoneFactory(name="Level -1")
    StationFactory(zone=terminal)
    assert errors_of(ZoneFactory.build(parent=terminal))["parent"] == [
        "Zone Level -1 has stations: only terminal zones hold stations, so it cannot get sub-zones."
    ]


def test_a_zone_with_stations_cannot_be_deleted():
    zone = ZoneFactory()
    StationFactory(zone=zone)
    with pytest.raises(ProtectedError):
        zone.delete()
    assert Zone.objects.filter(pk=zone.pk).exists()


def test_a_zone_with_sub_zones_cannot_be_deleted():
    parent = ZoneFactory()
    ZoneFactory(parent=parent)
    with pytest.raises(ProtectedError):
        parent.delete()


def test_an_empty_zone_can_be_deleted():
    zone = ZoneFactory()
    zone.delete()
    assert not Zone.objects.exists()


# --- meters -----------------------------------------------------------------------------


def test_a_zone_with_a_meter_is_dynamic():
    assert ZoneFactory(meter=MeterFactory()).is_dynamic
    assert not ZoneFactory().is_dynamic


def test_a_meter_serves_one_zone_only():
    meter = MeterFactory(name="main")
    ZoneFactory(meter=meter)
    assert errors_of(ZoneFactory.build(meter=meter))["meter"] == [
        "Meter main already serves another zone."
    ]


def test_a_zone_meter_cannot_be_another_zones_production_meter():
    meter = MeterFactory(name="main")
    ZoneFactory(meter=meter)
    assert errors_of(ZoneFactory.build(production_meter=meter))["production_meter"] == [
        "Meter main already serves another zone."
    ]


def test_a_production_meter_cannot_be_another_zones_meter():
    solar = MeterFactory(name="solar")
    ZoneFactory(production_meter=solar)
    assert errors_of(ZoneFactory.build(meter=solar))["meter"] == [
        "Meter solar already serves another zone."
    ]


def test_a_zone_may_keep_its_own_meter_when_edited():
    zone = ZoneFactory(meter=MeterFactory(), production_meter=MeterFactory())
    zone.max_current_a = Decimal("90")
    zone.full_clean()


def test_zone_meter_and_production_meter_must_differ():
    meter = MeterFactory()
    assert errors_of(ZoneFactory.build(meter=meter, production_meter=meter))[
        "production_meter"
    ] == ["The production meter must differ from the zone meter."]


def test_the_database_refuses_the_same_meter_for_consumption_and_production():
    meter = MeterFactory()
    zone = ZoneFactory(meter=meter)
    with pytest.raises(IntegrityError), transaction.atomic():
        Zone.objects.filter(pk=zone.pk).update(production_meter=meter)


def test_the_database_refuses_a_meter_on_two_zones():
    meter = MeterFactory()
    ZoneFactory(meter=meter)
    with pytest.raises(IntegrityError), transaction.atomic():
        ZoneFactory(meter=meter)


@pytest.mark.parametrize("field", ["meter", "production_meter"])
def test_a_reporting_meter_cannot_serve_a_zone(field):
    meter = MeterFactory(name="hvac", is_reporting=True)
    assert errors_of(ZoneFactory.build(**{field: meter}))[field] == [
        "Meter hvac is a reporting meter."
    ]


def test_a_meter_in_use_cannot_be_deleted():
    meter = MeterFactory()
    ZoneFactory(meter=meter)
    with pytest.raises(ProtectedError):
        meter.delete()


# --- meter net of production -----------------------------------------------------------

NET_NEEDS = "A zone meter net of production needs a zone meter and this zone's production meter."


def test_a_meter_net_of_production_is_accepted_with_both_meters():
    zone = ZoneFactory.build(
        meter=MeterFactory(), production_meter=MeterFactory(), meter_net_of_production=True
    )
    zone.full_clean()


def test_a_zone_meter_measures_consumption_by_default():
    assert ZoneFactory().meter_net_of_production is False


@pytest.mark.parametrize(
    "meters",
    [{}, {"meter": True}, {"production_meter": True}],
    ids=["static", "no-production", "no-meter"],
)
def test_a_meter_net_of_production_needs_the_zone_meter_and_its_production_meter(meters):
    fields = {name: MeterFactory() for name in meters}
    zone = ZoneFactory.build(meter_net_of_production=True, **fields)
    assert errors_of(zone) == {"meter_net_of_production": [NET_NEEDS]}


def test_removing_the_production_meter_of_a_net_meter_zone_is_refused():
    zone = ZoneFactory(
        meter=MeterFactory(), production_meter=MeterFactory(), meter_net_of_production=True
    )
    zone.production_meter = None
    assert errors_of(zone) == {"meter_net_of_production": [NET_NEEDS]}


# --- degraded setpoint ------------------------------------------------------------------


def test_degraded_current_above_the_maximum_is_refused():
    zone = ZoneFactory.build(max_current_a=Decimal("100"), degraded_current_a=Decimal("100.1"))
    assert errors_of(zone) == {"degraded_current_a": ["cannot exceed the zone maximum"]}


def test_degraded_current_equal_to_the_maximum_is_accepted():
    ZoneFactory.build(max_current_a=Decimal("100"), degraded_current_a=Decimal("100")).full_clean()


def test_the_database_refuses_degraded_current_above_the_maximum():
    zone = ZoneFactory(max_current_a=Decimal("100"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Zone.objects.filter(pk=zone.pk).update(degraded_current_a=Decimal("120"))


def test_a_zero_maximum_is_refused():
    zone = ZoneFactory.build(max_current_a=Decimal("0"), degraded_current_a=Decimal("0"))
    assert errors_of(zone) == {"max_current_a": ["must be greater than 0 A"]}


def test_the_database_refuses_a_zero_maximum():
    with pytest.raises(IntegrityError), transaction.atomic():
        ZoneFactory(max_current_a=Decimal("0"))


# --- time-of-use ------------------------------------------------------------------------


def test_a_sixth_period_is_refused():
    TouPeriodFactory.create_batch(5)
    assert errors_of(TouPeriodFactory.build())["__all__"] == ["At most 5 time-of-use periods."]


def test_editing_a_period_is_allowed_with_five_periods():
    periods = TouPeriodFactory.create_batch(5)
    periods[0].max_percent = 30
    periods[0].full_clean()


def test_the_twenty_first_slot_is_refused():
    periods = TouPeriodFactory.create_batch(4)
    for index in range(20):
        TouSlotFactory(period=periods[index % 4], start=time(index, 0), end=time(index, 30))
    slot = TouSlotFactory.build(period=periods[0], start=time(21, 0), end=time(22, 0))
    assert errors_of(slot)["__all__"] == ["At most 20 time slots in total."]


def test_a_slot_starting_and_ending_at_the_same_time_is_refused():
    slot = TouSlotFactory.build(period=TouPeriodFactory(), start=time(8, 0), end=time(8, 0))
    assert errors_of(slot) == {"end": ["A slot must not start and end at the same time."]}


def test_the_database_refuses_an_empty_slot():
    period = TouPeriodFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        TouSlot.objects.create(period=period, start=time(8, 0), end=time(8, 0))


def test_a_slot_may_cross_midnight():
    night = TouSlotFactory.build(period=TouPeriodFactory(), start=time(22, 0), end=time(6, 0))
    night.full_clean()
    assert night.crosses_midnight
    assert not TouSlotFactory.build(start=time(7, 0), end=time(10, 0)).crosses_midnight


@pytest.mark.parametrize(
    ("days", "message"),
    [
        ([], "Choose at least one day."),
        (["mon", "funday"], "Unknown days: funday (use mon, tue, wed, thu, fri, sat, sun)."),
        (["Mon"], "Unknown days: Mon (use mon, tue, wed, thu, fri, sat, sun)."),
        (["mon", "tue", "mon"], "A day is listed twice."),
        ("mon", "Choose at least one day."),
    ],
)
def test_period_days_are_checked(days, message):
    assert message in errors_of(TouPeriodFactory.build(days=days))["days"]


def test_every_day_of_the_week_is_accepted():
    TouPeriodFactory.build(days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"]).full_clean()


@pytest.mark.parametrize(("percent", "valid"), [(0, True), (100, True), (101, False)])
def test_period_percent_is_0_to_100(percent, valid):
    period = TouPeriodFactory.build(max_percent=percent)
    if valid:
        period.full_clean()
    else:
        assert "max_percent" in errors_of(period)


def test_the_database_refuses_a_period_above_100_percent():
    with pytest.raises(IntegrityError), transaction.atomic():
        TouPeriodFactory(max_percent=101)


def test_deleting_a_period_deletes_its_slots():
    slot = TouSlotFactory()
    slot.period.delete()
    assert not TouSlot.objects.exists()


# --- external inputs --------------------------------------------------------------------


@pytest.mark.parametrize(("number", "valid"), [(0, False), (1, True), (3, True), (4, False)])
def test_input_number_is_1_to_3(number, valid):
    entry = ExternalInputFactory.build(number=number)
    if valid:
        entry.full_clean()
    else:
        assert "number" in errors_of(entry)


@pytest.mark.parametrize("number", [0, 4])
def test_the_database_refuses_an_input_number_out_of_range(number):
    with pytest.raises(IntegrityError), transaction.atomic():
        ExternalInputFactory(number=number)


def test_input_numbers_are_unique():
    ExternalInputFactory(number=2)
    assert "number" in errors_of(ExternalInputFactory.build(number=2))
    with pytest.raises(IntegrityError), transaction.atomic():
        ExternalInputFactory(number=2)


@pytest.mark.parametrize(("percent", "valid"), [(0, True), (99, True), (100, False)])
def test_input_percent_is_0_to_99(percent, valid):
    entry = ExternalInputFactory.build(number=1, percent=percent)
    if valid:
        entry.full_clean()
    else:
        assert "percent" in errors_of(entry)


def test_the_database_refuses_an_input_at_100_percent():
    with pytest.raises(IntegrityError), transaction.atomic():
        ExternalInputFactory(number=1, percent=100)


@pytest.mark.parametrize("kind", [InputKind.DISCRETE_INPUT, InputKind.COIL])
@pytest.mark.parametrize(
    ("with_device", "address", "field"),
    [(False, 10, "device"), (True, None, "address"), (False, None, "device")],
)
def test_a_modbus_input_needs_a_device_and_an_address(kind, with_device, address, field):
    device = MeterFactory() if with_device else None
    entry = ExternalInputFactory.build(number=1, kind=kind, device=device, address=address)
    assert errors_of(entry) == {field: ["A Modbus input needs a device and a bit address."]}
    with pytest.raises(IntegrityError), transaction.atomic():
        entry.save()


def test_a_modbus_input_with_device_and_address_is_accepted():
    entry = ExternalInputFactory.build(
        number=1, kind=InputKind.COIL, device=MeterFactory(), address=0
    )
    entry.full_clean()
    entry.save()


def test_an_api_input_needs_no_device():
    entry = ExternalInputFactory.build(number=1, kind=InputKind.API)
    entry.full_clean()
    entry.save()
    assert ExternalInput.objects.get().device is None


# --- EBMS reductions --------------------------------------------------------------------


def test_a_reduction_in_percent_or_in_amps_is_accepted():
    EbmsReductionFactory.build(zone=ZoneFactory(), percent=Decimal("70")).full_clean()
    EbmsReductionFactory.build(
        zone=ZoneFactory(), percent=None, current_a=Decimal("40")
    ).full_clean()


@pytest.mark.parametrize(("percent", "current_a"), [(Decimal("70"), Decimal("40")), (None, None)])
def test_a_reduction_needs_exactly_one_of_percent_and_current(percent, current_a):
    reduction = EbmsReductionFactory.build(zone=ZoneFactory(), percent=percent, current_a=current_a)
    assert errors_of(reduction) == {"percent": ["Give either a percentage or a current, not both."]}
    with pytest.raises(IntegrityError), transaction.atomic():
        reduction.save()


def test_a_reduction_must_end_after_it_starts():
    now = timezone.now()
    reduction = EbmsReductionFactory.build(zone=ZoneFactory(), created_at=now, valid_until=now)
    assert errors_of(reduction) == {"valid_until": ["The validity must end after it starts."]}
    with pytest.raises(IntegrityError), transaction.atomic():
        reduction.save()


def test_a_reduction_is_active_only_within_its_validity():
    start = timezone.now()
    reduction = EbmsReductionFactory(created_at=start, valid_until=start + timedelta(hours=1))
    assert not reduction.is_active(start - timedelta(seconds=1))
    assert reduction.is_active(start)
    assert reduction.is_active(start + timedelta(minutes=59))
    assert not reduction.is_active(start + timedelta(hours=1))


def test_a_cleared_reduction_is_no_longer_active():
    start = timezone.now()
    reduction = EbmsReductionFactory(created_at=start, valid_until=start + timedelta(hours=1))
    reduction.cleared_at = start + timedelta(minutes=5)
    assert not reduction.is_active(start + timedelta(minutes=10))


def test_reductions_go_with_their_zone():
    reduction = EbmsReductionFactory()
    reduction.zone.delete()
    assert not EbmsReduction.objects.exists()
