"""The meter models evce ships with, as register maps.

Vendors print 1-based register numbers; the maps hold 0-based addresses
(``number - 1``), so the comments quote the printed numbers.  Every map is
holding registers with the most significant word first, as on all Schneider
Electric devices.
"""

from __future__ import annotations

from apps.meters.modbus.registers import RegisterFormat, RegisterMap, RegisterSpec

FLOAT32 = RegisterFormat.FLOAT32
INT16 = RegisterFormat.INT16
INT32 = RegisterFormat.INT32
INT64 = RegisterFormat.INT64
UINT16 = RegisterFormat.UINT16
UINT64 = RegisterFormat.UINT64

WH_TO_KWH = 0.001
W_TO_KW = 0.001


def _number(
    printed_register: int, register_format: RegisterFormat, scale: float = 1.0
) -> RegisterSpec:
    """A holding-register spec from the 1-based register number printed by the vendor."""
    return RegisterSpec(address=printed_register - 1, format=register_format, scale=scale)


# PowerLogic PM5300 series register list, iEM3000 series user manual
# (iEM3150/3155/3250/3255/3350/3355 share the block): currents in A and
# powers in kW as float32, "Active energy delivered (into load)" as int64 in Wh.
# PowerTag energy sensors behind their gateway use the same numbers; some
# PowerTag documents give the powers in W, so check one reading against the
# device and use a custom model with scale 0.001 if it is 1000 times too high.
PM5320 = RegisterMap(
    name="pm5320",
    description="Schneider Electric PowerLogic PM5320 / Acti9 iEM3x5x / PowerTag (registers 3000+)",
    current_l1_a=_number(3000, FLOAT32),
    current_l2_a=_number(3002, FLOAT32),
    current_l3_a=_number(3004, FLOAT32),
    power_l1_kw=_number(3054, FLOAT32),
    power_l2_kw=_number(3056, FLOAT32),
    power_l3_kw=_number(3058, FLOAT32),
    power_total_kw=_number(3060, FLOAT32),
    energy_delivered_kwh=_number(3204, INT64, WH_TO_KWH),
)

# Compact NSX Micrologic 5/6 E trip units, legacy register table of the
# "Compact NSX Modbus communication guide" (LV434107): currents as unsigned
# 16-bit in A; powers as signed 16-bit in kW with the guide's scale factor
# 10 (the register holds kW x 10, hence 0.1 kW per count); energy as a signed
# 32-bit counter in kWh.
NSX_LEGACY = RegisterMap(
    name="nsx_legacy",
    description="Schneider Electric Compact NSX Micrologic E, legacy table (registers 12000+)",
    current_l1_a=_number(12016, UINT16),
    current_l2_a=_number(12017, UINT16),
    current_l3_a=_number(12018, UINT16),
    power_l1_kw=_number(12038, INT16, 0.1),
    power_l2_kw=_number(12039, INT16, 0.1),
    power_l3_kw=_number(12040, INT16, 0.1),
    power_total_kw=_number(12041, INT16, 0.1),
    energy_delivered_kwh=_number(12050, INT32),
)


def _imu_standard_dataset(name: str, description: str) -> RegisterMap:
    """The trip-unit "standard dataset" (registers 32000+) shared by Compact NSX and MasterPact MTZ.

    Source: DOCA0091 (Compact NSX Modbus guide), DOCA0105 (MasterPact MTZ
    Modbus guide) and the IMU standard dataset DOCA0213: currents float32 in
    A, powers float32 in W, energy counters unsigned 64-bit in Wh.  Phase 1 active
    power is register 32072 (32072/32074/32076 for P1/P2/P3, 32078 total):
    at 32077 it would overlap P3's two registers.  Energy delivered is the
    directional counter at 32104; 32096 holds the total active energy Ep,
    which follows the trip unit's accumulation mode (absolute or signed)
    and so only equals delivered energy when no power is ever exported.
    Per-phase powers need a 4-pole device or a declared ENVT on 3-pole ones.
    """
    return RegisterMap(
        name=name,
        description=description,
        current_l1_a=_number(32028, FLOAT32),
        current_l2_a=_number(32030, FLOAT32),
        current_l3_a=_number(32032, FLOAT32),
        power_l1_kw=_number(32072, FLOAT32, W_TO_KW),
        power_l2_kw=_number(32074, FLOAT32, W_TO_KW),
        power_l3_kw=_number(32076, FLOAT32, W_TO_KW),
        power_total_kw=_number(32078, FLOAT32, W_TO_KW),
        energy_delivered_kwh=_number(32104, UINT64, WH_TO_KWH),
    )


NSX = _imu_standard_dataset(
    "nsx", "Schneider Electric Compact NSX MicroLogic (standard dataset, registers 32000+)"
)
MTZ = _imu_standard_dataset(
    "mtz", "Schneider Electric MasterPact MTZ MicroLogic X (standard dataset, registers 32000+)"
)

BUILTIN_MODELS: dict[str, RegisterMap] = {
    model.name: model for model in (PM5320, NSX_LEGACY, NSX, MTZ)
}


def builtin_model(name: str) -> RegisterMap:
    """The built-in register map called ``name``; ``KeyError`` if there is none."""
    return BUILTIN_MODELS[name]
