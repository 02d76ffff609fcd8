"""Configuration keys of a simulated charge point (pure)."""

from __future__ import annotations

import pytest
from ocpp.v16.enums import ConfigurationStatus

from apps.simulator.engine.config_keys import ConfigurationStore


def test_configuration_statuses() -> None:
    config = ConfigurationStore(readonly_values={"NumberOfConnectors": "2"})
    assert config.change("heartbeatinterval", "120") is ConfigurationStatus.accepted
    assert config.get_int("HeartbeatInterval") == 120
    assert config.change("HeartbeatInterval", "-5") is ConfigurationStatus.rejected
    assert config.change("NumberOfConnectors", "3") is ConfigurationStatus.rejected
    assert config.change("Unknown", "1") is ConfigurationStatus.not_supported
    assert config.change("LocalPreAuthorize", "TRUE") is ConfigurationStatus.accepted
    assert config.get("LocalPreAuthorize") == "true"
    assert (
        config.change("MeterValuesSampledData", "Current.Import,SoC")
        is ConfigurationStatus.rejected
    )
    assert (
        config.change("MeterValuesSampledData", "Current.Import, Voltage")
        is ConfigurationStatus.accepted
    )
    assert config.get_list("MeterValuesSampledData") == ["Current.Import", "Voltage"]


def test_the_authorization_key_is_write_only() -> None:
    config = ConfigurationStore({"AuthorizationKey": "0123456789abcdef"})
    known, unknown = config.read(["AuthorizationKey", "HeartbeatInterval"])
    assert [item["key"] for item in known] == ["HeartbeatInterval"]
    assert unknown == ["AuthorizationKey"]
    everything, _ = config.read()
    assert "AuthorizationKey" not in {item["key"] for item in everything}
    assert config.get("AuthorizationKey") == "0123456789abcdef"


def test_unknown_start_up_key_is_an_error() -> None:
    with pytest.raises(KeyError):
        ConfigurationStore({"NoSuchKey": "1"})
