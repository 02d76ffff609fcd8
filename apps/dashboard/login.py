"""Logging in to evce's web pages: the site's lockout settings and the words of a refusal."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.services import LoginRefusal, LoginRefused, user_login
from apps.siteconfig.models import SiteSettings


def remote_addr(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def refusal_message(refused: LoginRefused) -> str:
    if refused.reason == LoginRefusal.LOCKED:
        seconds = 0
        if refused.locked_until is not None:
            seconds = max(1, int((refused.locked_until - timezone.now()).total_seconds() + 0.999))
        return _("Too many failed logins: this account is locked. Try again in %(s)d seconds.") % {
            "s": seconds
        }
    if refused.reason == LoginRefusal.NO_UI_ACCESS:
        return _(
            "This account is for the building management system: it reaches the REST API "
            "only and cannot log in to the web interface."
        )
    return _("Wrong user name or password.")


def site_login(username: str, password: str, request=None):
    """:func:`user_login` with the site's lockout settings; ``LoginRefused`` as it raises."""
    site = SiteSettings.load()
    return user_login(
        username=username,
        password=password,
        max_attempts=site.login_max_attempts,
        lock_s=site.login_lock_s,
        remote_addr=remote_addr(request),
    )
