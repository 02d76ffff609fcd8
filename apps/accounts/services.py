"""User workflows: every change of an account is validated, atomic and in the device log."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.authtoken.models import Token

from apps.accounts.models import User
from apps.devicelog.models import EventCategory, EventLevel
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


class LoginRefusal(StrEnum):
    """Why a login was refused; the UI words each one for the user."""

    INVALID = "invalid"  # unknown user, wrong password or inactive account: not told apart
    LOCKED = "locked"
    NO_UI_ACCESS = "no_ui_access"


class LoginRefused(Exception):
    """A refused login; ``locked_until`` is set when the refusal is a lock."""

    def __init__(self, reason: LoginRefusal, *, locked_until: datetime | None = None):
        super().__init__(reason.value)
        self.reason = reason
        self.locked_until = locked_until


def user_login(
    *,
    username: str,
    password: str,
    max_attempts: int,
    lock_s: int,
    remote_addr: str | None = None,
    now: datetime | None = None,
) -> User:
    """Check a web-UI login with the lockout of SPEC §1; the user, or ``LoginRefused``.

    ``max_attempts`` wrong passwords in a row lock the account for ``lock_s``
    seconds (both from the site settings, read by the caller); while locked,
    even the right password is refused and does not extend the lock. Once the
    period is over the count starts again. Users whose role has no web UI
    (ebms) are refused with their own reason, after their password was checked,
    so the message tells nothing to someone who does not know it. Every
    outcome is a security event in the device log.
    """
    now = now or timezone.now()
    user, refusal = _login_checked(username, password, max_attempts, lock_s, remote_addr, now)
    if refusal is not None:
        raise LoginRefused(refusal, locked_until=user.locked_until if user else None)
    return user


def user_api_login(
    *,
    username: str,
    password: str,
    max_attempts: int,
    lock_s: int,
    remote_addr: str | None = None,
    now: datetime | None = None,
) -> User:
    """Check HTTP Basic credentials of the REST API with the same lockout as the web UI.

    Failures and locks are counted and logged as for :func:`user_login`; a
    success is not logged (a building management system polls every few
    seconds) and every role may use the API.
    """
    now = now or timezone.now()
    user, refusal = _login_checked(
        username, password, max_attempts, lock_s, remote_addr, now, api=True
    )
    if refusal is not None:
        raise LoginRefused(refusal, locked_until=user.locked_until if user else None)
    return user


@transaction.atomic
def _login_checked(
    username: str,
    password: str,
    max_attempts: int,
    lock_s: int,
    remote_addr: str | None,
    now: datetime,
    *,
    api: bool = False,
) -> tuple[User | None, LoginRefusal | None]:
    # The count and the log are written whatever the outcome: the caller raises after commit.
    user = User.objects.select_for_update().filter(username=username).first()

    def log(event: str, message: str, level=EventLevel.INFO, **data) -> None:
        device_log_write(
            category=EventCategory.SECURITY,
            event=event,
            message=message,
            level=level,
            user=user,
            remote_addr=remote_addr,
            data={"username": username, **data},
        )

    if user is None:
        log(
            "login_failed",
            _("Failed login as unknown user %(name)s.") % {"name": username},
            EventLevel.WARNING,
            reason="unknown_user",
        )
        return None, LoginRefusal.INVALID
    if user.locked_until is not None and now < user.locked_until:
        log(
            "login_failed",
            _("Login of %(name)s refused: locked.") % {"name": username},
            EventLevel.WARNING,
            reason="locked",
        )
        return user, LoginRefusal.LOCKED
    if user.locked_until is not None:  # the lock is over: a fresh count
        user.locked_until = None
        user.failed_login_count = 0
    if not (user.is_active and user.check_password(password)):
        user.failed_login_count += 1
        reason = "wrong_password" if user.is_active else "inactive"
        log(
            "login_failed",
            _("Failed login as %(name)s.") % {"name": username},
            EventLevel.WARNING,
            reason=reason,
            failed_count=user.failed_login_count,
        )
        refusal = LoginRefusal.INVALID
        if user.failed_login_count >= max_attempts:
            user.locked_until = now + timedelta(seconds=lock_s)
            log(
                "login_locked",
                _("Login of %(name)s locked for %(s)d s after %(n)d failed attempts.")
                % {"name": username, "s": lock_s, "n": user.failed_login_count},
                EventLevel.WARNING,
                lock_s=lock_s,
                failed_count=user.failed_login_count,
            )
            refusal = LoginRefusal.LOCKED
        user.save(update_fields=["failed_login_count", "locked_until"])
        return user, refusal
    if api:  # written only when there is a count or an old lock to clear
        User.objects.filter(pk=user.pk).exclude(failed_login_count=0, locked_until=None).update(
            failed_login_count=0, locked_until=None
        )
        return user, None
    user.failed_login_count = 0
    user.save(update_fields=["failed_login_count", "locked_until"])
    if not user.may_use_ui:
        log(
            "login_failed",
            _("Login of %(name)s refused: the role %(role)s has no web UI.")
            % {"name": username, "role": user.role},
            EventLevel.WARNING,
            reason="no_ui_access",
        )
        return user, LoginRefusal.NO_UI_ACCESS
    log("login_succeeded", _("%(name)s logged in.") % {"name": username})
    return user, None


@transaction.atomic
def user_password_change(
    user: User, *, old_password: str, new_password: str, remote_addr: str | None = None
) -> User:
    """A user changes their own password; ``ValidationError`` (nothing changed) on a bad one.

    The old password must be right and the new one follow the rules of SPEC §1.
    """
    current = User.objects.select_for_update().get(pk=user.pk)
    if not current.check_password(old_password):
        raise ValidationError({"old_password": _("The current password is wrong.")})
    try:
        validate_password(new_password, current)
    except ValidationError as exc:
        raise ValidationError({"new_password": exc.messages}) from None
    current.set_password(new_password)
    current.save(update_fields=["password"])
    device_log_write(
        category=EventCategory.SECURITY,
        event="password_changed",
        message=_("%(name)s changed their password.") % {"name": current.username},
        user=current,
        remote_addr=remote_addr,
        data={"username": current.username},
    )
    return current


@transaction.atomic
def user_token_renew(user: User, *, by=None) -> str:
    """A new REST API token for ``user`` (the previous one stops working); the key, once.

    The key itself is never logged: the device log says who got a token, and from whom.
    """
    Token.objects.filter(user=user).delete()
    token = Token.objects.create(user=user)
    _log(
        "api_token_created",
        _("New API token for %(name)s.") % {"name": user.username},
        by,
        {"username": user.username},
    )
    return token.key


@transaction.atomic
def user_token_revoke(user: User, *, by=None) -> bool:
    """Revoke ``user``'s REST API token; False when there was none."""
    deleted, _by_model = Token.objects.filter(user=user).delete()
    if deleted:
        _log(
            "api_token_revoked",
            _("API token of %(name)s revoked.") % {"name": user.username},
            by,
            {"username": user.username},
        )
    return bool(deleted)


@transaction.atomic
def user_unlock(user: User, *, by=None) -> bool:
    """Lift a login lock and forget the failed attempts; False when there was nothing to lift."""
    current = User.objects.select_for_update().get(pk=user.pk)
    if current.locked_until is None and current.failed_login_count == 0:
        return False
    current.locked_until = None
    current.failed_login_count = 0
    current.save(update_fields=["locked_until", "failed_login_count"])
    _log(
        "user_unlocked",
        _("User %(name)s unlocked.") % {"name": current.username},
        by,
        {"username": current.username},
    )
    return True
