"""Framework-free Modbus layer: register maps and meter reading.

Nothing in this package imports Django, so Celery tasks, management commands
and the meter simulator (``apps.simulator.modbus_meter``) use it directly;
the Django app converts its rows into these dataclasses.
"""

from apps.meters.modbus.builtin import BUILTIN_MODELS, MTZ, NSX, NSX_LEGACY, PM5320, builtin_model
from apps.meters.modbus.client import (
    DEFAULT_TIMEOUT_S,
    BlockingMeterSession,
    Connection,
    MeterConnectionError,
    MeterConnectionRefused,
    MeterDecodeError,
    MeterError,
    MeterModbusException,
    MeterReading,
    MeterSession,
    MeterTimeout,
    MeterWrongUnit,
    RtuConnection,
    TcpConnection,
    read_bit,
    read_bit_sync,
    read_meter,
    read_meter_sync,
)
from apps.meters.modbus.planning import ReadBlock, plan_reads
from apps.meters.modbus.registers import (
    CURRENT_FIELDS,
    REGISTER_FIELDS,
    RegisterFormat,
    RegisterMap,
    RegisterMapError,
    RegisterSpec,
    RegisterType,
    WordOrder,
    register_map_errors,
)

__all__ = [
    "BUILTIN_MODELS",
    "CURRENT_FIELDS",
    "DEFAULT_TIMEOUT_S",
    "MTZ",
    "NSX",
    "NSX_LEGACY",
    "PM5320",
    "REGISTER_FIELDS",
    "BlockingMeterSession",
    "Connection",
    "MeterConnectionError",
    "MeterConnectionRefused",
    "MeterDecodeError",
    "MeterError",
    "MeterModbusException",
    "MeterReading",
    "MeterSession",
    "MeterTimeout",
    "MeterWrongUnit",
    "ReadBlock",
    "RegisterFormat",
    "RegisterMap",
    "RegisterMapError",
    "RegisterSpec",
    "RegisterType",
    "RtuConnection",
    "TcpConnection",
    "WordOrder",
    "builtin_model",
    "plan_reads",
    "read_bit",
    "read_bit_sync",
    "read_meter",
    "read_meter_sync",
    "register_map_errors",
]
