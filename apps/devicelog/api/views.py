"""``/api/v2/device-log``: the device log (SPEC §10), as JSON pages or streamed CSV."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.renderers import JSONRenderer

from apps.api.exceptions import ErrorSerializer
from apps.api.filters import QueryParams, time_parameter
from apps.api.pagination import CursorPagination
from apps.api.renderers import CsvRenderer
from apps.devicelog.models import EventCategory, EventLevel
from apps.devicelog.selectors import device_log_csv, device_log_filtered


class DeviceLogEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    category = serializers.ChoiceField(choices=[c.value for c in EventCategory])
    level = serializers.ChoiceField(choices=[lv.value for lv in EventLevel])
    event = serializers.CharField(help_text="Machine-readable event code.")
    message = serializers.CharField()
    station_identity = serializers.CharField(help_text="Empty when no station is concerned.")
    zone_name = serializers.CharField()
    username = serializers.CharField(help_text="Who did it; empty for evce itself.")
    remote_addr = serializers.IPAddressField(allow_null=True)
    data = serializers.DictField(help_text="Details: the values written, the outcome…")


@extend_schema(
    summary="The device log, newest first",
    description="`?format=csv` streams every matching entry as CSV instead of a page.",
    parameters=[
        time_parameter("since", "Entries at or after this time."),
        OpenApiParameter("category", OpenApiTypes.STR, enum=[c.value for c in EventCategory]),
        OpenApiParameter("station", OpenApiTypes.STR, description="Box identity."),
        OpenApiParameter("zone", OpenApiTypes.STR, description="Zone name."),
        OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"]),
    ],
    responses={
        200: DeviceLogEntrySerializer(many=True),
        (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The CSV file."),
        400: OpenApiResponse(ErrorSerializer, description="Invalid filters."),
    },
)
class DeviceLogViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = DeviceLogEntrySerializer
    pagination_class = CursorPagination
    renderer_classes = [JSONRenderer, CsvRenderer]

    def get_queryset(self):
        params = QueryParams(self.request)
        category = params.text("category")
        if category and category not in EventCategory.values:
            params.errors["category"] = [f"One of {', '.join(EventCategory.values)}."]
        entries = device_log_filtered(
            since=params.time("since"),
            category=category,
            station_identity=params.text("station"),
            zone_name=params.text("zone"),
        )
        params.check()
        return entries

    def list(self, request, *args, **kwargs):
        if request.accepted_renderer.format != "csv":
            return super().list(request, *args, **kwargs)
        response = StreamingHttpResponse(
            device_log_csv(self.get_queryset()), content_type="text/csv; charset=utf-8"
        )
        name = f"device-log-{timezone.now():%Y%m%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
