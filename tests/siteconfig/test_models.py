from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.energy import allocator
from apps.meters.models import Meter, MeterModel
from apps.siteconfig.models import ProductionMode, SiteSettings
from apps.stations.models import Station
from apps.zones.models import Zone

pytestmark = pytest.mark.django_db


def test_load_creates_the_single_row_with_defaults():
    SiteSettings.objects.all().delete()
    site = SiteSettings.load()
    assert site.pk == 1
    assert SiteSettings.objects.count() == 1
    assert site.meter_poll_interval_ms == 500
    assert (site.max_zones, site.max_zone_levels) == (20, 4)
    assert (site.login_max_attempts, site.login_lock_s, site.session_timeout_s) == (5, 60, 6000)


def test_load_returns_the_stored_row():
    site = SiteSettings.load()
    site.name = "Car park A"
    site.save()
    assert SiteSettings.load().name == "Car park A"
    assert SiteSettings.objects.count() == 1


def test_saving_another_instance_overwrites_the_single_row():
    SiteSettings.load()
    SiteSettings(name="second").save()
    assert SiteSettings.objects.count() == 1
    assert SiteSettings.load().name == "second"


def test_the_database_refuses_a_second_row():
    SiteSettings.load()
    with pytest.raises(IntegrityError), transaction.atomic():
        SiteSettings.objects.bulk_create([SiteSettings(pk=2)])
    assert list(SiteSettings.objects.values_list("pk", flat=True)) == [1]


@pytest.mark.parametrize("interval_ms", [250, 500, 10000])
def test_poll_interval_within_range_is_accepted(interval_ms):
    site = SiteSettings.load()
    site.meter_poll_interval_ms = interval_ms
    site.full_clean()
    site.save()


@pytest.mark.parametrize("interval_ms", [0, 249, 10001])
def test_poll_interval_out_of_range_is_refused(interval_ms):
    site = SiteSettings.load()
    site.meter_poll_interval_ms = interval_ms
    with pytest.raises(ValidationError) as excinfo:
        site.full_clean()
    assert "meter_poll_interval_ms" in excinfo.value.message_dict


@pytest.mark.parametrize("interval_ms", [249, 10001])
def test_the_database_refuses_a_poll_interval_out_of_range(interval_ms):
    SiteSettings.load()
    with pytest.raises(IntegrityError), transaction.atomic():
        SiteSettings.objects.filter(pk=1).update(meter_poll_interval_ms=interval_ms)
    assert SiteSettings.load().meter_poll_interval_ms == 500


def test_reduction_gap_above_trigger_is_refused():
    site = SiteSettings.load()
    site.reduction_trigger_a = Decimal("3")
    site.reduction_gap_a = Decimal("3.5")
    with pytest.raises(ValidationError) as excinfo:
        site.full_clean()
    assert excinfo.value.message_dict["reduction_gap_a"] == [
        "The reduction gap cannot exceed the reduction trigger."
    ]


def test_reduction_gap_equal_to_trigger_is_accepted():
    site = SiteSettings.load()
    site.reduction_trigger_a = Decimal("3")
    site.reduction_gap_a = Decimal("3")
    site.full_clean()


def test_local_production_only_is_refused_while_a_zone_with_stations_has_no_production_meter():
    solar = Meter.objects.create(name="pv", model=MeterModel.objects.get(name="pm5320"), host="x")
    roof = Zone.objects.create(name="Roof", max_current_a=100, production_meter=solar)
    covered = Zone.objects.create(name="Covered", max_current_a=63, parent=roof)
    basement = Zone.objects.create(name="Basement", max_current_a=63)
    Station.objects.create(identity="CP1", name="Covered 1", zone=covered)
    Station.objects.create(identity="CP2", name="Basement 1", zone=basement)
    site = SiteSettings.load()
    site.production_mode = ProductionMode.LOCAL
    with pytest.raises(ValidationError) as excinfo:
        site.full_clean()
    assert excinfo.value.message_dict["production_mode"] == [
        "Local production only needs a production meter on every zone holding stations "
        "or on a zone above it; missing for Basement."
    ]

    basement.production_meter = Meter.objects.create(
        name="pv2", model=MeterModel.objects.get(name="pm5320"), host="y"
    )
    basement.save()
    site.full_clean()


@pytest.mark.parametrize(
    ("field", "vocabulary"),
    [
        ("floor_mode", allocator.FloorMode),
        ("priority", allocator.Priority),
        ("production_mode", allocator.ProductionMode),
    ],
)
def test_energy_choices_are_the_allocators_vocabulary(field, vocabulary):
    """Every stored value converts to the allocator's enum, and every enum value can be picked."""
    values = [value for value, _ in SiteSettings._meta.get_field(field).choices]
    assert values == [member.value for member in vocabulary]
    assert vocabulary(SiteSettings._meta.get_field(field).default) in vocabulary
