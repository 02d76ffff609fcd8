"""``/api/v2/cards``: RFID cards (SPEC §5), written through the rfid services."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from apps.api.exceptions import ErrorSerializer
from apps.api.filters import QueryParams
from apps.rfid.models import Card
from apps.rfid.selectors import auth_groups_by_name, card_by_id_tag, cards_listed
from apps.rfid.services import card_create, card_delete, card_update


class CardSerializer(serializers.Serializer):
    id_tag = serializers.CharField(max_length=20, help_text="OCPP id tag (case-insensitive).")
    authorized = serializers.BooleanField(default=True, help_text="False: the card is blocked.")
    vip = serializers.BooleanField(default=False, help_text="Served first by load management.")
    comment = serializers.CharField(max_length=50, allow_blank=True, default="")
    parent_id_tag = serializers.CharField(max_length=20, allow_blank=True, default="")
    groups = serializers.ListField(
        child=serializers.CharField(max_length=64),
        default=list,
        help_text="Names of the authentication groups whose stations accept the card.",
    )
    registered_at = serializers.DateTimeField(read_only=True)
    last_seen_at = serializers.DateTimeField(read_only=True, allow_null=True)

    def to_representation(self, card: Card) -> dict:
        data = super().to_representation(
            {
                "id_tag": card.id_tag,
                "authorized": card.authorized,
                "vip": card.vip,
                "comment": card.comment,
                "parent_id_tag": card.parent_id_tag,
                "groups": sorted(group.name for group in card.groups.all()),
                "registered_at": card.registered_at,
                "last_seen_at": card.last_seen_at,
            }
        )
        return data

    def validate_groups(self, names: list[str]):
        groups, unknown = auth_groups_by_name(names)
        if unknown:
            raise ValidationError(f"No such group: {', '.join(unknown)}.")
        return groups


ID_TAG = OpenApiParameter("id_tag", OpenApiTypes.STR, OpenApiParameter.PATH, description="Id tag.")
ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid fields, nothing changed."),
    404: OpenApiResponse(ErrorSerializer, description="Unknown card."),
}
EXAMPLE = OpenApiExample(
    "A fleet card",
    value={"id_tag": "04A1B2C3", "comment": "Fleet car 12", "vip": False, "groups": ["Staff"]},
    request_only=True,
)


@extend_schema_view(
    list=extend_schema(
        summary="List RFID cards by id tag",
        parameters=[
            OpenApiParameter("search", OpenApiTypes.STR, description="In id tag or comment."),
            OpenApiParameter("authorized", OpenApiTypes.BOOL, description="False: blocked."),
        ],
    ),
    retrieve=extend_schema(
        summary="An RFID card",
        parameters=[ID_TAG],
        responses={200: CardSerializer, 404: ERRORS[404]},
    ),
    create=extend_schema(
        summary="Register an RFID card",
        responses={201: CardSerializer, 400: ERRORS[400]},
        examples=[EXAMPLE],
    ),
    partial_update=extend_schema(
        summary="Change an RFID card (only the fields given)",
        parameters=[ID_TAG],
        responses={200: CardSerializer, **ERRORS},
    ),
    destroy=extend_schema(
        summary="Delete an RFID card", parameters=[ID_TAG], responses={204: None, 404: ERRORS[404]}
    ),
)
class CardViewSet(viewsets.GenericViewSet):
    serializer_class = CardSerializer
    lookup_field = "id_tag"
    lookup_value_regex = r"[\x21-\x2e\x30-\x7e]{1,20}"  # printable ASCII but "/"

    def get_queryset(self):
        params = QueryParams(self.request)
        cards = cards_listed(search=params.text("search"), authorized=params.boolean("authorized"))
        params.check()
        return cards

    def get_object(self) -> Card:
        card = card_by_id_tag(self.kwargs["id_tag"])
        if card is None:
            raise NotFound()
        return card

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(CardSerializer(page, many=True).data)

    def retrieve(self, request, id_tag: str):
        return Response(CardSerializer(self.get_object()).data)

    def create(self, request):
        body = CardSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        card = card_create(user=request.user, **body.validated_data)
        return Response(CardSerializer(card_by_id_tag(card.id_tag)).data, status.HTTP_201_CREATED)

    def partial_update(self, request, id_tag: str):
        card = self.get_object()
        body = CardSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        card = card_update(card=card, user=request.user, **body.validated_data)
        return Response(CardSerializer(card_by_id_tag(card.id_tag)).data)

    def destroy(self, request, id_tag: str):
        card_delete(card=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
