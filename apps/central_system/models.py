from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class CommandStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    ANSWERED = "answered", _("Answered")
    CALL_ERROR = "call_error", _("Refused by the station (CALLERROR)")
    TIMEOUT = "timeout", _("No answer in time")
    OFFLINE = "offline", _("Station offline")
    INVALID = "invalid", _("Invalid command")


class CommandResult(models.Model):
    """A command sent to a station in the background, and what came of it.

    Background callers (tasks queued by the UI or the API) have no one
    waiting on the answer: it is kept here, keyed by ``request_id``, for
    whoever asked to read. A station's own "Rejected" is an *answered*
    command; its status is in ``response``.
    """

    request_id = models.UUIDField(_("request"), default=uuid.uuid4, unique=True, editable=False)
    station_identity = models.CharField(_("box identity"), max_length=30, db_index=True)
    action = models.CharField(_("action"), max_length=40)
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=CommandStatus.choices, default=CommandStatus.PENDING
    )
    response = models.JSONField(_("response"), default=dict, blank=True)
    error_code = models.CharField(_("error code"), max_length=40, blank=True)
    error_description = models.CharField(_("error description"), max_length=255, blank=True)
    requested_at = models.DateTimeField(_("requested"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("requested by"),
    )

    class Meta:
        verbose_name = _("station command")
        verbose_name_plural = _("station commands")
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} → {self.station_identity} ({self.status})"
