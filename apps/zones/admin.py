from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.energy.selectors import zone_figures
from apps.zones.models import EbmsReduction, ExternalInput, TouPeriod, TouSlot, Zone
from apps.zones.services import (
    EXTERNAL_INPUT_SETTINGS,
    TOU_PERIOD_SETTINGS,
    ZONE_SETTINGS,
    external_input_delete,
    external_input_save,
    tou_period_delete,
    tou_period_save,
    zone_create,
    zone_delete,
    zone_reduction_clear,
    zone_reduction_set,
    zone_update,
)
from evce_site.admin import ServiceAdminMixin, form_values, formset_written_by_service
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
class ZoneAdmin(ServiceAdminMixin, admin.ModelAdmin):
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

    def save_model(self, request, obj, form, change):
        values = form_values(form, ZONE_SETTINGS)
        if change:
            zone_update(Zone(pk=obj.pk), user=request.user, **values)
        else:
            obj.pk = zone_create(user=request.user, **values).pk

    def save_formset(self, request, form, formset, change):
        # Sub-zones are zones: each goes through the zone services.
        for sub_form in formset.forms:
            data = sub_form.cleaned_data
            if not data:
                continue
            sub_zone = data.get("id")
            if data.get("DELETE"):
                if sub_zone is not None:
                    zone_delete(sub_zone, user=request.user)
                continue
            if not sub_form.has_changed():
                continue
            values = {**form_values(sub_form, ZONE_SETTINGS), "parent": form.instance}
            if sub_zone is None:
                zone_create(user=request.user, **values)
            else:
                zone_update(sub_zone, user=request.user, **values)
        formset_written_by_service(formset)

    def service_delete(self, request, obj):
        zone_delete(obj, user=request.user)


class TouSlotInline(admin.TabularInline):
    model = TouSlot
    extra = 1


@admin.register(TouPeriod)
class TouPeriodAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = ("name", "enabled", "days", "max_percent")
    list_filter = ("enabled",)
    search_fields = ("name",)
    filter_horizontal = ("zones",)
    inlines = [TouSlotInline]

    def save_model(self, request, obj, form, change):
        period, _created = tou_period_save(
            TouPeriod(pk=obj.pk) if change else None,
            user=request.user,
            **form_values(form, TOU_PERIOD_SETTINGS),
        )
        obj.pk = period.pk

    def save_related(self, request, form, formsets, change):
        # The slots and zones are the period's: one service call sets both.
        slots = [
            (data["start"], data["end"])
            for formset in formsets
            for data in (f.cleaned_data for f in formset.forms)
            if data and not data.get("DELETE") and data.get("start") is not None
        ]
        tou_period_save(
            TouPeriod(pk=form.instance.pk),
            user=request.user,
            slots=slots,
            zones=form.cleaned_data.get("zones", []),
        )
        for formset in formsets:
            formset_written_by_service(formset)

    def service_delete(self, request, obj):
        tou_period_delete(obj, user=request.user)


@admin.register(ExternalInput)
class ExternalInputAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = ("number", "name", "enabled", "percent", "kind", "device", "address", "active")
    list_filter = ("enabled", "kind", "active")
    # Whether an input is active is read from its device (or set through the API).
    readonly_fields = ("active",)

    def save_model(self, request, obj, form, change):
        entry, _created = external_input_save(
            ExternalInput(pk=obj.pk) if change else None,
            user=request.user,
            **form_values(form, EXTERNAL_INPUT_SETTINGS),
        )
        obj.pk = entry.pk

    def service_delete(self, request, obj):
        external_input_delete(obj, user=request.user)


@admin.register(EbmsReduction)
class EbmsReductionAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """A reduction is set (replacing the zone's previous one) or cleared, never edited."""

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
    fields = ("zone", "percent", "current_a", "valid_until", "description")
    actions = ["clear"]

    def has_change_permission(self, request, obj=None):
        return obj is None

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        reduction = zone_reduction_set(user=request.user, **form.cleaned_data)
        obj.pk, obj.created_at = reduction.pk, reduction.created_at

    @admin.action(description=_("Clear the reductions of the selected entries' zones"))
    def clear(self, request, queryset):
        cleared = sum(
            zone_reduction_clear(zone=zone, user=request.user)
            for zone in {reduction.zone for reduction in queryset.select_related("zone")}
        )
        self.message_user(
            request,
            ngettext("%(count)d reduction cleared.", "%(count)d reductions cleared.", cleared)
            % {"count": cleared},
            messages.SUCCESS,
        )
