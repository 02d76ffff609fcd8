"""Who may do what through the API (SPEC §9): roles, not Django permissions."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from apps.accounts.models import Role

READERS = frozenset({Role.ADMIN, Role.OPERATOR, Role.EBMS})
WRITERS = frozenset({Role.ADMIN, Role.EBMS})


class ApiRole(BasePermission):
    """Every role reads; ``ebms`` and ``admin`` also write (operators use remote actions only)."""

    message = "Your role may not change this through the API."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        role = getattr(user, "role", None)
        allowed = READERS if request.method in SAFE_METHODS else WRITERS
        return role in allowed


class RemoteAction(BasePermission):
    """Remote actions on stations and sessions: every role of the API, operators included."""

    message = "Your role may not act on stations through the API."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.role in READERS)


class AdminOnly(BasePermission):
    """What only an administrator may do, e.g. a raw OCPP call."""

    message = "Only an administrator may do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.role == Role.ADMIN)
