"""Framing and schema validation: the CALLERROR code for each kind of defect."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.central_system import protocol
from apps.central_system.protocol import ErrorCode, OcppError


def test_parse_the_three_message_types():
    assert protocol.parse_frame('[2,"1","Heartbeat",{}]') == protocol.Call("1", "Heartbeat", {})
    assert protocol.parse_frame('[3,"1",{"a":1}]') == protocol.CallResult("1", {"a": 1})
    assert protocol.parse_frame('[4,"1","NotSupported","no",{}]') == protocol.CallError(
        "1", "NotSupported", "no", {}
    )


def test_non_json_cannot_be_answered():
    with pytest.raises(protocol.NotJson):
        protocol.parse_frame("[2, '1'")


@pytest.mark.parametrize(
    ("text", "code", "unique_id", "answerable"),
    [
        ("{}", ErrorCode.FORMATION_VIOLATION, "-1", True),
        ("[]", ErrorCode.FORMATION_VIOLATION, "-1", True),
        ('[7,"x",{}]', ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "x", False),
        ('[true,"x",{}]', ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "x", False),
        ('[2,5,"Heartbeat",{}]', ErrorCode.FORMATION_VIOLATION, "-1", True),
        ('[2,"x","Heartbeat"]', ErrorCode.PROTOCOL_ERROR, "x", True),
        ('[3,"x"]', ErrorCode.PROTOCOL_ERROR, "x", False),
        ('[3,"x",[]]', ErrorCode.FORMATION_VIOLATION, "x", False),
    ],
)
def test_frame_defects(text, code, unique_id, answerable):
    with pytest.raises(protocol.FrameError) as error:
        protocol.parse_frame(text)
    assert (error.value.code, error.value.unique_id, error.value.answerable) == (
        code,
        unique_id,
        answerable,
    )


def test_encoding_is_compact_and_handles_decimals_and_datetimes():
    from decimal import Decimal

    assert protocol.encode_result("1", {"limit": Decimal("13.5")}) == '[3,"1",{"limit":13.5}]'
    assert protocol.encode_call("2", "Reset", {"type": "Soft"}) == '[2,"2","Reset",{"type":"Soft"}]'
    error = OcppError(ErrorCode.SECURITY_ERROR, "not accepted")
    assert protocol.encode_error("3", error) == '[4,"3","SecurityError","not accepted",{}]'
    at = datetime(2025, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
    assert protocol.format_datetime(at) == "2025-03-01T08:00:00.123Z"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-03-01T08:00:00Z", datetime(2025, 3, 1, 8, tzinfo=UTC)),
        ("2025-03-01T09:00:00+01:00", datetime(2025, 3, 1, 8, tzinfo=UTC)),
        ("2025-03-01T08:00:00", datetime(2025, 3, 1, 8, tzinfo=UTC)),  # no offset: UTC
        ("2025-02-30T08:00:00Z", None),
        ("soon", None),
    ],
)
def test_ocpp_datetimes(value, expected):
    assert protocol.parse_ocpp_datetime(value) == expected


def test_responses_and_security_extension_are_validated_too():
    protocol.validate_payload("SignCertificate", {"csr": "-----BEGIN..."})
    with pytest.raises(OcppError) as error:
        protocol.validate_payload("SecurityEventNotification", {"type": "x"})
    assert error.value.code == ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION
    protocol.validate_payload("Reset", {"type": "Hard"})
    protocol.validate_payload("Reset", {"status": "Accepted"}, response=True)
    with pytest.raises(OcppError):
        protocol.validate_payload("Reset", {"status": "Maybe"}, response=True)


def test_charging_schedules_accept_one_decimal_limits():
    profile = {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 21.4}],
            },
        },
    }
    protocol.validate_payload("SetChargingProfile", profile)
    profile["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] = 21.45
    with pytest.raises(OcppError) as error:
        protocol.validate_payload("SetChargingProfile", profile)
    assert error.value.code == ErrorCode.PROPERTY_CONSTRAINT_VIOLATION


def test_action_sets():
    assert "BootNotification" in protocol.CP_TO_CS_ACTIONS
    assert "BootNotification" not in protocol.CS_TO_CP_ACTIONS
    assert "DataTransfer" in protocol.CP_TO_CS_ACTIONS & protocol.CS_TO_CP_ACTIONS
    assert {"SetChargingProfile", "GetLog", "CertificateSigned"} <= protocol.CS_TO_CP_ACTIONS
