"""How the API knows its caller: a token, or HTTP Basic with an evce user (SPEC §9)."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``; a locked account is refused like a wrong key."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        _refuse_if_locked(user)
        return user, token


class BasicAuthentication(authentication.BasicAuthentication):
    """HTTP Basic with an evce user; the login lock of SPEC §1 holds here too."""

    def authenticate_credentials(self, userid, password, request=None):
        user, auth = super().authenticate_credentials(userid, password, request)
        _refuse_if_locked(user)
        return user, auth


def _refuse_if_locked(user) -> None:
    locked_until = getattr(user, "locked_until", None)
    if locked_until is not None and locked_until > timezone.now():
        raise exceptions.AuthenticationFailed(_("This account is locked for a while."))


class BasicScheme(OpenApiAuthenticationExtension):
    """Describes evce's HTTP Basic in the schema as plain HTTP Basic."""

    target_class = BasicAuthentication
    name = "basicAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic"}
