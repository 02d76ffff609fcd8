"""The sessions page ``/transactions/`` and the CDR export of SPEC §2.4."""

from __future__ import annotations

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from apps.dashboard.record_forms import TransactionFilterForm
from apps.dashboard.streaming import csv_download
from apps.dashboard.views import ui_user_required
from apps.stations.cdrs import cdr_export_batches, transactions_page

PAGING_KEYS = ("older", "newer")


def _query_without_paging(request) -> str:
    query = request.GET.copy()
    for key in PAGING_KEYS:
        query.pop(key, None)
    return query.urlencode()


def _render_page(request, form: TransactionFilterForm):
    page = None
    if form.is_valid():
        page = transactions_page(
            form.cdr_filter(),
            older_than=form.cleaned_data["older"],
            newer_than=form.cleaned_data["newer"],
        )
    return render(
        request,
        "dashboard/records/transactions.html",
        {
            "form": form,
            "page": page,
            "query": _query_without_paging(request),
            "now": timezone.now(),
        },
        status=200 if page is not None else 400,
    )


@ui_user_required
@require_GET
def transactions_view(request):
    return _render_page(request, TransactionFilterForm(request.GET))


@ui_user_required
@require_GET
def transactions_export_view(request):
    """``?from=YYYY-MM-DD&to=YYYY-MM-DD`` (both optional; the page's other filters apply too).

    Streamed: the header leaves at once, then the records batch by batch.
    """
    form = TransactionFilterForm(request.GET)
    if not form.is_valid():
        return _render_page(request, form)
    first, last = form.cleaned_data.get("from"), form.cleaned_data.get("to")
    name = "cdr"
    if first or last:
        name += f"-{first or 'start'}-{last or timezone.localdate()}"
    chunks = cdr_export_batches(form.cdr_filter())
    return csv_download(request, chunks, f"{name}.csv")
