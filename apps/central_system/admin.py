from django.contrib import admin

from apps.central_system.models import CommandResult


@admin.register(CommandResult)
class CommandResultAdmin(admin.ModelAdmin):
    """Commands sent to stations and their outcome: a record, never edited."""

    list_display = ("requested_at", "station_identity", "action", "status", "error_code")
    list_filter = ("status", "action")
    search_fields = ("station_identity", "request_id")
    readonly_fields = [f.name for f in CommandResult._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
