"""``/api/v2/inputs``: the external inputs that cap every zone (SPEC §3.5); a building
management system switches those whose source is the API."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from apps.api.exceptions import ErrorSerializer, StateConflict
from apps.zones.models import ExternalInput, InputKind
from apps.zones.selectors import external_input_by_id, external_inputs_listed
from apps.zones.services import external_input_apply


class InputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    name = serializers.CharField()
    enabled = serializers.BooleanField()
    percent = serializers.IntegerField(
        help_text="While active, every zone is capped at this % of its maximum (0: no charging)."
    )
    source = serializers.ChoiceField(
        source="kind",
        choices=[k.value for k in InputKind],
        help_text="api: set through this API; otherwise a Modbus bit evce reads.",
    )
    active = serializers.BooleanField(help_text="Last known state.")


class InputWriteSerializer(serializers.Serializer):
    active = serializers.BooleanField()


INPUT_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Input id.")


@extend_schema_view(
    list=extend_schema(summary="List the external inputs"),
    retrieve=extend_schema(summary="An external input", parameters=[INPUT_ID]),
)
class InputViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = InputSerializer
    lookup_field = "id"
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        return external_inputs_listed()

    def get_object(self) -> ExternalInput:
        entry = external_input_by_id(int(self.kwargs["id"]))
        if entry is None:
            raise NotFound()
        return entry

    @extend_schema(
        summary="Switch an input whose source is the API",
        description="Re-allocation follows within one control cycle. Other inputs: 409.",
        parameters=[INPUT_ID],
        request=InputWriteSerializer,
        responses={
            200: InputSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Invalid fields."),
            404: OpenApiResponse(ErrorSerializer, description="Unknown input."),
            409: OpenApiResponse(ErrorSerializer, description="Not an input set by the API."),
        },
        examples=[OpenApiExample("Activate", value={"active": True}, request_only=True)],
    )
    def update(self, request, id: str):
        entry = self.get_object()
        body = InputWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if entry.kind != InputKind.API:
            raise StateConflict("This input is read from a Modbus device, not set by the API.")
        external_input_apply(entry, body.validated_data["active"], source="api", user=request.user)
        return Response(InputSerializer(self.get_object()).data)
