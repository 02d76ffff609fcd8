"""Stations and connectors as the API shows them (SPEC §9): read from ``StationStatus``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.energy.allocator import CurrentType, PhaseWiring, Reason
from apps.supervision.selectors import cpo_url, supervision_resolver

OCPP_STATUSES = [
    "available",
    "preparing",
    "charging",
    "suspendedevse",
    "suspendedev",
    "finishing",
    "reserved",
    "unavailable",
    "faulted",
]
AVAILABILITIES = ["operative", "inoperative"]


def _choice(choices: list[str], **kwargs) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=choices, **kwargs)


class AlarmSerializer(serializers.Serializer):
    priority = serializers.ChoiceField(choices=["high"])
    category = serializers.CharField(help_text="The OCPP error code of a faulted connector.")


def _float(value) -> float | None:
    return None if value is None else float(value)


def _lower(value: str) -> str | None:
    return value.lower() if value else None


class ConnectorSerializer(serializers.Serializer):
    connector_id = serializers.IntegerField(source="connector.connector_id")
    current_type = serializers.SerializerMethodField()
    fixed_setpoint = serializers.SerializerMethodField()
    max_current_a = serializers.FloatField(source="connector.max_current_a", allow_null=True)
    max_power_w = serializers.IntegerField(source="connector.max_power_w", allow_null=True)
    phase_wiring = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    availability = serializers.SerializerMethodField()
    setpoint_current_a = serializers.FloatField(allow_null=True)
    setpoint_power_w = serializers.FloatField(allow_null=True)
    setpoint_reason = serializers.SerializerMethodField()
    current_a = serializers.ListField(
        child=serializers.FloatField(allow_null=True),
        min_length=3,
        max_length=3,
        allow_null=True,
        help_text="Last sample of the session, per connector phase (A).",
    )
    power_w = serializers.FloatField(allow_null=True, help_text="Last sample of the session.")
    energy_wh = serializers.IntegerField(allow_null=True, help_text="Energy of the session.")
    transaction_id = serializers.IntegerField(source="transaction.pk", allow_null=True)

    def to_representation(self, item) -> dict:
        """The fields above, built directly: a site's list has thousands of connectors
        and DRF's field-by-field walk costs more than the reads behind it (a test holds
        the two equal)."""
        connector = item.connector
        return {
            "connector_id": connector.connector_id,
            "current_type": self.get_current_type(item),
            "fixed_setpoint": False,
            "max_current_a": _float(connector.max_current_a),
            "max_power_w": None if connector.max_power_w is None else int(connector.max_power_w),
            "phase_wiring": self.get_phase_wiring(item),
            "status": self.get_status(item),
            "availability": self.get_availability(item),
            "setpoint_current_a": _float(item.setpoint_current_a),
            "setpoint_power_w": _float(item.setpoint_power_w),
            "setpoint_reason": self.get_setpoint_reason(item),
            "current_a": None if item.current_a is None else [_float(v) for v in item.current_a],
            "power_w": _float(item.power_w),
            "energy_wh": None if item.energy_wh is None else int(item.energy_wh),
            "transaction_id": None if item.transaction is None else item.transaction.pk,
        }

    @extend_schema_field(_choice([t.value.lower() for t in CurrentType]))
    def get_current_type(self, item) -> str:
        return item.connector.current_type.lower()

    def get_fixed_setpoint(self, item) -> bool:
        return False  # evce allocates every connector

    @extend_schema_field(_choice([w.value.lower() for w in PhaseWiring]))
    def get_phase_wiring(self, item) -> str:
        return item.connector.phase_wiring.lower()

    @extend_schema_field(_choice(OCPP_STATUSES, allow_null=True))
    def get_status(self, item) -> str | None:
        return _lower(item.connector.status)

    @extend_schema_field(_choice(AVAILABILITIES))
    def get_availability(self, item) -> str:
        return "inoperative" if item.connector.status == "Unavailable" else "operative"

    @extend_schema_field(_choice([r.value for r in Reason], allow_null=True))
    def get_setpoint_reason(self, item) -> str | None:
        return None if item.setpoint is None else str(item.setpoint.reason)


class StationSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="station.pk")
    identity = serializers.CharField(source="station.identity")
    station_type = serializers.SerializerMethodField()
    name = serializers.CharField(source="station.name")
    zone_id = serializers.IntegerField(source="station.zone_id", allow_null=True)
    vip = serializers.BooleanField(source="station.vip")
    vendor = serializers.CharField(source="station.vendor")
    model = serializers.CharField(source="station.model")
    serial = serializers.CharField(source="station.serial_number")
    firmware = serializers.CharField(source="station.firmware_version")
    ip_address = serializers.IPAddressField(source="station.ip_address", allow_null=True)
    connected = serializers.BooleanField(source="online")
    last_seen = serializers.DateTimeField(allow_null=True)
    status = serializers.SerializerMethodField()
    auth_online_mode = serializers.CharField(
        source="station.auth_group.online_mode", allow_null=True, default=None
    )
    auth_offline_mode = serializers.CharField(
        source="station.auth_group.offline_strategy", allow_null=True, default=None
    )
    cpo_url = serializers.SerializerMethodField()
    accepted_by_cpo = serializers.SerializerMethodField()
    alarm = serializers.SerializerMethodField()
    connectors = ConnectorSerializer(many=True)

    def to_representation(self, item) -> dict:
        """The fields above, built directly (see :meth:`ConnectorSerializer.to_representation`)."""
        station = item.station
        group = station.auth_group
        last_seen = item.last_seen
        return {
            "id": station.pk,
            "identity": station.identity,
            "station_type": "ocpp1.6",
            "name": station.name,
            "zone_id": station.zone_id,
            "vip": station.vip,
            "vendor": station.vendor,
            "model": station.model,
            "serial": station.serial_number,
            "firmware": station.firmware_version,
            "ip_address": station.ip_address,
            "connected": item.online,
            "last_seen": None
            if last_seen is None
            else self.fields["last_seen"].to_representation(last_seen),
            "status": self.get_status(item),
            "auth_online_mode": None if group is None else group.online_mode,
            "auth_offline_mode": None if group is None else group.offline_strategy,
            "cpo_url": self.get_cpo_url(item),
            "accepted_by_cpo": self.get_accepted_by_cpo(item),
            "alarm": self.get_alarm(item),
            "connectors": [self._connector.to_representation(c) for c in item.connectors],
        }

    @property
    def _connector(self) -> ConnectorSerializer:
        return self.fields["connectors"].child

    @extend_schema_field(_choice(["ocpp1.6"]))
    def get_station_type(self, item) -> str:
        return "ocpp1.6"

    @extend_schema_field(_choice(OCPP_STATUSES, allow_null=True))
    def get_status(self, item) -> str | None:
        return _lower(item.station.status)

    def get_cpo_url(self, item) -> str | None:
        """Where evce connects upstream as this station (SPEC §6), or None when local."""
        # Resolved once per serializer: a whole list costs two or three queries.
        resolver = getattr(self, "_supervision_of_group", None)
        if resolver is None:
            resolver = self._supervision_of_group = supervision_resolver()
        return cpo_url(resolver(item.station.auth_group_id), item.station.identity)

    def get_accepted_by_cpo(self, item) -> bool | None:
        return None  # known once the relay connects upstream

    @extend_schema_field(AlarmSerializer(allow_null=True))
    def get_alarm(self, item) -> dict | None:
        faulted = [c.connector for c in item.connectors if c.connector.status == "Faulted"]
        if not faulted:
            return None
        return {"priority": "high", "category": faulted[0].error_code or "OtherError"}
