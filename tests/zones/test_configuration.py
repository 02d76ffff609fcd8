"""Zones, time-of-use periods and inputs: their rules, through the services and the admin."""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from apps.devicelog.models import DeviceLogEntry
from apps.zones import services
from apps.zones.models import EbmsReduction, ExternalInput, TouPeriod, Zone
from tests.meters.factories import MeterFactory
from tests.stations.factories import StationFactory
from tests.zones.factories import EbmsReductionFactory, TouSlotFactory, ZoneFactory

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


class TestZoneServices:
    def test_create_and_update_are_validated_and_logged(self):
        parent = services.zone_create(name="Main", max_current_a=Decimal(63))
        with pytest.raises(ValidationError):
            services.zone_create(name="Big", parent=parent, max_current_a=Decimal(80))
        child = services.zone_create(name="Child", parent=parent, max_current_a=Decimal(32))
        services.zone_update(child, max_current_a=Decimal(40))
        assert Zone.objects.get(name="Child").max_current_a == Decimal(40)
        assert list(DeviceLogEntry.objects.order_by("id").values_list("event", flat=True)) == [
            "zone_created",
            "zone_created",
            "zone_updated",
        ]
        services.zone_update(child, max_current_a=Decimal(40))  # no change: no entry
        assert DeviceLogEntry.objects.count() == 3

    def test_a_zone_holding_stations_cannot_be_deleted(self):
        station = StationFactory()
        with pytest.raises(ValidationError, match="holds stations"):
            services.zone_delete(station.zone)
        assert Zone.objects.filter(pk=station.zone_id).exists()

    def test_a_zone_with_sub_zones_cannot_be_deleted(self):
        parent = ZoneFactory()
        ZoneFactory(parent=parent)
        with pytest.raises(ValidationError, match="sub-zones"):
            services.zone_delete(parent)

    def test_delete_is_logged(self):
        zone = ZoneFactory(name="Gone")
        services.zone_delete(zone)
        entry = DeviceLogEntry.objects.get()
        assert (entry.event, entry.zone_name) == ("zone_deleted", "Gone")


class TestZoneAdmin:
    def test_deleting_a_zone_with_stations_is_refused_and_keeps_it(self, admin_client):
        station = StationFactory()
        url = reverse("admin:zones_zone_delete", args=[station.zone_id])
        response = admin_client.post(url, {"post": "yes"}, follow=True)
        assert response.status_code == 200
        assert Zone.objects.filter(pk=station.zone_id).exists()
        assert not DeviceLogEntry.objects.exists()

    def test_deleting_a_zone_with_sub_zones_is_refused_and_keeps_it(self, admin_client):
        parent = ZoneFactory()
        ZoneFactory(parent=parent)
        url = reverse("admin:zones_zone_delete", args=[parent.pk])
        response = admin_client.post(url, {"post": "yes"}, follow=True)
        assert response.status_code == 200
        assert Zone.objects.count() == 2
        assert not DeviceLogEntry.objects.exists()

    def test_bulk_delete_keeps_every_zone_when_one_cannot_go(self, admin_client):
        parent, empty = ZoneFactory(), ZoneFactory()
        ZoneFactory(parent=parent)
        response = admin_client.post(
            reverse("admin:zones_zone_changelist"),
            {
                "action": "delete_selected",
                "_selected_action": [parent.pk, empty.pk],
                "post": "yes",
            },
            follow=True,
        )
        assert response.status_code == 200
        assert Zone.objects.count() == 3
        assert not DeviceLogEntry.objects.exists()

    def test_a_zone_added_in_the_admin_is_logged(self, admin_client):
        data = {
            "name": "Added",
            "max_current_a": "63",
            "degraded_current_a": "0",
            "children-TOTAL_FORMS": 0,
            "children-INITIAL_FORMS": 0,
            "children-MIN_NUM_FORMS": 0,
            "children-MAX_NUM_FORMS": 1000,
        }
        response = admin_client.post(reverse("admin:zones_zone_add"), data)
        assert response.status_code == 302, response.content.decode()[:2000]
        entry = DeviceLogEntry.objects.get()
        assert (entry.event, entry.username) == ("zone_created", "admin")

    def test_a_sub_zone_edited_inline_goes_through_the_zone_service(self, admin_client):
        parent = ZoneFactory(name="Main", max_current_a=Decimal(100))
        child = ZoneFactory(name="Child", parent=parent, max_current_a=Decimal(40))
        data = {
            "name": "Main",
            "max_current_a": "100",
            "degraded_current_a": "0",
            "children-TOTAL_FORMS": 1,
            "children-INITIAL_FORMS": 1,
            "children-MIN_NUM_FORMS": 0,
            "children-MAX_NUM_FORMS": 1000,
            "children-0-id": child.pk,
            "children-0-parent": parent.pk,
            "children-0-name": "Child",
            "children-0-max_current_a": "50",
            "children-0-degraded_current_a": "0",
        }
        response = admin_client.post(reverse("admin:zones_zone_change", args=[parent.pk]), data)
        assert response.status_code == 302, response.content.decode()[:3000]
        assert Zone.objects.get(pk=child.pk).max_current_a == Decimal(50)
        entry = DeviceLogEntry.objects.get()
        assert (entry.event, entry.zone_name) == ("zone_updated", "Child")


