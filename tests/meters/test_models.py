import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from apps.meters.modbus.builtin import BUILTIN_MODELS
from apps.meters.models import ConnectionType, Meter, MeterModel
from apps.meters.services import builtin_models_sync
from tests.meters.factories import MeterFactory, MeterModelFactory, RtuMeterFactory, register_map
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db


def errors_of(obj) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as excinfo:
        obj.full_clean()
    return excinfo.value.message_dict


# --- meter models -----------------------------------------------------------------------


def test_a_valid_custom_model_is_accepted():
    model = MeterModelFactory.build(name="acme-3000", register_map=register_map())
    model.full_clean()
    model.save()
    assert model.as_register_map().current_l2_a.address == 2


def test_a_register_map_problem_is_reported_with_its_path():
    broken = register_map()
    broken["current_l1_a"]["format"] = "float"
    errors = errors_of(MeterModelFactory.build(register_map=broken))
    assert errors == {
        "register_map": [
            "registers.current_l1_a.format: unknown format 'float' (expected one of "
            "float32, int64, int32, int16, uint64, uint32, uint16)"
        ]
    }


def test_every_register_map_problem_is_reported():
    broken = {
        "current_l1_a": {"address": -1, "format": "float32"},
        "current_l2_a": {"address": 2, "format": "float32", "word_order": "middle"},
        "power_total_kw": {"address": 4, "format": "float32", "scale": 0},
        "voltage_l1_v": {"address": 50, "format": "float32"},
    }
    messages = errors_of(MeterModelFactory.build(register_map=broken))["register_map"]
    assert len(messages) == 4
    assert any(m.startswith("registers.current_l1_a.address: -1 is outside") for m in messages)
    assert any(
        m.startswith("registers.current_l2_a.word_order: unknown word order") for m in messages
    )
    assert any(m.startswith("registers.power_total_kw.scale: must be finite") for m in messages)
    assert any(m.startswith("registers.voltage_l1_v: unknown field") for m in messages)


def test_a_model_without_any_current_is_refused():
    only_energy = {"energy_delivered_kwh": {"address": 0, "format": "int64"}}
    messages = errors_of(MeterModelFactory.build(register_map=only_energy))["register_map"]
    assert messages == [
        "registers: at least one current (current_l1_a, current_l2_a, current_l3_a) is required"
    ]


def test_overlapping_registers_are_refused():
    overlapping = register_map()
    overlapping["current_l2_a"]["address"] = 1  # float32 at 0 uses 0-1
    messages = errors_of(MeterModelFactory.build(register_map=overlapping))["register_map"]
    assert messages == ["registers.current_l2_a.address: registers 1-2 overlap current_l1_a (0-1)"]


def test_a_register_map_that_is_not_an_object_is_refused():
    messages = errors_of(MeterModelFactory.build(register_map=["current_l1_a"]))["register_map"]
    assert messages == ["registers: must be an object"]


@pytest.mark.parametrize("name", ["pm5320", "nsx_legacy", "nsx", "mtz"])
def test_builtin_models_exist_after_migrations(name):
    model = MeterModel.objects.get(name=name)
    assert model.builtin
    assert model.register_map == BUILTIN_MODELS[name].to_dict()["registers"]
    model.full_clean()


def test_builtin_models_are_in_sync_after_migrations():
    assert builtin_models_sync() == 0


def test_an_altered_builtin_model_is_restored_by_the_sync():
    MeterModel.objects.filter(name="nsx_legacy").update(description="edited")
    model = MeterModel.objects.get(name="pm5320")
    model.register_map["current_l1_a"]["address"] = 3000
    model.save()
    MeterModel.objects.filter(name="nsx").update(builtin=False)

    assert builtin_models_sync() == 3

    model.refresh_from_db()
    assert model.register_map["current_l1_a"]["address"] == 2999
    assert model.register_map == BUILTIN_MODELS["pm5320"].to_dict()["registers"]
    assert MeterModel.objects.get(name="nsx_legacy").description == (
        BUILTIN_MODELS["nsx_legacy"].description
    )
    assert MeterModel.objects.get(name="nsx").builtin


