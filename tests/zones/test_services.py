"""External inputs read over Modbus, and building-management reductions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.devicelog.models import DeviceLogEntry
from apps.energy.services import DIRTY
from apps.meters.models import Meter, MeterModel
from apps.simulator.modbus_meter import MeterSimulator
from apps.siteconfig.models import SiteSettings
from apps.zones.models import EbmsReduction, ExternalInput, InputKind, Zone
from apps.zones.selectors import active_reductions
from apps.zones.services import (
    external_input_apply,
    external_inputs_poll,
    zone_reduction_clear,
    zone_reduction_set,
)


@pytest.fixture
def io_device():
    sim = MeterSimulator(host="127.0.0.1", port=0)
    sim.add_unit(1, coil_count=8, discrete_input_count=8)
    sim.start_in_thread()
    yield sim
    sim.stop_thread()


@pytest.mark.django_db(transaction=True)
def test_modbus_inputs_follow_the_bits_and_log_changes(io_device, hot_state):
    device = Meter.objects.create(
        name="io",
        model=MeterModel.objects.get(name="pm5320"),
        host="127.0.0.1",
        port=io_device.port,
        unit_id=1,
        is_reporting=True,
    )
    di = ExternalInput.objects.create(
        number=1,
        name="Load shedding relay",
        percent=50,
        kind=InputKind.DISCRETE_INPUT,
        device=device,
        address=3,
    )
    coil = ExternalInput.objects.create(
        number=2,
        name="Inverted coil",
        percent=0,
        kind=InputKind.COIL,
        device=device,
        address=5,
        active_when_off=True,
    )
    io_device.set_bit(1, "discrete_input", 3, False)
    io_device.set_bit(1, "coil", 5, True)
    assert external_inputs_poll() == {1: False, 2: False}
    assert not DeviceLogEntry.objects.filter(event__startswith="input_").exists()

    hot_state.delete(DIRTY)
    io_device.set_bit(1, "discrete_input", 3, True)
    io_device.set_bit(1, "coil", 5, False)
    assert external_inputs_poll() == {1: True, 2: True}
    di.refresh_from_db()
    coil.refresh_from_db()
    assert di.active and coil.active
    assert DeviceLogEntry.objects.filter(event="input_active").count() == 2
    assert "input" in hot_state.smembers(DIRTY)

    # A second poll with the same bits logs nothing new.
    external_inputs_poll()
    assert DeviceLogEntry.objects.filter(event="input_active").count() == 2


@pytest.fixture
def io_meter(io_device):
    return Meter.objects.create(
        name="io",
        model=MeterModel.objects.get(name="pm5320"),
        host="127.0.0.1",
        port=io_device.port,
        unit_id=1,
        timeout_ms=200,
        is_reporting=True,
    )


@pytest.mark.django_db(transaction=True)
def test_an_unreadable_input_keeps_its_last_state_until_the_meter_lost_count(io_meter, hot_state):
    entry = ExternalInput.objects.create(
        number=1, name="Relay", percent=50, device=io_meter, address=300, active=True
    )
    result = external_inputs_poll()
    assert "illegal data address" in result[1]
    entry.refresh_from_db()
    assert entry.active


@pytest.mark.django_db(transaction=True)
def test_an_unreadable_stop_input_counts_as_active_after_n_failed_reads(
    io_device, io_meter, hot_state
):
    """A stop relay whose device is down may have opened: fail closed, then recover."""
    entry = ExternalInput.objects.create(
        number=1, name="Stop", percent=0, device=io_meter, address=3
    )
    io_device.set_bit(1, "discrete_input", 3, False)
    assert external_inputs_poll() == {1: False}

    io_device.set_online(1, False)
    for _ in range(2):  # the site default: lost after 3 failed polls
        assert isinstance(external_inputs_poll()[1], str)
        entry.refresh_from_db()
        assert not entry.active
    hot_state.delete(DIRTY)
    external_inputs_poll()
    entry.refresh_from_db()
    assert entry.active
    assert "input" in hot_state.smembers(DIRTY)
    unreadable = DeviceLogEntry.objects.get(event="input_unreadable")
    assert unreadable.level == "error" and "3 failed reads" in unreadable.message
    assert DeviceLogEntry.objects.filter(event="input_active").count() == 1
    # The active input caps every zone at its percentage meanwhile.
    zone = Zone.objects.create(name="Main", max_current_a=63)
    reductions = active_reductions()[zone.pk]
    assert [(r.source, r.percent) for r in reductions] == [("input", 0.0)]

    # Further failures log nothing new.
    external_inputs_poll()
    assert DeviceLogEntry.objects.filter(event__startswith="input_").count() == 2

    # The first good read restores the state read.
    io_device.set_online(1, True)
    assert external_inputs_poll() == {1: False}
    entry.refresh_from_db()
    assert not entry.active
    assert DeviceLogEntry.objects.filter(event="input_readable").count() == 1
    assert DeviceLogEntry.objects.filter(event="input_inactive").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_unreadable_count_follows_the_site_setting_and_resets_on_a_good_read(
    io_device, io_meter, hot_state
):
    settings_row = SiteSettings.load()
    settings_row.meter_lost_after_polls = 2
    settings_row.save()
    entry = ExternalInput.objects.create(
        number=1, name="Stop", percent=0, device=io_meter, address=3
    )
    io_device.set_online(1, False)
    external_inputs_poll()
    io_device.set_online(1, True)
    assert external_inputs_poll() == {1: False}  # the count starts again
    io_device.set_online(1, False)
    external_inputs_poll()
    entry.refresh_from_db()
    assert not entry.active
    external_inputs_poll()
    entry.refresh_from_db()
    assert entry.active


@pytest.mark.django_db(transaction=True)
def test_api_input_set_and_cleared(hot_state):
    entry = ExternalInput.objects.create(number=3, name="BMS", percent=20, kind=InputKind.API)
    assert external_input_apply(entry, True, source="API")
    assert not external_input_apply(entry, True, source="API")  # no change, nothing logged
    assert external_input_apply(entry, False, source="API")
    assert list(DeviceLogEntry.objects.order_by("id").values_list("event", flat=True)) == [
        "input_active",
        "input_inactive",
    ]


@pytest.mark.django_db
def test_ebms_reduction_replaces_the_previous_and_can_be_cleared():
    zone = Zone.objects.create(name="Main", max_current_a=100)
    until = timezone.now() + timedelta(hours=1)
    first = zone_reduction_set(zone=zone, valid_until=until, percent=Decimal("70"))
    second = zone_reduction_set(zone=zone, valid_until=until, current_a=Decimal("40"))
    first.refresh_from_db()
    assert first.cleared_at is not None and second.cleared_at is None
    assert zone_reduction_clear(zone=zone) == 1
    assert not EbmsReduction.objects.filter(cleared_at=None).exists()
    assert DeviceLogEntry.objects.filter(event="reduction_set").count() == 2


@pytest.mark.django_db
def test_ebms_reduction_refuses_bad_values_and_changes_nothing():
    zone = Zone.objects.create(name="Main", max_current_a=100)
    with pytest.raises(ValidationError):
        zone_reduction_set(
            zone=zone,
            valid_until=timezone.now() + timedelta(hours=1),
            percent=Decimal("50"),
            current_a=Decimal("10"),
        )
    with pytest.raises(ValidationError):
        zone_reduction_set(
            zone=zone, valid_until=timezone.now() - timedelta(hours=1), percent=Decimal("50")
        )
    assert not EbmsReduction.objects.exists()
    assert not DeviceLogEntry.objects.exists()


@pytest.mark.django_db
def test_ebms_reduction_validity_modes():
    """A duration ends by itself; "none" lasts until cleared; the selector sees both."""
    zone = Zone.objects.create(name="Main", max_current_a=100)
    timed = zone_reduction_set(zone=zone, duration_s=600, percent=Decimal("70"))
    assert timed.validity_mode == "duration" and timed.valid_until is not None
    later = timed.created_at + timedelta(seconds=601)
    assert zone.pk not in active_reductions(later)

    endless = zone_reduction_set(zone=zone, percent=Decimal("40"))
    assert endless.validity_mode == "none" and endless.valid_until is None
    assert active_reductions(later + timedelta(days=400))[zone.pk][0].percent == 40.0
    assert zone_reduction_clear(zone=zone) == 1
    assert zone.pk not in active_reductions()


@pytest.mark.django_db
def test_ebms_reduction_current_stays_within_the_zone_maximum():
    zone = Zone.objects.create(name="Main", max_current_a=63)
    with pytest.raises(ValidationError) as error:
        zone_reduction_set(zone=zone, current_a=Decimal("64"))
    assert "current_a" in error.value.message_dict
    with pytest.raises(ValidationError):
        zone_reduction_set(zone=zone, validity_mode="duration", percent=Decimal("50"))
    assert not EbmsReduction.objects.exists()