class TestTouAndInputs:
    def test_period_slots_and_zones_are_replaced_and_logged_once(self):
        zone = ZoneFactory()
        period, created = services.tou_period_save(
            None,
            name="Peak",
            days=["mon"],
            max_percent=50,
            slots=[(time(7), time(10))],
            zones=[zone],
        )
        assert created and [str(s) for s in period.slots.all()] == ["07:00-10:00"]
        services.tou_period_save(period, slots=[(time(17), time(20))])
        assert [str(s) for s in period.slots.all()] == ["17:00-20:00"]
        assert list(DeviceLogEntry.objects.order_by("id").values_list("event", flat=True)) == [
            "tou_period_created",
            "tou_period_updated",
        ]
        services.tou_period_save(period, slots=[(time(17), time(20))], zones=[zone])
        assert DeviceLogEntry.objects.count() == 2

    def test_a_bad_slot_changes_nothing(self):
        slot = TouSlotFactory()
        with pytest.raises(ValidationError):
            services.tou_period_save(slot.period, slots=[(time(7), time(7))])
        assert [str(s) for s in TouPeriod.objects.get().slots.all()] == ["07:00-10:00"]

    def test_input_configuration_is_logged_and_its_state_is_not_editable(self, admin_client):
        entry, created = services.external_input_save(
            None, number=1, name="Fire", percent=0, kind="api"
        )
        assert created and DeviceLogEntry.objects.get().event == "external_input_created"
        response = admin_client.get(reverse("admin:zones_externalinput_change", args=[entry.pk]))
        assert 'name="active"' not in response.content.decode()

    def test_inputs_deleted_in_the_admin_are_logged(self, admin_client):
        entry, _ = services.external_input_save(None, number=2, name="Shed", percent=0, kind="api")
        url = reverse("admin:zones_externalinput_delete", args=[entry.pk])
        admin_client.post(url, {"post": "yes"})
        assert not ExternalInput.objects.exists()
        assert DeviceLogEntry.objects.filter(event="external_input_deleted").exists()


class TestReductionAdmin:
    def test_a_reduction_added_in_the_admin_replaces_the_zones_previous_one(self, admin_client):
        previous = EbmsReductionFactory()
        valid_until = timezone.localtime() + timedelta(hours=2)
        data = {
            "zone": previous.zone_id,
            "percent": "30",
            "valid_until_0": valid_until.strftime("%Y-%m-%d"),
            "valid_until_1": valid_until.strftime("%H:%M:%S"),
            "description": "",
        }
        response = admin_client.post(reverse("admin:zones_ebmsreduction_add"), data)
        assert response.status_code == 302, response.content.decode()[:3000]
        previous.refresh_from_db()
        assert previous.cleared_at is not None
        assert EbmsReduction.objects.filter(cleared_at=None).get().percent == Decimal(30)
        assert DeviceLogEntry.objects.get().event == "reduction_set"

    def test_meters_moved_between_zones_keep_one_zone_each(self):
        meter = MeterFactory()
        first = ZoneFactory(meter=meter)
        second = ZoneFactory()
        with pytest.raises(ValidationError):
            services.zone_update(second, meter=meter)
        services.zone_update(first, meter=None)
        services.zone_update(second, meter=meter)
        assert Zone.objects.get(pk=second.pk).meter == meter
