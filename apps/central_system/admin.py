from django.contrib import admin

from apps.central_system.models import CommandResult
from evce_site.admin import ReadOnlyAdmin


@admin.register(CommandResult)
class CommandResultAdmin(ReadOnlyAdmin):
    """Commands sent to stations and their outcome: a record, never edited."""

    list_display = ("requested_at", "station_identity", "action", "status", "error_code")
    list_filter = ("status", "action")
    search_fields = ("station_identity", "request_id")
    deletable = True
    readonly_fields = [f.name for f in CommandResult._meta.fields]
