from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.energy.selectors import zone_figures
from apps.zones.models import EbmsReduction, ExternalInput, TouPeriod, TouSlot, Zone
from evce_site.admin_display import hot_state_display


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
    readonly_fields = ("live_figures",)

    @hot_state_display(description=_("live figures"))
    def live_figures(self, zone: Zone) -> str:
        """The zone's figures from the last allocation, per phase L1 / L2 / L3."""
        figures = zone_figures(zone.pk)
        if figures is None:
            return _("not allocated yet")

        live = figures.allocation

        def amps(values) -> str:
            return " / ".join(f"{v:.1f}" for v in values) + " A"

        parts = [
            _("limit %(limit)s") % {"limit": f"{live.limit_a:g} A"},
            _("other loads %(amps)s") % {"amps": amps(live.other_loads_a)}
            if live.other_loads_a is not None
            else _("other loads not measured"),
            _("available %(amps)s") % {"amps": amps(live.available_a)},
            _("allocated %(amps)s") % {"amps": amps(live.allocated_a)},
            _("reserved %(amps)s") % {"amps": amps(live.reserved_a)},
            _("%(count)d sessions") % {"count": live.session_count},
        ]
        if live.meter_lost:
            parts.append(_("meter lost: degraded setpoint"))
        for reduction in figures.reductions:
            parts.append(_("reduced: %(what)s") % {"what": reduction.description})
        if figures.computed_at is not None:
            at = timezone.localtime(figures.computed_at).strftime("%Y-%m-%d %H:%M:%S")
            parts.append(_("computed %(at)s") % {"at": at})
        return "; ".join(str(p) for p in parts)


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
