"""Password and username rules of evce (SPEC §1)."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

PASSWORD_MIN_LENGTH = 12
PASSWORD_SPECIALS = "@$!%?&"
RESERVED_USERNAMES = frozenset({"root", "admin", "administrator"})


def password_problems(password: str) -> list[str]:
    """Every rule that ``password`` breaks, as messages for the user."""
    problems = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(_("at least %(n)d characters") % {"n": PASSWORD_MIN_LENGTH})
    if not re.search(r"[a-z]", password):
        problems.append(_("a lower-case letter"))
    if not re.search(r"[A-Z]", password):
        problems.append(_("an upper-case letter"))
    if not re.search(r"[0-9]", password):
        problems.append(_("a digit"))
    if not any(c in PASSWORD_SPECIALS for c in password):
        problems.append(_("a special character among %(chars)s") % {"chars": PASSWORD_SPECIALS})
    return problems


class EvcePasswordValidator:
    """Django password validator enforcing the rules of :func:`password_problems`."""

    def validate(self, password: str, user=None) -> None:
        problems = password_problems(password)
        if problems:
            raise ValidationError(
                _("The password needs %(rules)s.") % {"rules": ", ".join(problems)},
                code="password_rules",
            )

    def get_help_text(self) -> str:
        return _(
            "At least %(n)d characters with a lower-case letter, an upper-case letter, "
            "a digit and a special character among %(chars)s."
        ) % {"n": PASSWORD_MIN_LENGTH, "chars": PASSWORD_SPECIALS}


def validate_username_not_reserved(value: str) -> None:
    if value.strip().lower() in RESERVED_USERNAMES:
        raise ValidationError(
            _("The user name %(name)s is reserved; choose another.") % {"name": value},
            code="reserved_username",
        )
