from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.meters.modbus.client import MeterError
from apps.meters.models import Meter, MeterModel, MeterRecord
from apps.meters.selectors import meter_state
from apps.meters.services import (
    METER_SETTINGS,
    meter_delete,
    meter_model_delete,
    meter_model_save,
    meter_read_once,
    meter_save,
)
from evce_site.admin import ReadOnlyAdmin, ServiceAdminMixin, form_values
from evce_site.admin_display import hot_state_display


@admin.register(MeterModel)
class MeterModelAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = ("name", "description", "builtin")
    list_filter = ("builtin",)
    search_fields = ("name", "description")

    def get_readonly_fields(self, request, obj=None):
        # Built-in models ship with evce: copy one into a custom model to change it.
        if obj is not None and obj.builtin:
            return ("name", "description", "register_map")
        return ()

    def has_delete_permission(self, request, obj=None):
        return obj is None or not obj.builtin

    def save_model(self, request, obj, form, change):
        model = meter_model_save(
            MeterModel(pk=obj.pk) if change else None,
            name=form.cleaned_data["name"],
            description=form.cleaned_data.get("description", ""),
            register_map=form.cleaned_data["register_map"],
            user=request.user,
        )
        obj.pk = model.pk

    def service_delete(self, request, obj):
        meter_model_delete(obj, user=request.user)


@admin.register(Meter)
class MeterAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = (
        "name",
        "model",
        "connection_type",
        "address_display",
        "is_reporting",
        "enabled",
        "live_state",
    )
    list_filter = ("connection_type", "is_reporting", "enabled", "model")
    search_fields = ("name", "host", "serial_device")
    actions = ["test_connection"]
    readonly_fields = ("live_state",)
    fieldsets = (
        (None, {"fields": ("name", "model", "is_reporting", "enabled", "timeout_ms")}),
        (_("Polling"), {"fields": ("live_state",)}),
        ("Modbus TCP", {"fields": ("connection_type", "host", "port", "unit_id")}),
        ("Modbus RTU", {"fields": ("serial_device", "baudrate", "bytesize", "parity", "stopbits")}),
    )

    def save_model(self, request, obj, form, change):
        values = form_values(form, METER_SETTINGS)
        meter, _created = meter_save(
            Meter(pk=obj.pk) if change else None, user=request.user, **values
        )
        obj.pk = meter.pk

    def service_delete(self, request, obj):
        meter_delete(obj, user=request.user)

    @hot_state_display(description=_("state"))
    def live_state(self, meter: Meter) -> str:
        """What the poller last got: state, failures, and how old the last good values are."""
        current = meter_state(meter.pk)
        now = timezone.now()
        text = current.status
        if current.failures:
            text += ", " + _("%(count)d failed polls") % {"count": current.failures}
        age_s = current.age_s(now)
        if age_s is not None:
            text += ", " + _("values %(age).1f s old") % {"age": age_s}
            currents = current.currents_a
            if currents is not None:
                text += " (" + " / ".join(f"{c:.1f} A" for c in currents) + ")"
        text += " — " + (_("usable") if current.is_usable(now) else _("not usable"))
        if current.error and current.failures:
            text += f" — {current.error}"
        return text

    @admin.action(description=_("Test connection (read once)"))
    def test_connection(self, request, queryset):
        for meter in queryset.select_related("model")[:20]:
            try:
                reading = meter_read_once(meter)
            except MeterError as exc:
                self.message_user(request, f"{meter.name}: {exc}", messages.ERROR)
                continue
            currents = ", ".join("n/a" if c is None else f"{c:.1f} A" for c in reading.currents_a)
            self.message_user(request, f"{meter.name}: connected — {currents}", messages.SUCCESS)


@admin.register(MeterRecord)
class MeterRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "meter",
        "at",
        "current_l1_a",
        "current_l2_a",
        "current_l3_a",
        "power_total_kw",
        "energy_delivered_kwh",
    )
    list_filter = ("meter",)
    date_hierarchy = "at"
    deletable = True
