"""``/api/v2/zones``: what a building management system polls every 15–30 s."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.exceptions import NotFound

from apps.energy.selectors import ZoneStatus, zone_statuses
from apps.zones.api.serializers import ZoneSerializer

ZONE_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Zone id.")


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
