from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class EventCategory(models.TextChoices):
    SECURITY = "security", _("Security")
    COMMUNICATION = "communication", _("Communication")
    LOAD_MANAGEMENT = "load_management", _("Load management")
    CONFIGURATION = "configuration", _("Configuration")


class EventLevel(models.TextChoices):
    INFO = "info", _("Information")
    WARNING = "warning", _("Warning")
    ERROR = "error", _("Error")


class DeviceLogEntry(models.Model):
    """One event of the device log: what happened, when, to what, by whom.

    Entries are written once and never edited; references to stations and
    zones are kept as plain text too so an entry stays readable after the
    object it names was deleted.
    """

    at = models.DateTimeField(_("time"), db_index=True)
    category = models.CharField(_("category"), max_length=20, choices=EventCategory.choices)
    level = models.CharField(
        _("level"), max_length=10, choices=EventLevel.choices, default=EventLevel.INFO
    )
    event = models.CharField(_("event"), max_length=64, help_text=_("Machine-readable event code."))
    message = models.TextField(_("message"))
    station_identity = models.CharField(_("station"), max_length=30, blank=True, db_index=True)
    zone_name = models.CharField(_("zone"), max_length=64, blank=True)
    username = models.CharField(_("user"), max_length=150, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    remote_addr = models.GenericIPAddressField(_("remote address"), null=True, blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("device log entry")
        verbose_name_plural = _("device log")
        # The table kept its name when the model moved here from the maintenance app.
        db_table = "maintenance_devicelogentry"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["category", "-at"], name="devicelog_category_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.category} {self.event}"
