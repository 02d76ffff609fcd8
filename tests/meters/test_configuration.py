"""Meters and meter models: their rules, through the services and the admin."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from apps.devicelog.models import DeviceLogEntry
from apps.meters import services
from apps.meters.models import Meter, MeterModel
from tests.meters.factories import MeterFactory, MeterModelFactory, register_map
from tests.zones.factories import ExternalInputFactory, ZoneFactory

pytestmark = pytest.mark.django_db


def test_a_meter_is_created_and_changed_with_its_log():
    model = MeterModelFactory()
    meter, created = services.meter_save(None, name="main", model=model, host="10.0.0.5")
    assert created
    services.meter_save(meter, timeout_ms=500)
    services.meter_save(meter, timeout_ms=500)  # no change: no entry
    assert list(DeviceLogEntry.objects.order_by("id").values_list("event", flat=True)) == [
        "meter_created",
        "meter_updated",
    ]


def test_a_bad_meter_changes_nothing():
    meter = MeterFactory(host="10.0.0.5")
    with pytest.raises(ValidationError):
        services.meter_save(meter, host="")
    assert Meter.objects.get().host == "10.0.0.5"
    assert not DeviceLogEntry.objects.exists()


def test_a_meter_read_by_a_zone_or_an_input_cannot_be_deleted():
    zone_meter = MeterFactory()
    ZoneFactory(meter=zone_meter)
    input_device = MeterFactory()
    ExternalInputFactory(kind="discrete_input", device=input_device, address=0)
    for meter in (zone_meter, input_device):
        with pytest.raises(ValidationError, match="detach it first"):
            services.meter_delete(meter)
    assert Meter.objects.count() == 2


def test_a_free_meter_is_deleted_with_its_log():
    meter = MeterFactory(name="spare")
    services.meter_delete(meter)
    assert not Meter.objects.exists()
    assert DeviceLogEntry.objects.get().event == "meter_deleted"


def test_a_meter_model_in_use_or_built_in_cannot_be_deleted():
    meter = MeterFactory()
    with pytest.raises(ValidationError, match="used by meters"):
        services.meter_model_delete(meter.model)
    builtin = MeterModel.objects.filter(builtin=True).first() or MeterModelFactory(builtin=True)
    with pytest.raises(ValidationError, match="built-in"):
        services.meter_model_delete(builtin)
    with pytest.raises(ValidationError, match="built-in"):
        services.meter_model_save(
            builtin, name=builtin.name, description="x", register_map=builtin.register_map
        )


def test_meter_edited_in_the_admin_is_logged(admin_client):
    meter = MeterFactory(host="10.0.0.5")
    data = {
        "name": meter.name,
        "model": meter.model_id,
        "timeout_ms": 800,
        "connection_type": "tcp",
        "host": "10.0.0.6",
        "port": 502,
        "unit_id": meter.unit_id,
        "baudrate": meter.baudrate,
        "bytesize": meter.bytesize,
        "parity": meter.parity,
        "stopbits": meter.stopbits,
        "enabled": "on",
    }
    response = admin_client.post(reverse("admin:meters_meter_change", args=[meter.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Meter.objects.get().host == "10.0.0.6"
    entry = DeviceLogEntry.objects.get()
    assert (entry.event, entry.username) == ("meter_updated", "admin")


def test_meter_model_added_in_the_admin_is_logged(admin_client):
    import json

    data = {"name": "acme", "description": "", "register_map": json.dumps(register_map())}
    response = admin_client.post(reverse("admin:meters_metermodel_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert MeterModel.objects.filter(name="acme").exists()
    assert DeviceLogEntry.objects.get().event == "meter_model_saved"
