"""Configuration keys of a simulated charge point (pure)."""

from __future__ import annotations

import pytest

from apps.simulator.engine.config_keys import ConfigStatus, ConfigurationStore


def test_configuration_statuses() -> None:
    config = ConfigurationStore(readonly_values={"NumberOfConnectors": "2"})
    assert config.change("heartbeatinterval", "120") is ConfigStatus.ACCEPTED
    assert config.get_int("HeartbeatInterval") == 120
    assert config.change("HeartbeatInterval", "-5") is ConfigStatus.REJECTED
    assert config.change("NumberOfConnectors", "3") is ConfigStatus.REJECTED
    assert config.change("Unknown", "1") is ConfigStatus.NOT_SUPPORTED
    assert config.change("LocalPreAuthorize", "TRUE") is ConfigStatus.ACCEPTED
    assert config.get("LocalPreAuthorize") == "true"
    assert config.change("MeterValuesSampledData", "Current.Import,SoC") is ConfigStatus.REJECTED
    assert (
        config.change("MeterValuesSampledData", "Current.Import, Voltage") is ConfigStatus.ACCEPTED
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
