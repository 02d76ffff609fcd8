from django.contrib import admin

from apps.devicelog.models import DeviceLogEntry
from evce_site.admin import ReadOnlyAdmin


@admin.register(DeviceLogEntry)
class DeviceLogEntryAdmin(ReadOnlyAdmin):
    """The device log is written by evce only: read-only here."""

    list_display = (
        "at",
        "category",
        "level",
        "event",
        "station_identity",
        "zone_name",
        "username",
        "message",
    )
    list_filter = ("category", "level", "event")
    search_fields = ("message", "station_identity", "zone_name", "username", "event")
    date_hierarchy = "at"
