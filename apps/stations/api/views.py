"""``/api/v2/stations`` and their connectors: configuration, connection, live setpoints."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from apps.energy.selectors import StationStatus, station_statuses
from apps.stations.api.serializers import ConnectorSerializer, StationSerializer

IDENTITY = OpenApiParameter(
    "identity", OpenApiTypes.STR, OpenApiParameter.PATH, description="Box identity."
)
CONNECTOR = OpenApiParameter(
    "connector_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Connector number."
)


@extend_schema_view(
    list=extend_schema(summary="List the stations with their connectors and live setpoints"),
    retrieve=extend_schema(summary="A station with its connectors", parameters=[IDENTITY]),
    connector=extend_schema(
        summary="A connector with its live setpoint",
        parameters=[IDENTITY, CONNECTOR],
        responses=ConnectorSerializer,
    ),
)
class StationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = StationSerializer
    lookup_field = "identity"
    # Box identities (SPEC §2.1): letters, digits and * - _ = + | @ .
    lookup_value_regex = r"[A-Za-z0-9*\-_=+|@.]{1,30}"

    def get_queryset(self) -> list[StationStatus]:
        return station_statuses()

    def get_object(self) -> StationStatus:
        found = station_statuses(identity=self.kwargs["identity"])
        if not found:
            raise NotFound()
        return found[0]

    @action(detail=True, methods=["get"], url_path=r"connectors/(?P<connector_id>[0-9]+)")
    def connector(self, request, identity: str, connector_id: str):
        station = self.get_object()
        for item in station.connectors:
            if item.connector.connector_id == int(connector_id):
                return Response(ConnectorSerializer(item).data)
        raise NotFound()
