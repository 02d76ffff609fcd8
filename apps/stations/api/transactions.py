"""``/api/v2/transactions``: charging data records (SPEC §2.4), their export, and the
actions on a running session (remote stop, force stop)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.exceptions import ErrorSerializer, StateConflict
from apps.api.filters import QueryParams, time_parameter
from apps.api.pagination import CursorPagination
from apps.api.permissions import RemoteAction
from apps.api.renderers import CsvRenderer
from apps.central_system import commands
from apps.central_system.services import station_command_send
from apps.stations.api.actions import COMMAND_ERRORS, AcceptedAnswerSerializer
from apps.stations.cdrs import CdrFilter, cdr_export_batches
from apps.stations.models import Transaction
from apps.stations.selectors import station_by_identity, transaction_by_id, transactions_filtered
from apps.stations.services import transaction_force_stop

STATUSES = ["charging", "suspendedev", "suspendedevse", "finishing", "finished"]


class TransactionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    station_identity = serializers.CharField(help_text="Box identity, kept if it is deleted.")
    station_name = serializers.CharField()
    connector_id = serializers.IntegerField()
    id_tag = serializers.CharField(help_text="The card, or the tag of a remote start.")
    card_comment = serializers.SerializerMethodField()
    vip = serializers.BooleanField()
    ongoing = serializers.BooleanField(source="is_ongoing")
    status = serializers.SerializerMethodField()
    started_at = serializers.DateTimeField(
        allow_null=True, help_text="Null only for a stop whose start never reached evce."
    )
    stopped_at = serializers.DateTimeField(allow_null=True)
    duration_s = serializers.SerializerMethodField()
    charging_duration_s = serializers.IntegerField(help_text="Time spent in Charging (s).")
    meter_start_wh = serializers.IntegerField(allow_null=True)
    meter_stop_wh = serializers.IntegerField(allow_null=True)
    energy_wh = serializers.IntegerField()
    stop_reason = serializers.CharField(help_text="As the station gave it (OCPP Reason).")
    forced_stop = serializers.BooleanField(help_text="Closed by evce without the station.")
    phases_used = serializers.IntegerField(allow_null=True)
    setpoint_current_a = serializers.FloatField(source="setpoint_a", allow_null=True)
    consumption_current_a = serializers.FloatField(source="consumption_a", allow_null=True)
    tou_energy_wh = serializers.DictField(
        child=serializers.IntegerField(),
        help_text='Energy inside each TOU period (by name), and outside any as "NoPeriod".',
    )
    reservation_id = serializers.IntegerField(allow_null=True)

    def get_card_comment(self, record: Transaction) -> str:
        return record.card.comment if record.card is not None else ""

    @extend_schema_field(serializers.ChoiceField(choices=STATUSES))
    def get_status(self, record: Transaction) -> str:
        return record.status.lower()

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_duration_s(self, record: Transaction) -> int | None:
        if record.started_at is None:
            return None
        end = record.stopped_at or timezone.now()
        return int((end - record.started_at).total_seconds())


FILTERS = [
    time_parameter("from", "Sessions started at or after this time."),
    time_parameter("to", "Sessions started before this time (a date: that day included)."),
    OpenApiParameter("station", OpenApiTypes.STR, description="Box identity."),
    OpenApiParameter("id_tag", OpenApiTypes.STR, description="Card id tag."),
    OpenApiParameter("ongoing", OpenApiTypes.BOOL, description="Only running (or stopped) ones."),
]
TRANSACTION_ID = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Transaction id."
)
STOPPED = OpenApiResponse(ErrorSerializer, description="The session is already stopped.")


def _filtered(request):
    params = QueryParams(request)
    records = transactions_filtered(
        started_from=params.time("from"),
        started_before=params.time("to", end=True),
        station_identity=params.text("station"),
        id_tag=params.text("id_tag"),
        ongoing=params.boolean("ongoing"),
    )
    params.check()
    return records


class TransactionCursor(CursorPagination):
    """Newest record first; within a time range, newest start first.

    A range reads the index on the start time (ids follow arrival, not start:
    a late StopTransaction or a station back online stores old sessions with
    new ids, and a year-old range would otherwise walk the whole table).
    """

    def get_ordering(self, request, queryset, view):
        if request.query_params.get("from") or request.query_params.get("to"):
            return ("-started_at", "-id")
        return ("-id",)


@extend_schema_view(
    list=extend_schema(summary="List charging data records, newest first", parameters=FILTERS),
    retrieve=extend_schema(summary="A charging data record", parameters=[TRANSACTION_ID]),
)
class TransactionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = TransactionSerializer
    pagination_class = TransactionCursor
    lookup_field = "id"
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        return _filtered(self.request)

    def get_object(self) -> Transaction:
        record = transaction_by_id(int(self.kwargs["id"]))
        if record is None:
            raise NotFound()
        return record

    @extend_schema(
        summary="Ask the station to stop a session",
        description="Sends RemoteStopTransaction; the station then stops it (or not).",
        parameters=[TRANSACTION_ID],
        request=None,
        responses={200: AcceptedAnswerSerializer, **COMMAND_ERRORS, 409: STOPPED},
    )
    @action(
        detail=True, methods=["post"], url_path="remote-stop", permission_classes=[RemoteAction]
    )
    def remote_stop(self, request, id: str):
        record = self.get_object()
        if not record.is_ongoing:
            raise StateConflict("This session is already stopped.")
        answer = station_command_send(
            identity=record.station_identity,
            command=commands.remote_stop(record.pk),
            user=request.user,
        )
        return Response({"status": str(answer.get("status", "")).lower()})

    @extend_schema(
        summary="Close a session the station no longer reports, without the station",
        parameters=[TRANSACTION_ID],
        request=None,
        responses={200: TransactionSerializer, 404: COMMAND_ERRORS[404], 409: STOPPED},
    )
    @action(detail=True, methods=["post"], url_path="force-stop", permission_classes=[RemoteAction])
    def force_stop(self, request, id: str):
        record = self.get_object()
        if not record.is_ongoing:
            raise StateConflict("This session is already stopped.")
        try:
            record = transaction_force_stop(record, user=request.user)
        except DjangoValidationError as error:
            raise StateConflict(" ".join(error.messages)) from None
        return Response(TransactionSerializer(transaction_by_id(record.pk)).data)


class TransactionExportView(APIView):
    """``transactions/export.csv``: the CSV of SPEC §2.4, streamed in constant memory."""

    renderer_classes = [CsvRenderer, JSONRenderer]

    @extend_schema(
        summary="Export charging data records as CSV (streamed)",
        description=(
            "Columns: transaction id, station name, connector, id tag, card comment, start, "
            "stop, duration, charging duration, energy kWh, stop reason, box identity, "
            "NoPeriod kWh, then one column per TOU period."
        ),
        parameters=FILTERS,
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The CSV file."),
            400: OpenApiResponse(ErrorSerializer, description="Invalid filters."),
        },
    )
    def get(self, request):
        params = QueryParams(request)
        since, until = params.time("from"), params.time("to", end=True)
        identity, id_tag = params.text("station"), params.text("id_tag")
        params.check()
        station_ids = None
        if identity:
            station = station_by_identity(identity)
            station_ids = frozenset({station.pk} if station is not None else ())
        filters = CdrFilter(since=since, until=until, station_ids=station_ids, id_tag=id_tag or "")
        response = StreamingHttpResponse(
            cdr_export_batches(filters), content_type="text/csv; charset=utf-8"
        )
        name = f"transactions-{timezone.now():%Y%m%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
