"""Zones as the API shows them (SPEC §9 ``zones``): read from ``ZoneStatus``."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


def _per_phase(help_text: str, **kwargs) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.FloatField(allow_null=kwargs.pop("child_null", False)),
        min_length=3,
        max_length=3,
        help_text=f"{help_text} Per phase: L1, L2, L3.",
        **kwargs,
    )


REDUCTION_TYPES = ["percentage", "current"]
VALIDITY_MODES = ["absolute", "duration", "none"]


class ReductionSerializer(serializers.Serializer):
    """The EBMS reduction in force on a zone."""

    value = serializers.SerializerMethodField()
    type = serializers.SerializerMethodField()
    description = serializers.CharField()
    validity_mode = serializers.ChoiceField(choices=VALIDITY_MODES)
    duration_s = serializers.IntegerField(allow_null=True)
    valid_until = serializers.DateTimeField(allow_null=True, help_text="Null: until deleted.")

    def get_value(self, reduction) -> float:
        return float(reduction.percent if reduction.percent is not None else reduction.current_a)

    @extend_schema_field(serializers.ChoiceField(choices=REDUCTION_TYPES))
    def get_type(self, reduction) -> str:
        return "percentage" if reduction.percent is not None else "current"


class ReductionWriteSerializer(serializers.Serializer):
    """What a building management system writes: a limit and how long it lasts."""

    value = serializers.DecimalField(
        max_digits=7,
        decimal_places=1,
        min_value=Decimal("0"),
        help_text="A percentage of the zone maximum (0–100) or a current in A (≤ zone maximum).",
    )
    type = serializers.ChoiceField(choices=REDUCTION_TYPES)
    description = serializers.CharField(max_length=200, required=False, default="")
    validity_mode = serializers.ChoiceField(
        choices=VALIDITY_MODES,
        help_text="absolute: until valid_until; duration: for duration_s; none: until deleted.",
    )
    valid_until = serializers.DateTimeField(required=False, allow_null=True, default=None)
    duration_s = serializers.IntegerField(
        min_value=1, max_value=366 * 86400, required=False, allow_null=True, default=None
    )

    def validate(self, attrs: dict) -> dict:
        errors: dict[str, str] = {}
        if attrs["type"] == "percentage" and attrs["value"] > 100:
            errors["value"] = "A percentage is at most 100."
        mode = attrs["validity_mode"]
        if mode == "absolute" and attrs["valid_until"] is None:
            errors["valid_until"] = "Required when validity_mode is absolute."
        if mode != "absolute" and attrs["valid_until"] is not None:
            errors["valid_until"] = "Only with validity_mode absolute."
        if mode == "duration" and attrs["duration_s"] is None:
            errors["duration_s"] = "Required when validity_mode is duration."
        if mode != "duration" and attrs["duration_s"] is not None:
            errors["duration_s"] = "Only with validity_mode duration."
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class ActiveReductionSerializer(serializers.Serializer):
    """A reduction the last allocation applied: a TOU period, an external input, the EBMS."""

    source = serializers.ChoiceField(choices=["tou", "input", "ebms"])
    percent = serializers.FloatField(allow_null=True)
    current_a = serializers.FloatField(allow_null=True)
    description = serializers.CharField()
    valid_until = serializers.DateTimeField(allow_null=True)


class ZoneSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="zone.pk")
    name = serializers.CharField(source="zone.name")
    parent_id = serializers.IntegerField(source="zone.parent_id", allow_null=True)
    type = serializers.ChoiceField(source="zone_type", choices=["static", "dynamic"])
    max_current_a = serializers.FloatField(source="zone.max_current_a")
    stations_count = serializers.IntegerField(help_text="Stations in the zone and below it.")
    sessions_count = serializers.IntegerField(help_text="Sessions the last allocation saw.")
    available_current_a = _per_phase("Available for charging, reductions included (A).")
    allocated_current_a = _per_phase("Sum of the setpoints (A).")
    reserved_current_a = _per_phase("Reserved for disconnected stations (A).")
    local_current_a = _per_phase("Local production (A).")
    setpoint_power_w = serializers.FloatField(help_text="Allocated power at nominal voltage.")
    current_a = _per_phase(
        "Zone meter (A); null for a static zone or a lost meter.",
        source="meter_current_a",
        allow_null=True,
    )
    power_w = _per_phase(
        "Zone meter (W); null for a static zone or a lost meter.",
        source="meter_power_w",
        allow_null=True,
        child_null=True,
    )
    degraded = serializers.BooleanField(help_text="The zone meter is lost: degraded setpoint.")
    reduction = ReductionSerializer(source="ebms_reduction", allow_null=True)
    active_reductions = ActiveReductionSerializer(source="reductions", many=True)
