from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.zones.models import EbmsReduction, ExternalInput, TouPeriod, TouSlot, Zone


class SubZoneInline(admin.TabularInline):
    model = Zone
    fk_name = "parent"
    fields = ("name", "max_current_a", "meter", "degraded_current_a")
    extra = 0
    verbose_name = _("sub-zone")
    verbose_name_plural = _("sub-zones")
    show_change_link = True


@admin.register(Zone)
class ZoneAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "parent",
        "max_current_a",
        "meter",
        "degraded_current_a",
        "production_meter",
        "meter_net_of_production",
    )
    list_filter = ("parent",)
    search_fields = ("name",)
    autocomplete_fields = ()
    inlines = [SubZoneInline]


class TouSlotInline(admin.TabularInline):
    model = TouSlot
    extra = 1


@admin.register(TouPeriod)
class TouPeriodAdmin(admin.ModelAdmin):
    list_display = ("name", "enabled", "days", "max_percent")
    list_filter = ("enabled",)
    search_fields = ("name",)
    filter_horizontal = ("zones",)
    inlines = [TouSlotInline]


@admin.register(ExternalInput)
class ExternalInputAdmin(admin.ModelAdmin):
    list_display = ("number", "name", "enabled", "percent", "kind", "device", "address", "active")
    list_filter = ("enabled", "kind", "active")


@admin.register(EbmsReduction)
class EbmsReductionAdmin(admin.ModelAdmin):
    list_display = (
        "zone",
        "percent",
        "current_a",
        "created_at",
        "valid_until",
        "cleared_at",
        "created_by",
    )
    list_filter = ("zone",)
    date_hierarchy = "created_at"
    readonly_fields = ("created_by",)
