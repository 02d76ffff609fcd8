"""The pages of the web UI: they parse, check the role, call one service or selector, answer."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.services import LoginRefused, user_password_change
from apps.dashboard.forms import LoginForm, PasswordChangeForm
from apps.dashboard.login import refusal_message, remote_addr, site_login
from apps.dashboard.selectors import zone_rows

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
def home_view(request):
    # The station counts come with every page (context_processors.status_bar).
    return render(request, "dashboard/home.html", {"zones": zone_rows()})
