"""Charging profiles evce sends are valid OCPP 1.6 and carry the right limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ocpp.messages import Call, _validate_payload

from apps.energy import profiles

NOW_S = datetime(2026, 11, 21, 12, 0, tzinfo=UTC).timestamp()


def _valid(payload: dict) -> None:
    _validate_payload(Call(unique_id="1", action="SetChargingProfile", payload=payload), "1.6")


def test_fallback_profile_is_a_lowest_level_default_in_amps():
    payload = profiles.fallback_profile(2, current_a=10.666, power_w=None)
    _valid(payload)
    cs = payload["csChargingProfiles"]
    assert payload["connectorId"] == 2
    assert cs["chargingProfilePurpose"] == "TxDefaultProfile"
    assert cs["stackLevel"] == 0
    assert "validTo" not in cs  # the fallback never expires
    assert cs["chargingSchedule"]["chargingRateUnit"] == "A"
    # Whole amps, rounded down: a station that rounds up gets nothing more to round.
    assert cs["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 10.0}]


def test_live_profile_is_bounded_and_above_the_fallback():
    payload = profiles.live_profile(
        1, transaction_id=42, current_a=16.0, power_w=None, now_s=NOW_S, valid_until_s=NOW_S + 120
    )
    _valid(payload)
    cs = payload["csChargingProfiles"]
    assert cs["chargingProfilePurpose"] == "TxProfile"
    assert cs["transactionId"] == 42
    assert cs["stackLevel"] > profiles.DEFAULT_STACK_LEVEL
    assert cs["validTo"] == "2026-11-21T12:02:00Z"
    assert cs["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 16.0


@pytest.mark.parametrize("builder", ["live", "max", "fallback"])
def test_dc_setpoints_are_sent_in_watts(builder):
    if builder == "live":
        payload = profiles.live_profile(
            1,
            transaction_id=1,
            current_a=20.0,
            power_w=13800.0,
            now_s=NOW_S,
            valid_until_s=NOW_S + 60,
        )
    elif builder == "max":
        payload = profiles.station_max_profile(
            current_a=20.0, power_w=13800.0, now_s=NOW_S, valid_until_s=NOW_S + 60
        )
    else:
        payload = profiles.fallback_profile(1, current_a=20.0, power_w=13800.0)
    _valid(payload)
    schedule = payload["csChargingProfiles"]["chargingSchedule"]
    assert schedule["chargingRateUnit"] == "W"
    assert schedule["chargingSchedulePeriod"][0]["limit"] == 13800.0


def test_station_max_profile_covers_the_whole_station():
    payload = profiles.station_max_profile(
        current_a=12.0, power_w=None, now_s=NOW_S, valid_until_s=NOW_S + 60
    )
    _valid(payload)
    assert payload["connectorId"] == 0
    assert payload["csChargingProfiles"]["chargingProfilePurpose"] == "ChargePointMaxProfile"


def test_sites_whose_stations_honour_tenths_may_send_them(settings):
    settings.PROFILE_STEP_A = 0.1
    payload = profiles.fallback_profile(1, current_a=10.66, power_w=None)
    limit = payload["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]
    assert limit["limit"] == 10.6  # still rounded down, never up
