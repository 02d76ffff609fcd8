"""User workflows: every change of an account is validated, atomic and in the device log."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from apps.accounts.models import User
from apps.devicelog.models import EventCategory
from apps.devicelog.services import (
    device_log_write,
    fields_assign,
    object_save_logged,
    settings_only,
)

# What an administrator sets on an account (the password has its own workflow).
USER_SETTINGS = (
    "username",
    "role",
    "is_active",
    "first_name",
    "last_name",
    "email",
    "language",
    "locked_until",
)


def _log(event: str, message: str, by, data: dict | None = None) -> None:
    device_log_write(
        category=EventCategory.SECURITY, event=event, message=message, user=by, data=data
    )


@transaction.atomic
def user_create(*, username: str, password: str | None, by=None, **values: Any) -> User:
    """Create an account; ``password`` None gives one that cannot log in with a password."""
    settings_only(values, USER_SETTINGS, what="user settings")
    user = User(username=username, **values)
    if password is None:
        user.set_unusable_password()
    else:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from None
        user.set_password(password)
    user.full_clean()
    user.save()
    _log(
        "user_created",
        _("User %(name)s created with role %(role)s.") % {"name": username, "role": user.role},
        by,
        {"username": username, "role": user.role},
    )
    return user


@transaction.atomic
def user_update(user: User, *, by=None, **values: Any) -> User:
    """Change an account's settings; only what really changes is saved and logged."""
    settings_only(values, USER_SETTINGS, what="user settings")
    current = User.objects.select_for_update().get(pk=user.pk)
    changes = fields_assign(current, values)
    object_save_logged(
        current,
        changes,
        category=EventCategory.SECURITY,
        event="user_updated",
        message=_("User %(name)s changed: %(fields)s.")
        % {"name": current.username, "fields": ", ".join(changes)},
        user=by,
        data={"username": current.username, "changes": changes},
    )
    return current


@transaction.atomic
def user_delete(user: User, *, by=None) -> None:
    """Delete an account (what it did stays in the log, under its name)."""
    username = user.username
    User.objects.filter(pk=user.pk).delete()
    _log("user_deleted", _("User %(name)s deleted.") % {"name": username}, by)
