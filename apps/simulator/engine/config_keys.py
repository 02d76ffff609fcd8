"""The configuration keys of a simulated charge point (GetConfiguration / ChangeConfiguration).

Keys are matched case-insensitively (OCPP keys are CiString). Unknown keys
are ``NotSupported``, read-only keys and bad values ``Rejected``; the
``AuthorizationKey`` is write-only, as the security whitepaper requires.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ocpp.v16.enums import ConfigurationStatus, Measurand

SUPPORTED_MEASURANDS = frozenset(
    {
        Measurand.energy_active_import_register,
        Measurand.current_import,
        Measurand.current_offered,
        Measurand.power_active_import,
        Measurand.power_offered,
        Measurand.voltage,
    }
)

DEFAULT_SAMPLED_DATA = ",".join(
    (
        Measurand.energy_active_import_register,
        Measurand.current_import,
        Measurand.power_active_import,
        Measurand.current_offered,
    )
)


def _is_bool(value: str) -> bool:
    return value.lower() in ("true", "false")


def _is_count(value: str) -> bool:
    return value.strip().isdigit()


def _is_measurand_list(value: str) -> bool:
    items = [item.strip() for item in value.split(",") if item.strip()]
    return len(items) <= 10 and all(item in SUPPORTED_MEASURANDS for item in items)


def _is_security_profile(value: str) -> bool:
    return value.strip() in ("0", "1", "2", "3")


def _is_authorization_key(value: str) -> bool:
    # The whitepaper asks central systems for 16+ characters; the simulator is
    # lenient so that it can be used to test how a central system enforces it.
    return 0 < len(value) <= 40


def _any(value: str) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class KeySpec:
    name: str
    default: str
    readonly: bool = False
    check: Callable[[str], bool] = _any
    write_only: bool = False


_KEYS: tuple[KeySpec, ...] = (
    KeySpec("AllowOfflineTxForUnknownId", "false", check=_is_bool),
    KeySpec("AuthorizationCacheEnabled", "true", check=_is_bool),
    KeySpec("AuthorizationKey", "", check=_is_authorization_key, write_only=True),
    KeySpec("AuthorizeRemoteTxRequests", "true", check=_is_bool),
    KeySpec("ChargeProfileMaxStackLevel", "10", readonly=True),
    KeySpec("ChargingScheduleAllowedChargingRateUnit", "Current,Power", readonly=True),
    KeySpec("ChargingScheduleMaxPeriods", "24", readonly=True),
    KeySpec("ClockAlignedDataInterval", "0", check=_is_count),
    KeySpec("ConnectionTimeOut", "60", check=_is_count),
    KeySpec("ConnectorSwitch3to1PhaseSupported", "true", readonly=True),
    KeySpec("GetConfigurationMaxKeys", "64", readonly=True),
    KeySpec("HeartbeatInterval", "300", check=_is_count),
    KeySpec("LocalAuthListEnabled", "true", check=_is_bool),
    KeySpec("LocalAuthListMaxLength", "1000", readonly=True),
    KeySpec("LocalAuthorizeOffline", "true", check=_is_bool),
    KeySpec("LocalPreAuthorize", "false", check=_is_bool),
    KeySpec("MaxChargingProfilesInstalled", "32", readonly=True),
    KeySpec("MeterValuesAlignedData", "Energy.Active.Import.Register", check=_is_measurand_list),
    KeySpec("MeterValuesAlignedDataMaxLength", "10", readonly=True),
    KeySpec("MeterValuesSampledData", DEFAULT_SAMPLED_DATA, check=_is_measurand_list),
    KeySpec("MeterValuesSampledDataMaxLength", "10", readonly=True),
    KeySpec("MeterValueSampleInterval", "10", check=_is_count),
    KeySpec("ResetRetries", "1", check=_is_count),
    KeySpec("SecurityProfile", "0", check=_is_security_profile),
    KeySpec("SendLocalListMaxLength", "100", readonly=True),
    KeySpec("StopTransactionOnEVSideDisconnect", "true", check=_is_bool),
    KeySpec("StopTransactionOnInvalidId", "true", check=_is_bool),
    KeySpec("StopTxnAlignedData", "", check=_is_measurand_list),
    KeySpec("StopTxnAlignedDataMaxLength", "10", readonly=True),
    KeySpec("StopTxnSampledData", "Energy.Active.Import.Register", check=_is_measurand_list),
    KeySpec("StopTxnSampledDataMaxLength", "10", readonly=True),
    KeySpec(
        "SupportedFeatureProfiles",
        "Core,FirmwareManagement,LocalAuthListManagement,SmartCharging,RemoteTrigger",
        readonly=True,
    ),
    KeySpec("TransactionMessageAttempts", "3", check=_is_count),
    KeySpec("TransactionMessageRetryInterval", "60", check=_is_count),
    KeySpec("UnlockConnectorOnEVSideDisconnect", "true", check=_is_bool),
    KeySpec("WebSocketPingInterval", "20", check=_is_count),
)


# Free vend is vendor-specific: a prefixed pair of keys, as several firmwares have.
FREE_VEND_ACTIVE = "Sim_FreeVendActive"
FREE_VEND_ID_TAG = "Sim_FreeVendIdTag"
FREE_VEND_KEYS = (
    KeySpec(FREE_VEND_ACTIVE, "false", check=_is_bool),
    KeySpec(FREE_VEND_ID_TAG, "FREEVEND", check=lambda value: 0 < len(value) <= 20),
)


class ConfigurationStore:
    """Key/value configuration of one charge point, with OCPP's acceptance rules.

    ``readonly_values`` adds station-specific read-only keys (e.g.
    ``NumberOfConnectors``); ``values`` overrides defaults at start-up (these
    bypass the read-only rule, as a factory setting would).
    """

    def __init__(
        self,
        values: Mapping[str, str] | None = None,
        readonly_values: Mapping[str, str] | None = None,
        extra_keys: Iterable[KeySpec] = (),
    ) -> None:
        self._specs: dict[str, KeySpec] = {
            spec.name.lower(): spec for spec in (*_KEYS, *extra_keys)
        }
        for name, value in (readonly_values or {}).items():
            self._specs[name.lower()] = KeySpec(name, value, readonly=True)
        self._values: dict[str, str] = {key: spec.default for key, spec in self._specs.items()}
        for name, value in (values or {}).items():
            key = name.lower()
            if key not in self._specs:
                raise KeyError(f"unknown configuration key {name!r}")
            self._values[key] = str(value)

    def get(self, name: str) -> str:
        return self._values[name.lower()]

    def get_int(self, name: str) -> int:
        return int(self.get(name) or 0)

    def get_bool(self, name: str) -> bool:
        return self.get(name).lower() == "true"

    def get_list(self, name: str) -> list[str]:
        return [item.strip() for item in self.get(name).split(",") if item.strip()]

    def change(self, name: str, value: str) -> ConfigurationStatus:
        """ChangeConfiguration, following OCPP's statuses."""
        spec = self._specs.get(name.lower())
        if spec is None:
            return ConfigurationStatus.not_supported
        if spec.readonly or not spec.check(value):
            return ConfigurationStatus.rejected
        if spec.check is _is_bool:
            value = value.lower()
        self._values[name.lower()] = value
        return ConfigurationStatus.accepted

    def read(self, names: Iterable[str] | None = None) -> tuple[list[dict[str, object]], list[str]]:
        """GetConfiguration: (known keys as ``{key, readonly, value}``, unknown keys)."""
        if not names:
            wanted = [spec for spec in self._specs.values() if not spec.write_only]
            unknown: list[str] = []
        else:
            wanted, unknown = [], []
            for name in names:
                spec = self._specs.get(name.lower())
                if spec is None or spec.write_only:
                    unknown.append(name)
                else:
                    wanted.append(spec)
        known = [
            {"key": spec.name, "readonly": spec.readonly, "value": self._values[spec.name.lower()]}
            for spec in wanted
        ]
        return known, unknown
