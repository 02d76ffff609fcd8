from django.contrib import admin

from apps.devicelog.models import DeviceLogEntry


@admin.register(DeviceLogEntry)
class DeviceLogEntryAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
