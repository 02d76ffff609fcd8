"""Every setpoint reason reads as words, naming the zone phase that limits it."""

from __future__ import annotations

import pytest

from apps.dashboard.reasons import reason_words
from apps.energy.allocator import Phase, Reason
from apps.energy.selectors import ConnectorSetpoint

ZONES = {7: "Main switchboard"}


def _setpoint(reason: Reason, setpoint_a: float = 10.0, **kwargs) -> ConnectorSetpoint:
    values = {
        "key": "CP/1",
        "station_identity": "CP",
        "connector_id": 1,
        "station_id": 1,
        "transaction_id": 1,
        "setpoint_a": setpoint_a,
        "setpoint_w": None,
        "reason": reason,
        "limiting_zone_id": None,
        "limiting_phase": None,
        "phases": (1, 2, 3),
        "rank": None,
        "vip": False,
        "delivery": None,
        "wanted_a": None,
        "allocated_at": None,
        "accepted_a": None,
        "accepted_at": None,
        "valid_until": None,
        "envelope_a": None,
    }
    return ConnectorSetpoint(**{**values, **kwargs})


def test_a_zone_limit_names_the_zone_and_phase():
    setpoint = _setpoint(Reason.ZONE_LIMIT, limiting_zone_id=7, limiting_phase=Phase.L2)
    assert reason_words(setpoint, ZONES) == "limited by Main switchboard L2"


@pytest.mark.parametrize(
    "reason, setpoint_a, words",
    [
        (Reason.SHED_PRIORITY, 0, "shed: priority"),
        (Reason.DEGRADED, 6, "degraded: meter lost (Main switchboard)"),
        (Reason.CONNECTOR_MAX, 32, "at the connector's maximum"),
        (Reason.HELD, 16, "held: the station did not apply the last profile"),
    ],
)
def test_reasons_in_words(reason, setpoint_a, words):
    setpoint = _setpoint(reason, setpoint_a, limiting_zone_id=7)
    assert reason_words(setpoint, ZONES) == words


@pytest.mark.parametrize("reason", list(Reason))
def test_no_reason_is_shown_as_its_code(reason):
    for setpoint_a in (0.0, 16.0):
        words = reason_words(_setpoint(reason, setpoint_a, limiting_zone_id=7), ZONES)
        assert words and words != reason.value


def test_no_allocation_yet():
    assert reason_words(None, ZONES) == "waiting for the load manager"
