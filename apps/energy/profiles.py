"""OCPP 1.6 charging profiles that carry evce's setpoints to the stations (SPEC §3.8).

- The **fallback** is a ``TxDefaultProfile`` at the lowest stack level holding
  the connector's offline current: what the station applies by itself when no
  live profile is valid, e.g. when evce is gone.
- The **live setpoint** is a ``TxProfile`` for the running transaction at a
  higher stack level with a bounded validity (``validTo``): evce renews it while
  it lives; if evce disappears it expires and the station falls back.
- When a station refuses ``TxProfile``, a single-connector station gets the
  setpoint as a ``ChargePointMaxProfile`` instead (same validity).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from django.conf import settings
from ocpp.v16.enums import (
    ChargingProfileKindType,
    ChargingProfilePurposeType,
    ChargingRateUnitType,
)

DEFAULT_STACK_LEVEL = 0
LIVE_STACK_LEVEL = 1
DEFAULT_PROFILE_ID_BASE = 1000  # + connector id
LIVE_PROFILE_ID_BASE = 2000  # + connector id
MAX_PROFILE_ID = 3000
LIMIT_TOLERANCE = 1e-6  # 16.0 computed as 15.999999 is still 16


def _iso(moment_s: float) -> str:
    return datetime.fromtimestamp(moment_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _schedule(limit: float, unit: ChargingRateUnitType, start_s: float | None = None) -> dict:
    """One period at ``limit``, rounded *down*: whole amps, whole watts.

    OCPP allows a tenth of an amp, but many stations round it up to the
    next amp (IEC 61851's PWM signal has no finer step in their firmware):
    10.3 A sent would let the EV draw 11 A, up to 0.9 A more per session than
    the budget counts. Sending whole amps (``PROFILE_STEP_A``, 1 A by default)
    leaves them nothing to round; sites whose stations all honour tenths may
    set 0.1 A.
    """
    step = (
        float(getattr(settings, "PROFILE_STEP_A", 1.0))
        if unit == ChargingRateUnitType.amps
        else 1.0
    )
    steps = math.floor(limit / step + LIMIT_TOLERANCE)
    schedule: dict = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": round(steps * step, 1)}],
    }
    if start_s is not None:
        schedule["startSchedule"] = _iso(start_s)
    return schedule


def _unit_and_limit(current_a: float, power_w: float | None) -> tuple[ChargingRateUnitType, float]:
    """DC connectors are driven in watts, AC connectors in amps."""
    if power_w is not None:
        return ChargingRateUnitType.watts, float(power_w)
    return ChargingRateUnitType.amps, current_a


def fallback_profile(connector_id: int, *, current_a: float, power_w: float | None) -> dict:
    """SetChargingProfile payload of the offline current (kept until replaced)."""
    unit, limit = _unit_and_limit(current_a, power_w)
    return {
        "connectorId": connector_id,
        "csChargingProfiles": {
            "chargingProfileId": DEFAULT_PROFILE_ID_BASE + connector_id,
            "stackLevel": DEFAULT_STACK_LEVEL,
            "chargingProfilePurpose": ChargingProfilePurposeType.tx_default_profile,
            "chargingProfileKind": ChargingProfileKindType.relative,
            "chargingSchedule": _schedule(limit, unit),
        },
    }


def live_profile(
    connector_id: int,
    *,
    transaction_id: int,
    current_a: float,
    power_w: float | None,
    now_s: float,
    valid_until_s: float,
) -> dict:
    """SetChargingProfile payload of a live setpoint, valid until ``valid_until_s``."""
    unit, limit = _unit_and_limit(current_a, power_w)
    return {
        "connectorId": connector_id,
        "csChargingProfiles": {
            "chargingProfileId": LIVE_PROFILE_ID_BASE + connector_id,
            "transactionId": transaction_id,
            "stackLevel": LIVE_STACK_LEVEL,
            "chargingProfilePurpose": ChargingProfilePurposeType.tx_profile,
            "chargingProfileKind": ChargingProfileKindType.absolute,
            "validFrom": _iso(now_s - 60),  # tolerate a station clock slightly behind
            "validTo": _iso(valid_until_s),
            "chargingSchedule": _schedule(limit, unit, start_s=now_s - 60),
        },
    }


def station_max_profile(
    *, current_a: float, power_w: float | None, now_s: float, valid_until_s: float
) -> dict:
    """The live setpoint as a whole-station cap, for stations that refuse TxProfile."""
    unit, limit = _unit_and_limit(current_a, power_w)
    return {
        "connectorId": 0,
        "csChargingProfiles": {
            "chargingProfileId": MAX_PROFILE_ID,
            "stackLevel": LIVE_STACK_LEVEL,
            "chargingProfilePurpose": ChargingProfilePurposeType.charge_point_max_profile,
            "chargingProfileKind": ChargingProfileKindType.absolute,
            "validFrom": _iso(now_s - 60),
            "validTo": _iso(valid_until_s),
            "chargingSchedule": _schedule(limit, unit, start_s=now_s - 60),
        },
    }
