from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.siteconfig.models import SiteSettings
from apps.siteconfig.services import site_settings_update
from evce_site.admin import ServiceAdminMixin


@admin.register(SiteSettings)
class SiteSettingsAdmin(ServiceAdminMixin, admin.ModelAdmin):
    exclude = ("shared_authorization_key_hash",)
    fieldsets = (
        (None, {"fields": ("name", "supervision_mode", "setup_completed")}),
        (
            _("Energy management"),
            {
                "fields": (
                    "floor_mode",
                    "priority",
                    "production_mode",
                    "nominal_voltage_v",
                    "optimisation_enabled",
                    "reduction_trigger_a",
                    "reduction_gap_a",
                    "increase_gap_a",
                    "idle_suspension_enabled",
                    "idle_after_s",
                    "idle_wake_up_interval_s",
                )
            },
        ),
        (
            _("Communication"),
            {
                "fields": (
                    "meter_poll_interval_ms",
                    "meter_lost_after_polls",
                    "heartbeat_interval_s",
                    "meter_value_sample_interval_s",
                )
            },
        ),
        (_("Limits"), {"fields": ("max_zones", "max_zone_levels")}),
        (_("Security"), {"fields": ("login_max_attempts", "login_lock_s", "session_timeout_s")}),
        (_("Retention"), {"fields": ("ocpp_log_retention_days", "meter_sample_retention_days")}),
    )

    def save_model(self, request, obj, form, change):
        site = site_settings_update(user=request.user, **form.cleaned_data)
        obj.pk = site.pk

    def has_add_permission(self, request):
        return not SiteSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False
