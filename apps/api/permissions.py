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
