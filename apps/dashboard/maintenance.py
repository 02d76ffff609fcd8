"""The maintenance pages (SPEC §10): the device log for admins and operators, the device
report for admins."""

from __future__ import annotations

import tempfile

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from apps.dashboard.record_forms import DateRangeForm, PlainSelect
from apps.dashboard.streaming import csv_download
from apps.dashboard.views import ui_user_required
from apps.devicelog.models import EventCategory, EventLevel
from apps.devicelog.selectors import device_log_csv, device_log_filtered, device_log_page
from apps.maintenance.reports import device_report_filename, device_report_write
from apps.stations.models import Station
from apps.zones.models import Zone

PAGING_KEYS = ("older", "newer")
# A report past this size goes to a temporary file rather than memory.
REPORT_MEMORY_BYTES = 8 * 1024 * 1024


class DeviceLogFilterForm(DateRangeForm):
    """The filters of ``/maintenance/log/`` and the page cursor (an entry id)."""

    category = forms.ChoiceField(
        label=gettext_lazy("Type"),
        required=False,
        choices=[("", gettext_lazy("all types")), *EventCategory.choices],
    )
    level = forms.ChoiceField(
        label=gettext_lazy("Level (at least)"),
        required=False,
        choices=[("", gettext_lazy("all levels")), *EventLevel.choices],
    )
    station = forms.ModelChoiceField(
        label=gettext_lazy("Station"),
        required=False,
        queryset=Station.objects.order_by("identity"),
        to_field_name="identity",
        empty_label=gettext_lazy("all stations"),
        widget=PlainSelect,
    )
    zone = forms.ModelChoiceField(
        label=gettext_lazy("Zone"),
        required=False,
        queryset=Zone.objects.order_by("name"),
        empty_label=gettext_lazy("all zones"),
    )
    user = forms.CharField(label=gettext_lazy("User"), required=False, max_length=150)
    q = forms.CharField(label=gettext_lazy("Text"), required=False, max_length=200)
    older = forms.CharField(required=False, widget=forms.HiddenInput)
    newer = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.order_fields(["category", "level", "station", "zone", "user", "from", "to", "q"])

    def _clean_cursor(self, name: str) -> int | None:
        text = self.cleaned_data.get(name)
        if not text:
            return None
        if not text.isdigit() or len(text) > 18:
            raise ValidationError(
                _("This page link is not valid: start again from the first page.")
            )
        return int(text)

    def clean_older(self) -> int | None:
        return self._clean_cursor("older")

    def clean_newer(self) -> int | None:
        return self._clean_cursor("newer")

    def entries(self):
        """The matching entries, through the one read model of the device log."""
        data = self.cleaned_data
        zone_names, zone_stations = None, ()
        if data.get("zone") is not None:
            zone_names, zone_stations = _zone_scope(data["zone"])
        station = data.get("station")
        return device_log_filtered(
            since=self.since(),
            until=self.until(),
            category=data.get("category") or None,
            min_level=data.get("level") or None,
            station_identity=station.identity if station is not None else None,
            zone_names=zone_names,
            zone_station_identities=zone_stations,
            username=data.get("user", "").strip() or None,
            text=data.get("q", "").strip() or None,
        )


def _zone_scope(zone: Zone) -> tuple[set[str], list[str]]:
    """The names of a zone and its sub-zones, and the identities of their stations."""
    children: dict[int | None, list[tuple[int, str]]] = {}
    for pk, parent_id, name in Zone.objects.values_list("id", "parent_id", "name"):
        children.setdefault(parent_id, []).append((pk, name))
    ids, names, todo = set(), {zone.name}, [zone.pk]
    while todo:
        current = todo.pop()
        ids.add(current)
        for pk, name in children.get(current, ()):
            names.add(name)
            todo.append(pk)
    stations = Station.objects.filter(zone_id__in=ids).values_list("identity", flat=True)
    return names, list(stations)


def _query_without_paging(request) -> str:
    query = request.GET.copy()
    for key in PAGING_KEYS:
        query.pop(key, None)
    return query.urlencode()


def _render_log(request, form: DeviceLogFilterForm):
    page = None
    if form.is_valid():
        page = device_log_page(
            form.entries(),
            older_than=form.cleaned_data.get("older"),
            newer_than=form.cleaned_data.get("newer"),
        )
    paging = any(request.GET.get(key) for key in PAGING_KEYS)
    return render(
        request,
        "dashboard/maintenance/log.html",
        {
            "form": form,
            "page": page,
            "query": _query_without_paging(request),
            # New entries appear at the top of the newest page only: a page the
            # user walked to stays put.
            "tail": page is not None and not paging,
        },
        status=200 if page is not None else 400,
    )


@ui_user_required
@require_GET
def device_log_view(request):
    return _render_log(request, DeviceLogFilterForm(request.GET))


@ui_user_required
@require_GET
def device_log_export_view(request):
    """Every entry the page's filters match, as CSV, streamed."""
    form = DeviceLogFilterForm(request.GET)
    if not form.is_valid():
        return _render_log(request, form)
    name = f"device-log-{timezone.localtime():%Y%m%d-%H%M%S}.csv"
    return csv_download(request, device_log_csv(form.entries()), name)


@ui_user_required
@require_GET
def device_report_view(request):
    """The device report (a zip); administrators only: it describes the whole installation."""
    if not request.user.is_admin:
        raise PermissionDenied
    # Closed by the response once sent.
    archive = tempfile.SpooledTemporaryFile(max_size=REPORT_MEMORY_BYTES)  # noqa: SIM115
    device_report_write(archive)
    archive.seek(0)
    response = FileResponse(
        archive,
        as_attachment=True,
        filename=device_report_filename(),
        content_type="application/zip",
    )
    response["Cache-Control"] = "no-store"
    return response