def test_a_deleted_builtin_model_comes_back_with_the_next_migrate():
    MeterModel.objects.filter(name="mtz").delete()
    call_command("migrate", verbosity=0)
    assert MeterModel.objects.get(name="mtz").builtin


def test_a_model_used_by_a_meter_cannot_be_deleted():
    meter = MeterFactory()
    with pytest.raises(ProtectedError):
        meter.model.delete()


# --- meters -----------------------------------------------------------------------------


def test_a_tcp_meter_on_a_builtin_model_is_accepted():
    meter = MeterFactory.build(model=MeterModel.objects.get(name="pm5320"), unit_id=1)
    meter.full_clean()
    meter.save()
    assert meter.address_display == "127.0.0.1:502 #1"


def test_defaults_follow_the_modbus_conventions():
    meter = Meter(name="m", model=MeterModelFactory(), host="10.0.0.5")
    assert (meter.port, meter.unit_id) == (502, 255)
    assert (meter.baudrate, meter.bytesize, meter.parity, meter.stopbits) == (19200, 8, "N", 1)


@pytest.mark.parametrize(("unit_id", "valid"), [(0, False), (1, True), (255, True), (256, False)])
def test_unit_id_is_1_to_255(unit_id, valid):
    meter = MeterFactory.build(model=MeterModelFactory(), unit_id=unit_id)
    if valid:
        meter.full_clean()
    else:
        assert list(errors_of(meter)) == ["unit_id"]


@pytest.mark.parametrize("unit_id", [0, 256])
def test_the_database_refuses_a_unit_id_out_of_range(unit_id):
    with pytest.raises(IntegrityError), transaction.atomic():
        MeterFactory(unit_id=unit_id)


def test_a_tcp_meter_needs_a_host():
    meter = MeterFactory.build(model=MeterModelFactory(), host="")
    assert errors_of(meter) == {"host": ["A Modbus TCP meter needs a host."]}
    with pytest.raises(IntegrityError), transaction.atomic():
        meter.save()


def test_an_rtu_meter_needs_a_serial_device():
    meter = RtuMeterFactory.build(model=MeterModelFactory(), serial_device="")
    assert errors_of(meter) == {"serial_device": ["A Modbus RTU meter needs a serial device."]}
    with pytest.raises(IntegrityError), transaction.atomic():
        meter.save()


def test_an_rtu_meter_needs_no_host():
    meter = RtuMeterFactory.build(model=MeterModelFactory(), unit_id=7)
    meter.full_clean()
    meter.save()
    assert meter.connection_type == ConnectionType.RTU
    assert meter.address_display == "/dev/ttyUSB0 19200 8N1 #7"


@pytest.mark.parametrize("name", ["", "-main", "main/1", "main\n", "x" * 65])
def test_meter_names_are_checked(name):
    assert "name" in errors_of(MeterFactory.build(model=MeterModelFactory(), name=name))


def test_meter_names_are_unique():
    MeterFactory(name="main")
    assert "name" in errors_of(MeterFactory.build(model=MeterModelFactory(), name="main"))


@pytest.mark.parametrize("field", ["meter", "production_meter"])
def test_a_meter_serving_a_zone_cannot_become_a_reporting_meter(field):
    meter = MeterFactory()
    ZoneFactory(**{field: meter})
    meter.is_reporting = True
    assert errors_of(meter) == {
        "is_reporting": ["This meter serves a zone; it cannot be a reporting meter."]
    }
    assert meter.serves_a_zone()


def test_a_free_meter_can_be_a_reporting_meter():
    meter = MeterFactory()
    meter.is_reporting = True
    meter.full_clean()
    assert not meter.serves_a_zone()
