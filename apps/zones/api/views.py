"""``/api/v2/zones``: what a building management system polls every 15–30 s, and the
reduction it writes back when the building needs its power."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from apps.api.exceptions import ErrorSerializer
from apps.energy.selectors import ZoneStatus, zone_statuses
from apps.zones.api.serializers import (
    ReductionSerializer,
    ReductionWriteSerializer,
    ZoneSerializer,
)
from apps.zones.models import Zone
from apps.zones.selectors import zone_by_id, zone_reduction_in_force
from apps.zones.services import zone_reduction_clear, zone_reduction_set

ZONE_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Zone id.")
ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid fields, nothing changed."),
    404: OpenApiResponse(ErrorSerializer, description="Unknown zone, or no reduction."),
}
EXAMPLES = [
    OpenApiExample(
        "60 % for one hour",
        value={
            "value": 60,
            "type": "percentage",
            "description": "peak shaving",
            "validity_mode": "duration",
            "duration_s": 3600,
        },
        request_only=True,
    ),
    OpenApiExample(
        "32 A until a given time",
        value={
            "value": 32,
            "type": "current",
            "validity_mode": "absolute",
            "valid_until": "2026-12-01T18:00:00Z",
        },
        request_only=True,
    ),
]
# The service speaks of the model's fields; the API of ``value``.
SERVICE_FIELDS = {"percent": "value", "current_a": "value"}


@extend_schema_view(
    list=extend_schema(summary="List the zones with their live figures"),
    retrieve=extend_schema(summary="A zone with its live figures", parameters=[ZONE_ID]),
)
class ZoneViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ZoneSerializer
    lookup_field = "id"
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self) -> list[ZoneStatus]:
        return zone_statuses()

    def get_object(self) -> ZoneStatus:
        found = zone_statuses(zone_id=int(self.kwargs["id"]))
        if not found:
            raise NotFound()
        return found[0]

    def _zone(self) -> Zone:
        zone = zone_by_id(int(self.kwargs["id"]))
        if zone is None:
            raise NotFound()
        return zone

    @extend_schema(
        methods=["GET"],
        summary="The building-management reduction in force on a zone",
        parameters=[ZONE_ID],
        responses={200: ReductionSerializer, 404: ERRORS[404]},
    )
    @extend_schema(
        methods=["PUT"],
        summary="Reduce a zone (replaces its previous reduction)",
        description="Applied at the next control cycle; it ends by itself when its validity ends.",
        parameters=[ZONE_ID],
        request=ReductionWriteSerializer,
        responses={200: ReductionSerializer, **ERRORS},
        examples=EXAMPLES,
    )
    @extend_schema(
        methods=["DELETE"],
        summary="End a zone's reduction",
        parameters=[ZONE_ID],
        request=None,
        responses={204: None, 404: ERRORS[404]},
    )
    @action(detail=True, methods=["get", "put", "delete"], serializer_class=ReductionSerializer)
    def reduction(self, request, id: str):
        zone = self._zone()
        if request.method == "DELETE":
            zone_reduction_clear(zone=zone, user=request.user)
            return Response(status=status.HTTP_204_NO_CONTENT)
        if request.method == "PUT":
            payload = ReductionWriteSerializer(data=request.data)
            payload.is_valid(raise_exception=True)
            data = payload.validated_data
            limit = "percent" if data["type"] == "percentage" else "current_a"
            try:
                reduction = zone_reduction_set(
                    zone=zone,
                    validity_mode=data["validity_mode"],
                    valid_until=data["valid_until"],
                    duration_s=data["duration_s"],
                    description=data["description"],
                    user=request.user,
                    **{limit: data["value"]},
                )
            except DjangoValidationError as error:
                if not hasattr(error, "error_dict"):
                    raise
                raise DjangoValidationError(
                    {SERVICE_FIELDS.get(k, k): v for k, v in error.error_dict.items()}
                ) from None
            return Response(ReductionSerializer(reduction).data)
        reduction = zone_reduction_in_force(zone)
        if reduction is None:
            raise NotFound("No reduction in force on this zone.", code="no_reduction")
        return Response(ReductionSerializer(reduction).data)
