from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.energy.services import station_setpoints
from apps.rfid.services import announce_groups_changed
from apps.stations.models import Connector, MeterSample, OcppMessage, Station, Transaction


class ReadOnlyAdmin(admin.ModelAdmin):
    """For what stations report: shown to support staff, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ConnectorInline(admin.TabularInline):
    model = Connector
    fields = (
        "connector_id",
        "current_type",
        "max_current_a",
        "max_power_w",
        "phase_wiring",
        "status",
    )
    readonly_fields = ("status",)
    extra = 0


@admin.register(Station)
class StationAdmin(admin.ModelAdmin):
    list_display = (
        "identity",
        "name",
        "state",
        "zone",
        "auth_group",
        "vip",
        "status",
        "vendor",
        "model",
        "last_seen_at",
    )
    list_filter = ("state", "zone", "auth_group", "vip", "security_profile", "vendor")
    search_fields = ("identity", "name", "serial_number", "vendor", "model")
    inlines = [ConnectorInline]
    exclude = ("authorization_key_hash",)
    readonly_fields = (
        "vendor",
        "model",
        "serial_number",
        "firmware_version",
        "iccid",
        "imsi",
        "meter_type",
        "meter_serial_number",
        "status",
        "ip_address",
        "last_boot_at",
        "last_seen_at",
        "created_at",
        "installed_at",
        "authentication_sync",
        "load_management",
    )

    @admin.display(description=_("load management"))
    def load_management(self, station: Station) -> str:
        """Each connector's setpoint, why, and whether the station applied it."""
        try:
            setpoints = station_setpoints(station.identity) if station.pk else {}
        except Exception:  # Redis down: the page must still open
            return _("unavailable")
        if not setpoints:
            return _("no session")
        parts = []
        for connector_id, item in sorted(setpoints.items()):
            value = (
                f"{item['setpoint_w'] / 1000:g} kW"
                if item.get("setpoint_w") is not None
                else f"{item['setpoint_a']:g} A"
            )
            text = f"#{connector_id}: {value} ({item['reason']})"
            if item.get("delivery") not in (None, "Accepted"):
                text += " — " + _("not applied: %(result)s") % {"result": item["delivery"]}
            parts.append(text)
        return "; ".join(parts)

    @admin.display(description=_("authentication on the station"))
    def authentication_sync(self, station: Station) -> str:
        state = getattr(station, "auth_state", None) if station.pk else None
        if state is None:
            return _("not synchronised yet")
        parts = [
            _("local list version %(version)d, %(count)d cards")
            % {"version": state.list_version, "count": len(state.list_entries)}
            if state.list_supported is not False
            else _("no local list")
        ]
        if state.rejected_keys:
            parts.append(
                _("refused: %(keys)s")
                % {"keys": ", ".join(f"{k} ({v})" for k, v in sorted(state.rejected_keys.items()))}
            )
        if state.last_error:
            parts.append(state.last_error)
        return "; ".join(parts)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "auth_group" in form.changed_data:
            announce_groups_changed(group_ids=[], station_ids=[obj.pk])


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "station_identity",
        "connector_id",
        "id_tag",
        "started_at",
        "stopped_at",
        "energy_wh",
        "status",
        "stop_reason",
    )
    list_filter = ("status", "forced_stop", "vip")
    search_fields = ("=id", "station_identity", "station_name", "id_tag")
    date_hierarchy = "started_at"
    show_full_result_count = False  # counting a million CDRs on every page is wasted work


@admin.register(MeterSample)
class MeterSampleAdmin(ReadOnlyAdmin):
    list_display = (
        "sampled_at",
        "station",
        "connector_id",
        "transaction",
        "current_l1_a",
        "current_l2_a",
        "current_l3_a",
        "current_unknown_phase_a",
        "power_w",
        "energy_wh",
    )
    list_select_related = ("station",)
    raw_id_fields = ("transaction", "station")
    show_full_result_count = False


@admin.register(OcppMessage)
class OcppMessageAdmin(ReadOnlyAdmin):
    list_display = ("at", "station_identity", "direction", "message_type", "action", "unique_id")
    list_filter = ("direction", "message_type", "action")
    search_fields = ("station_identity", "unique_id", "action")
    date_hierarchy = "at"
    show_full_result_count = False
