"""How the API knows its caller: a token, or HTTP Basic with an evce user (SPEC §9).

The login lockout of SPEC §1 holds for both: wrong Basic passwords count
towards the lock like wrong logins on the web UI, and a locked account is
refused whatever credential it presents.
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from apps.accounts.services import LoginRefusal, LoginRefused, user_api_login
from apps.siteconfig.models import SiteSettings


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``; a locked account is refused like a wrong key."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        locked_until = user.locked_until
        if locked_until is not None and locked_until > timezone.now():
            raise exceptions.AuthenticationFailed(_("This account is locked for a while."))
        return user, token


class BasicAuthentication(authentication.BasicAuthentication):
    """HTTP Basic with an evce user, through the login lockout of the accounts service."""

    def authenticate_credentials(self, userid, password, request=None):
        site = SiteSettings.load()
        try:
            user = user_api_login(
                username=userid,
                password=password,
                max_attempts=site.login_max_attempts,
                lock_s=site.login_lock_s,
                remote_addr=request.META.get("REMOTE_ADDR") if request is not None else None,
            )
        except LoginRefused as refused:
            if refused.reason == LoginRefusal.LOCKED:
                raise exceptions.AuthenticationFailed(
                    _("This account is locked for a while.")
                ) from None
            raise exceptions.AuthenticationFailed(_("Invalid user name or password.")) from None
        return user, None


class BasicScheme(OpenApiAuthenticationExtension):
    """Describes evce's HTTP Basic in the schema as plain HTTP Basic."""

    target_class = BasicAuthentication
    name = "basicAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic"}
