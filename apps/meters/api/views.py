"""``/api/v2/meters``: each power meter's status and last reading, live from the
poller's hot state, and its stored history."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound

from apps.api.filters import QueryParams, time_parameter
from apps.api.pagination import CursorPagination
from apps.meters.models import Meter
from apps.meters.selectors import (
    MeterState,
    meter_by_id,
    meter_records,
    meter_states,
    meters_listed,
)


def _kw_to_w(value) -> float | None:
    return None if value is None else float(value) * 1000


def _kwh_to_wh(value) -> float | None:
    return None if value is None else float(value) * 1000


def _per_phase(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.FloatField(allow_null=True),
        min_length=3,
        max_length=3,
        help_text=f"{help_text} Per phase: L1, L2, L3; null where the meter gives none.",
    )


class ReadingSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    current_a = _per_phase("Current (A).")
    voltage_v = _per_phase("Voltage (V); not in evce's register maps yet: null.")
    power_per_phase_w = _per_phase("Active power (W).")
    power_w = serializers.FloatField(allow_null=True, help_text="Total active power (W).")
    energy_wh = serializers.FloatField(allow_null=True, help_text="Energy register (Wh).")


class MeterSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="meter.pk")
    name = serializers.CharField(source="meter.name")
    model = serializers.CharField(source="meter.model.name")
    role = serializers.ChoiceField(
        choices=["zone", "production", "reporting", "unused"],
        help_text="zone: measures a zone; production: a zone's local production; "
        "reporting: other loads, only shown.",
    )
    zone_id = serializers.IntegerField(allow_null=True)
    enabled = serializers.BooleanField(source="meter.enabled")
    status = serializers.ChoiceField(
        choices=["ok", "lost"],
        help_text="ok while the control loop may count on its last reading (SPEC §4).",
    )
    failures = serializers.IntegerField(help_text="Consecutive failed polls.")
    error = serializers.CharField(help_text="Message of the last failed poll.")
    poll_age_s = serializers.FloatField(allow_null=True, help_text="Age of the last reading.")
    last_reading = ReadingSerializer(allow_null=True)


class MeterView:
    """A meter with what the poller knows of it, as :class:`MeterSerializer` shows it."""

    def __init__(self, meter: Meter, state: MeterState, now) -> None:
        self.meter = meter
        measured = getattr(meter, "measured_zone", None)
        produced = getattr(meter, "produced_zone", None)
        zone = measured or produced
        self.zone_id = zone.pk if zone is not None else None
        if measured is not None:
            self.role = "zone"
        elif produced is not None:
            self.role = "production"
        else:
            self.role = "reporting" if meter.is_reporting else "unused"
        self.status = "ok" if meter.enabled and state.is_usable(now) else "lost"
        self.failures = state.failures
        self.error = state.error
        self.poll_age_s = state.age_s(now)
        values = state.values
        self.last_reading = (
            None
            if state.read_at is None
            else {
                "at": state.read_at,
                "current_a": [values.get(f"current_l{n}_a") for n in (1, 2, 3)],
                "voltage_v": [None, None, None],
                "power_per_phase_w": [_kw_to_w(values.get(f"power_l{n}_kw")) for n in (1, 2, 3)],
                "power_w": _kw_to_w(values.get("power_total_kw")),
                "energy_wh": _kwh_to_wh(values.get("energy_delivered_kwh")),
            }
        )


class RecordSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    current_a = serializers.SerializerMethodField()
    power_w = serializers.SerializerMethodField(help_text="Total active power (W).")
    energy_wh = serializers.SerializerMethodField(help_text="Energy register (Wh).")

    @extend_schema_field(
        serializers.ListField(
            child=serializers.FloatField(allow_null=True), min_length=3, max_length=3
        )
    )
    def get_current_a(self, record) -> list[float | None]:
        return [record.current_l1_a, record.current_l2_a, record.current_l3_a]

    def get_power_w(self, record) -> float | None:
        return _kw_to_w(record.power_total_kw)

    def get_energy_wh(self, record) -> float | None:
        return _kwh_to_wh(record.energy_delivered_kwh)


class RecordCursor(CursorPagination):
    ordering = "-at"


METER_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Meter id.")


@extend_schema_view(
    list=extend_schema(summary="List the meters with their status and last reading"),
    retrieve=extend_schema(
        summary="A meter with its status and last reading", parameters=[METER_ID]
    ),
    readings=extend_schema(
        summary="A meter's stored readings, newest first",
        parameters=[
            METER_ID,
            time_parameter("from", "Readings at or after this time."),
            time_parameter("to", "Readings before this time (a date: that day included)."),
        ],
    ),
)
class MeterViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = MeterSerializer
    lookup_field = "id"
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self) -> list[MeterView]:
        meters = list(meters_listed())
        states = meter_states([m.pk for m in meters])  # one Redis round trip for all
        now = timezone.now()
        return [MeterView(m, states[m.pk], now) for m in meters]

    def get_object(self) -> MeterView:
        meter = meter_by_id(int(self.kwargs["id"]))
        if meter is None:
            raise NotFound()
        return MeterView(meter, meter_states([meter.pk])[meter.pk], timezone.now())

    @action(
        detail=True,
        methods=["get"],
        serializer_class=RecordSerializer,
        pagination_class=RecordCursor,
    )
    def readings(self, request, id: str):
        meter = meter_by_id(int(id))
        if meter is None:
            raise NotFound()
        params = QueryParams(request)
        records = meter_records(meter, since=params.time("from"), until=params.time("to", end=True))
        params.check()
        page = self.paginate_queryset(records)
        return self.get_paginated_response(RecordSerializer(page, many=True).data)
