"""``/api/v2/stations`` and their connectors: configuration, connection, live setpoints."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from ocpp.v16.enums import AvailabilityType, ResetType
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from apps.api.permissions import AdminOnly, RemoteAction
from apps.central_system import commands, protocol
from apps.central_system.services import station_command_send
from apps.energy.selectors import StationStatus, station_statuses
from apps.stations.api.actions import (
    COMMAND_ERRORS,
    OCPP_EXAMPLES,
    AcceptedAnswerSerializer,
    AvailabilityAnswerSerializer,
    AvailabilityWriteSerializer,
    RemoteStartSerializer,
    ResetSerializer,
    UnlockAnswerSerializer,
    UnlockSerializer,
)
from apps.stations.api.serializers import ConnectorSerializer, StationSerializer
from apps.stations.models import Station
from apps.stations.selectors import station_by_identity

IDENTITY = OpenApiParameter(
    "identity", OpenApiTypes.STR, OpenApiParameter.PATH, description="Box identity."
)
CONNECTOR = OpenApiParameter(
    "connector_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Connector number."
)
OCPP_ACTION = OpenApiParameter(
    "ocpp_action",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    enum=sorted(protocol.CS_TO_CP_ACTIONS),
    description="A central-system-to-station action of OCPP 1.6 (security extension included).",
)


def _lower_status(answer: dict) -> dict:
    """The station's ``status`` answer in the API's lowercase enumerations."""
    return {"status": str(answer.get("status", "")).lower()}


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

    # --- remote actions: sent now, the station's answer returned -------------------

    def _station(self) -> Station:
        station = station_by_identity(self.kwargs["identity"])
        if station is None:
            raise NotFound()
        return station

    def _connector_known(self, station: Station, connector_id: int) -> None:
        if not station.connectors.filter(connector_id=connector_id).exists():
            raise NotFound("This station has no such connector.", code="no_connector")

    def _send(self, station: Station, command: commands.Command) -> dict:
        return station_command_send(
            identity=station.identity, command=command, user=self.request.user
        )

    @extend_schema(
        summary="Make a connector (0: the whole station) operative or inoperative",
        description="Sends ChangeAvailability and answers the station's status.",
        parameters=[IDENTITY, CONNECTOR],
        request=AvailabilityWriteSerializer,
        responses={200: AvailabilityAnswerSerializer, **COMMAND_ERRORS},
    )
    @action(
        detail=True,
        methods=["put"],
        url_path=r"connectors/(?P<connector_id>[0-9]+)/availability",
        permission_classes=[RemoteAction],
    )
    def availability(self, request, identity: str, connector_id: str):
        station = self._station()
        if int(connector_id) != 0:
            self._connector_known(station, int(connector_id))
        body = AvailabilityWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        kind = (
            AvailabilityType.operative
            if body.validated_data["availability"] == "operative"
            else AvailabilityType.inoperative
        )
        answer = self._send(station, commands.change_availability(int(connector_id), kind))
        return Response(_lower_status(answer))

    @extend_schema(
        summary="Start a session remotely",
        description="Sends RemoteStartTransaction; the station then starts it (or not).",
        parameters=[IDENTITY],
        request=RemoteStartSerializer,
        responses={200: AcceptedAnswerSerializer, **COMMAND_ERRORS},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="remote-start",
        permission_classes=[RemoteAction],
    )
    def remote_start(self, request, identity: str):
        station = self._station()
        body = RemoteStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        self._connector_known(station, body.validated_data["connector_id"])
        command = commands.remote_start(
            body.validated_data["id_tag"], connector_id=body.validated_data["connector_id"]
        )
        return Response(_lower_status(self._send(station, command)))

    @extend_schema(
        summary="Reboot (soft) or restart (hard) a station",
        parameters=[IDENTITY],
        request=ResetSerializer,
        responses={200: AcceptedAnswerSerializer, **COMMAND_ERRORS},
    )
    @action(detail=True, methods=["post"], permission_classes=[RemoteAction])
    def reset(self, request, identity: str):
        station = self._station()
        body = ResetSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        kind = ResetType.hard if body.validated_data["type"] == "hard" else ResetType.soft
        return Response(_lower_status(self._send(station, commands.reset(kind))))

    @extend_schema(
        summary="Unlock a connector",
        parameters=[IDENTITY],
        request=UnlockSerializer,
        responses={200: UnlockAnswerSerializer, **COMMAND_ERRORS},
    )
    @action(detail=True, methods=["post"], permission_classes=[RemoteAction])
    def unlock(self, request, identity: str):
        station = self._station()
        body = UnlockSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        self._connector_known(station, body.validated_data["connector_id"])
        command = commands.unlock_connector(body.validated_data["connector_id"])
        return Response(_lower_status(self._send(station, command)))

    @extend_schema(
        summary="Send any OCPP 1.6 call to a station (administrators only)",
        description=(
            "The body is the call's payload as OCPP 1.6 spells it; it is checked against "
            "the action's JSON schema before it is sent (400 otherwise). The answer is the "
            "station's CALLRESULT payload, as the station sent it."
        ),
        parameters=[IDENTITY, OCPP_ACTION],
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, **COMMAND_ERRORS},
        examples=OCPP_EXAMPLES,
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"ocpp/(?P<ocpp_action>[A-Za-z]{1,40})",
        permission_classes=[AdminOnly],
        parser_classes=[JSONParser],
    )
    def ocpp(self, request, identity: str, ocpp_action: str):
        if ocpp_action not in protocol.CS_TO_CP_ACTIONS:
            raise NotFound(
                f"{ocpp_action} is not an action a central system sends in OCPP 1.6.",
                code="unknown_action",
            )
        station = self._station()
        if not isinstance(request.data, dict):
            raise ValidationError({"payload": ["The body must be a JSON object."]})
        payload = dict(request.data)
        return Response(self._send(station, commands.Command(ocpp_action, payload)))
