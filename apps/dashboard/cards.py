"""The RFID cards and authentication groups pages (SPEC §5), for operators and admins.

Every change goes through :mod:`apps.rfid.services` (or its CSV import), as
the admin and the site file do: validated, logged, sent to the stations.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.dashboard.record_forms import (
    BulkAction,
    CardBulkForm,
    CardForm,
    CardImportForm,
    CardSearchForm,
    GroupForm,
    add_service_errors,
)
from apps.dashboard.streaming import csv_download
from apps.dashboard.views import ui_user_required
from apps.rfid.cards_csv import CardCsvError, cards_csv_export, cards_csv_import
from apps.rfid.models import AuthGroup, Card
from apps.rfid.selectors import auth_group_summary, auth_groups_overview, cards_search
from apps.rfid.services import (
    auth_group_create,
    auth_group_delete,
    auth_group_update,
    card_create,
    card_delete,
    card_update,
    cards_bulk_delete,
    cards_bulk_update,
)

CARDS_PER_PAGE = 50


def _search(request) -> tuple[CardSearchForm, object]:
    form = CardSearchForm(request.GET)
    if form.is_valid():
        data = form.cleaned_data
        group = data.get("group")
        cards = cards_search(
            text=data.get("q", "").strip(),
            group_id=group.pk if group else None,
            state=data.get("state", ""),
        )
    else:
        cards = Card.objects.none()
    return form, cards


def _back(request) -> str:
    """The cards page the form came from (its search and page), or the first one."""
    back = request.POST.get("back", "")
    if back.startswith("/cards/") and url_has_allowed_host_and_scheme(back, None):
        return back
    return reverse("dashboard:cards")


def _query_without_page(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@ui_user_required
@require_GET
def cards_view(request):
    form, cards = _search(request)
    page = Paginator(cards, CARDS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "dashboard/records/cards.html",
        {
            "search": form,
            "page": page,
            "bulk": CardBulkForm(),
            "query": _query_without_page(request),
        },
        status=200 if form.is_valid() else 400,
    )


@ui_user_required
@require_http_methods(["GET", "POST"])
def card_create_view(request):
    form = CardForm(request.POST or None, creating=True)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            card = card_create(
                id_tag=data["id_tag"].strip(),
                authorized=False,
                vip=data["vip"],
                comment=data["comment"],
                groups=data["groups"],
                user=request.user,
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                _("Card %(tag)s created. It is blocked until you authorise it.")
                % {"tag": card.id_tag},
            )
            return redirect("dashboard:cards")
    return render(request, "dashboard/records/card_form.html", {"form": form, "card": None})


@ui_user_required
@require_http_methods(["GET", "POST"])
def card_edit_view(request, pk: int):
    card = get_object_or_404(Card, pk=pk)
    initial = {
        "id_tag": card.id_tag,
        "authorized": card.authorized,
        "vip": card.vip,
        "comment": card.comment,
        "groups": list(card.groups.all()),
    }
    form = CardForm(request.POST or None, initial=initial, creating=False)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            card_update(
                card=card,
                id_tag=data["id_tag"].strip(),
                authorized=data["authorized"],
                vip=data["vip"],
                comment=data["comment"],
                groups=data["groups"],
                user=request.user,
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Card %(tag)s saved.") % {"tag": card.id_tag})
            return redirect("dashboard:cards")
    return render(request, "dashboard/records/card_form.html", {"form": form, "card": card})


@ui_user_required
@require_http_methods(["GET", "POST"])
def card_delete_view(request, pk: int):
    card = get_object_or_404(Card, pk=pk)
    if request.method == "POST":
        card_delete(card=card, user=request.user)
        messages.success(request, _("Card %(tag)s deleted.") % {"tag": card.id_tag})
        return redirect("dashboard:cards")
    return render(request, "dashboard/records/card_delete.html", {"cards": [card], "bulk": None})


def _bulk_apply(form: CardBulkForm, user) -> str:
    """Run the chosen bulk action through the card services; the sentence to show."""
    data = form.cleaned_data
    cards, action, group = data["cards"], data["action"], data.get("group")
    if action == BulkAction.DELETE:
        count = cards_bulk_delete(cards=cards, user=user)
        return ngettext("%(count)d card deleted.", "%(count)d cards deleted.", count) % {
            "count": count
        }
    changes: dict = {}
    if action in (BulkAction.AUTHORIZE, BulkAction.BLOCK):
        changes["authorized"] = action == BulkAction.AUTHORIZE
    elif action in (BulkAction.VIP_ON, BulkAction.VIP_OFF):
        changes["vip"] = action == BulkAction.VIP_ON
    elif action == BulkAction.ADD:
        changes["add_groups"] = [group]
    elif action == BulkAction.REMOVE:
        changes["remove_groups"] = [group]
    elif action == BulkAction.MOVE:
        # Into this group and out of every other one.
        changes["add_groups"] = [group]
        changes["remove_groups"] = list(AuthGroup.objects.exclude(pk=group.pk))
    count = cards_bulk_update(cards=cards, user=user, **changes)
    return ngettext("%(count)d card changed.", "%(count)d cards changed.", count) % {"count": count}


@ui_user_required
@require_POST
def cards_bulk_view(request):
    """Apply an action to the ticked cards; a deletion asks for confirmation first."""
    form = CardBulkForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(_back(request))
    data = form.cleaned_data
    if data["action"] == BulkAction.DELETE and not data["confirmed"]:
        return render(
            request,
            "dashboard/records/card_delete.html",
            {"cards": list(data["cards"].order_by("id_tag")), "bulk": form},
        )
    try:
        messages.success(request, _bulk_apply(form, request.user))
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    return redirect(_back(request))


@ui_user_required
@require_http_methods(["GET", "POST"])
def cards_import_view(request):
    form = CardImportForm(request.POST or None, request.FILES or None)
    line_errors: list[str] = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            result = cards_csv_import(
                data=upload.read(),
                group=form.cleaned_data["group"],
                source=upload.name,
                user=request.user,
            )
        except CardCsvError as error:
            line_errors = error.errors
        else:
            messages.success(
                request,
                _(
                    "File imported: %(created)d cards created, %(updated)d updated, "
                    "%(unchanged)d unchanged."
                )
                % {
                    "created": result.created,
                    "updated": result.updated,
                    "unchanged": result.unchanged,
                },
            )
            return redirect("dashboard:cards")
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "dashboard/records/cards_import.html",
        {"form": form, "line_errors": line_errors},
        status=status,
    )


@ui_user_required
@require_GET
def cards_export_view(request):
    """All cards, or those of the search (``?q=&group=&state=``), in the card file format."""
    _form, cards = _search(request)
    return csv_download(request, cards_csv_export(cards=cards), "cards.csv")


# --- groups ------------------------------------------------------------------


@ui_user_required
@require_GET
def groups_view(request):
    return render(request, "dashboard/records/groups.html", {"groups": auth_groups_overview()})


@ui_user_required
@require_http_methods(["GET", "POST"])
def group_create_view(request):
    form = GroupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            group = auth_group_create(**form.cleaned_data, user=request.user)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Group %(name)s created.") % {"name": group.name})
            return redirect("dashboard:groups")
    return render(request, "dashboard/records/group_form.html", {"form": form, "group": None})


@ui_user_required
@require_http_methods(["GET", "POST"])
def group_edit_view(request, pk: int):
    group = get_object_or_404(AuthGroup, pk=pk)
    form = GroupForm(
        request.POST or None,
        initial={
            "name": group.name,
            "online_mode": group.online_mode,
            "offline_strategy": group.offline_strategy,
            "plug_and_charge_id_tag": group.plug_and_charge_id_tag,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            auth_group_update(group=group, **form.cleaned_data, user=request.user)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Group %(name)s saved.") % {"name": group.name})
            return redirect("dashboard:groups")
    return render(
        request,
        "dashboard/records/group_form.html",
        {"form": form, "group": auth_group_summary(group.pk)},
    )


@ui_user_required
@require_POST
def group_delete_view(request, pk: int):
    group = get_object_or_404(AuthGroup, pk=pk)
    try:
        auth_group_delete(group=group, user=request.user)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
        return redirect("dashboard:group_edit", pk=pk)
    messages.success(request, _("Group %(name)s deleted.") % {"name": group.name})
    return redirect("dashboard:groups")
