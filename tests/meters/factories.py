import factory
from factory.django import DjangoModelFactory

from apps.meters.models import ConnectionType, Meter, MeterModel


def register_map(base: int = 0) -> dict:
    """A valid three-phase register map whose currents start at ``base``."""
    return {
        "current_l1_a": {"address": base, "format": "float32"},
        "current_l2_a": {"address": base + 2, "format": "float32"},
        "current_l3_a": {"address": base + 4, "format": "float32"},
        "energy_delivered_kwh": {"address": base + 10, "format": "int64", "scale": 0.001},
    }


class MeterModelFactory(DjangoModelFactory):
    class Meta:
        model = MeterModel

    name = factory.Sequence(lambda n: f"custom-model-{n}")
    description = "Custom test model"
    register_map = factory.LazyFunction(register_map)


class MeterFactory(DjangoModelFactory):
    class Meta:
        model = Meter

    name = factory.Sequence(lambda n: f"meter-{n}")
    model = factory.SubFactory(MeterModelFactory)
    connection_type = ConnectionType.TCP
    host = "127.0.0.1"  # never polled in model tests; loopback all the same
    port = 502
    unit_id = factory.Sequence(lambda n: n % 255 + 1)


class RtuMeterFactory(MeterFactory):
    connection_type = ConnectionType.RTU
    host = ""
    serial_device = "/dev/ttyUSB0"


def modbus_meter(port: int, *, name: str = "main", unit_id: int = 1, **fields) -> Meter:
    """A PM5320 meter row reading the simulator listening on ``port``."""
    return Meter.objects.create(
        name=name,
        model=MeterModel.objects.get(name="pm5320"),
        host="127.0.0.1",
        port=port,
        unit_id=unit_id,
        timeout_ms=300,
        **fields,
    )
