from __future__ import annotations

from django.contrib.auth.models import AbstractUser, UserManager
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.accounts.validators import validate_username_not_reserved


class Role(models.TextChoices):
    ADMIN = "admin", _("Administrator")
    OPERATOR = "operator", _("Operator")
    EBMS = "ebms", _("Building management system")


# The roles that may log in to the web UI; ebms reaches the REST API only (SPEC §1).
UI_ROLES = frozenset({Role.ADMIN, Role.OPERATOR})


class EvceUserManager(UserManager):
    def create_superuser(self, username, email=None, password=None, **extra_fields):
        extra_fields.setdefault("role", Role.ADMIN)
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    """A person or system that uses evce, with exactly one role.

    admin configures everything; operator runs the dashboard and remote
    actions; ebms only reaches the REST API. Failed logins are counted here so
    a lock survives a restart and holds across web processes.
    """

    username = models.CharField(
        _("user name"),
        max_length=150,
        unique=True,
        validators=[UnicodeUsernameValidator(), validate_username_not_reserved],
        error_messages={"unique": _("A user with that user name already exists.")},
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.OPERATOR)
    failed_login_count = models.PositiveIntegerField(_("failed logins in a row"), default=0)
    locked_until = models.DateTimeField(_("login locked until"), null=True, blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True)

    objects = EvceUserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role__in=[r.value for r in Role]), name="user_role_valid"
            ),
        ]

    def save(self, *args, **kwargs):
        # Django's admin relies on is_staff / is_superuser; derive them from
        # the role so there is a single source of truth. Only admins reach the
        # Django admin; operators use the dashboard.
        self.is_staff = self.role == Role.ADMIN
        self.is_superuser = self.role == Role.ADMIN
        super().save(*args, **kwargs)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def may_use_ui(self) -> bool:
        return self.role in UI_ROLES
