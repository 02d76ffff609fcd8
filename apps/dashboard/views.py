"""The pages of the web UI: they parse, check the role, call one service or selector, answer."""

from __future__ import annotations

import csv
import json
from functools import wraps
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.services import LoginRefused, user_password_change
from apps.dashboard.actions import ACTION_LABELS, RemoteAction, RemoteActionForm, remote_action_run
from apps.dashboard.forms import LoginForm, OcppLogFilterForm, PasswordChangeForm
from apps.dashboard.login import refusal_message, remote_addr, site_login
from apps.dashboard.selectors import overview, start_cards, station_detail, zone_detail
from apps.stations.models import Station
from apps.stations.selectors import (
    LogCursor,
    OcppLogFilter,
    ocpp_log_actions,
    ocpp_log_chunk,
    ocpp_log_page,
    station_by_identity,
)

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def ui_user_required(view):
    """Logged-in admins and operators only: others go to the login page, ebms gets 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.may_use_ui:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


@require_http_methods(["GET", "POST"])
def login_view(request):
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = ""
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = site_login(form.cleaned_data["username"], form.cleaned_data["password"], request)
        except LoginRefused as refused:
            form.add_error(None, refusal_message(refused))
        else:
            login(request, user, backend=MODEL_BACKEND)
            return redirect(next_url or "dashboard:home")
    return render(request, "dashboard/login.html", {"form": form, "next": next_url})


@require_POST
def logout_view(request):
    logout(request)
    return redirect("dashboard:login")


@ui_user_required
@require_http_methods(["GET", "POST"])
def password_change_view(request):
    form = PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_password_change(
                request.user,
                old_password=form.cleaned_data["old_password"],
                new_password=form.cleaned_data["new_password"],
                remote_addr=remote_addr(request),
            )
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, messages)
        else:
            update_session_auth_hash(request, user)
            return render(request, "dashboard/password_change.html", {"form": None, "done": True})
    return render(request, "dashboard/password_change.html", {"form": form, "done": False})


@ui_user_required
@require_GET
def home_view(request):
    # The station counts come with every page (context_processors.status_bar).
    return render(request, "dashboard/home.html", {"overview": overview()})


@ui_user_required
@require_GET
def zone_view(request, zone_id: int):
    detail = zone_detail(zone_id)
    if detail is None:
        raise Http404(_("No such zone."))
    context = {
        "detail": detail,
        "ancestors": list(reversed(detail.zone.ancestors())),
        "overview": overview(zone_id=zone_id),
    }
    return render(request, "dashboard/zone.html", context)


# --- the station view -------------------------------------------------------------------


def _station(identity: str) -> Station:
    station = station_by_identity(identity)
    if station is None:
        raise Http404(_("No station has this box identity."))
    return station


def _log_filter(form: OcppLogFilterForm) -> tuple[OcppLogFilter, LogCursor | None]:
    """The filters that are valid (a bad one is reported on the page and left out)."""
    form.is_valid()
    data = form.cleaned_data
    return (
        OcppLogFilter(
            action=data.get("action") or "",
            direction=data.get("direction") or "",
            since=data.get("since"),
            until=data.get("until"),
        ),
        data.get("after"),
    )


def _station_page(request, station: Station, *, action_form=None, status: int = 200):
    detail = station_detail(station.identity)
    if detail is None:
        raise Http404(_("No station has this box identity."))
    log_form = OcppLogFilterForm(request.GET, actions=ocpp_log_actions())
    log_filter, after = _log_filter(log_form)
    page = ocpp_log_page(station.identity, log_filter, after=after)
    kept = {k: v for k, v in request.GET.items() if k != "after" and v}
    context = {
        "station": station,
        "detail": detail,
        "log_form": log_form,
        "log": page,
        "log_query": urlencode(kept),
        "next_query": (
            urlencode({**kept, "after": page.next_cursor.token()}) if page.next_cursor else ""
        ),
        "first_page": after is None,
        "action_form": action_form,
        "actions": RemoteAction,
        "action_labels": ACTION_LABELS,
        "cards": start_cards(),
    }
    return render(request, "dashboard/station.html", context, status=status)


@ui_user_required
@require_GET
def station_view(request, identity: str):
    return _station_page(request, _station(identity))


CSV_CHUNK_ROWS = 2000
CSV_COLUMNS = ["time_utc", "direction", "message_type", "message_id", "action", "payload"]


class _Echo:
    """A file-like object whose ``write`` hands back the line (csv writes into it)."""

    def write(self, value: str) -> str:
        return value


async def _log_csv_lines(identity: str, log_filter: OcppLogFilter):
    """The CSV, a chunk at a time: memory stays flat however long the log is."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    after = None
    while True:
        rows, after = await sync_to_async(ocpp_log_chunk)(
            identity, log_filter, after=after, size=CSV_CHUNK_ROWS
        )
        yield "".join(
            writer.writerow(
                [
                    at.isoformat(),
                    direction,
                    message_type,
                    unique_id,
                    action,
                    json.dumps(payload, separators=(",", ":"), sort_keys=True),
                ]
            )
            for at, _id, direction, message_type, unique_id, action, payload in rows
        )
        if after is None:
            return


@ui_user_required
@require_GET
def station_log_csv_view(request, identity: str):
    station = _station(identity)
    form = OcppLogFilterForm(request.GET, actions=ocpp_log_actions())
    log_filter, _after = _log_filter(form)
    if form.errors:
        return _station_page(request, station, status=400)
    response = StreamingHttpResponse(
        _log_csv_lines(station.identity, log_filter), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="ocpp-log-{station.pk}.csv"'
    return response


@ui_user_required
@require_POST
def station_action_view(request, identity: str):
    station = _station(identity)
    form = RemoteActionForm(request.POST, station=station)
    if not form.is_valid():
        return _station_page(request, station, action_form=form, status=400)
    question = form.confirmation()
    if question and not form.cleaned_data.get("confirmed"):
        return render(
            request,
            "dashboard/station_confirm.html",
            {
                "station": station,
                "form": form,
                "question": question,
                "label": ACTION_LABELS[form.chosen],
            },
        )
    try:
        outcome = remote_action_run(form, user=request.user)
    except ValidationError as exc:
        form.add_error(None, exc)
        return _station_page(request, station, action_form=form, status=400)
    messages.success(request, outcome.message)
    return redirect(reverse("dashboard:station", args=[station.identity]) + "#commands")
