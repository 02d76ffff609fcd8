from datetime import UTC, datetime

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.central_system.reservations import reservation_cancel
from apps.central_system.station_security import (
    station_key_rotate,
    station_security_profile_upgrade,
)
from apps.energy.selectors import station_setpoints
from apps.stations.models import (
    Connector,
    MeterSample,
    OcppMessage,
    Reservation,
    Station,
    Transaction,
)
from apps.stations.selectors import station_presence
from apps.stations.services import (
    STATION_SETTINGS,
    ConnectorSpec,
    station_create,
    station_delete,
    station_install,
    station_refuse,
    station_update,
)
from evce_site.admin import (
    ReadOnlyAdmin,
    ServiceAdminMixin,
    form_values,
    formset_written_by_service,
    validation_messages,
)
from evce_site.admin_display import hot_state_display


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
class StationAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """Stations are written through their services: the state changes by the actions
    (install, refuse, delete), which log, check their rules and tell the station."""

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
    actions = ["install", "refuse", "rotate_key", "upgrade_to_profile_1", "upgrade_to_profile_2"]
    readonly_fields = (
        "state",
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
        "connection",
        "authentication_sync",
        "load_management",
    )

    @hot_state_display(description=_("connection"))
    def connection(self, station: Station) -> str:
        """Online or not, by the one online rule, and since when the station was last heard."""
        presence = station_presence(station.identity)
        if not presence.connected:
            return _("offline (not connected)")
        last_seen = (
            timezone.localtime(datetime.fromtimestamp(presence.last_seen_s, tz=UTC))
            if presence.last_seen_s is not None
            else None
        )
        text = _("online") if presence.is_online() else _("offline (silent)")
        if last_seen is not None:
            text += " — " + _("last message %(at)s") % {
                "at": last_seen.strftime("%Y-%m-%d %H:%M:%S")
            }
        if presence.remote_addr:
            text += f" — {presence.remote_addr}"
        return text

    @hot_state_display(description=_("load management"))
    def load_management(self, station: Station) -> str:
        """Each connector's setpoint, why, and whether the station applied it."""
        setpoints = station_setpoints(station.identity)
        if not setpoints:
            return _("no session")
        parts = []
        for connector_id, item in sorted(setpoints.items()):
            value = (
                f"{item.setpoint_w / 1000:g} kW"
                if item.setpoint_w is not None
                else f"{item.setpoint_a:g} A"
            )
            why = str(item.reason)
            if item.limiting_zone_id is not None:
                why += f", zone {item.limiting_zone_id}"
                if item.limiting_phase is not None:
                    why += f" L{int(item.limiting_phase)}"
            text = f"#{connector_id}: {value} ({why})"
            if item.held and item.wanted_a is not None:
                text += " — " + _("asked for %(wanted)g A") % {"wanted": item.wanted_a}
            if not item.applied:
                text += " — " + _("not applied: %(result)s") % {"result": item.delivery}
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

    def get_readonly_fields(self, request, obj=None):
        # The identity names the station on the wire: set once, when it is declared.
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "identity") if obj is not None else fields

    def save_model(self, request, obj, form, change):
        values = form_values(form, STATION_SETTINGS)
        if change:
            station_update(Station(pk=obj.pk), user=request.user, **values)
        else:
            created = station_create(
                identity=form.cleaned_data["identity"], user=request.user, **values
            )
            obj.pk = created.pk

    def save_formset(self, request, form, formset, change):
        if formset.model is not Connector:
            return super().save_formset(request, form, formset, change)
        # The connectors are the station's configuration: one service call for all of them.
        specs = []
        for connector_form in formset.forms:
            data = connector_form.cleaned_data
            if not data or data.get("DELETE") or data.get("connector_id") is None:
                continue
            specs.append(
                ConnectorSpec(
                    connector_id=data["connector_id"],
                    phase_wiring=data["phase_wiring"],
                    current_type=data["current_type"],
                    max_current_a=data.get("max_current_a"),
                    max_power_w=data.get("max_power_w"),
                )
            )
        station_update(
            Station(pk=form.instance.pk),
            user=request.user,
            connectors=specs,
            replace_connectors=True,
        )
        formset_written_by_service(formset)

    def service_delete(self, request, obj):
        station_delete(obj, user=request.user)

    def _each(self, request, queryset, service, done_message) -> None:
        """Run ``service`` on each station; refusals are shown per station, the others go on."""
        done = 0
        for station in queryset:
            try:
                service(station)
            except ValidationError as exc:
                for line in validation_messages(exc):
                    self.message_user(request, f"{station.identity}: {line}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, done_message(done), messages.SUCCESS)

    @admin.action(description=_("Install the selected stations (with their name and zone)"))
    def install(self, request, queryset):
        def install_one(station: Station) -> None:
            station_install(
                station,
                name=station.name,
                zone=station.zone,
                auth_group=station.auth_group,
                vip=station.vip,
                user=request.user,
            )

        self._each(
            request,
            queryset,
            install_one,
            lambda n: (
                ngettext("%(count)d station installed.", "%(count)d stations installed.", n)
                % {"count": n}
            ),
        )

    @admin.action(description=_("Refuse the selected stations"))
    def refuse(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda station: station_refuse(station, user=request.user),
            lambda n: (
                ngettext("%(count)d station refused.", "%(count)d stations refused.", n)
                % {"count": n}
            ),
        )

    @admin.action(description=_("Give the selected stations a new authorization key"))
    def rotate_key(self, request, queryset):
        def rotate_one(station: Station) -> None:
            status = station_key_rotate(station, user=request.user)
            if status != "Accepted":
                raise ValidationError(
                    _("not changed, the station answered %(status)s") % {"status": status}
                )

        self._each(
            request,
            queryset,
            rotate_one,
            lambda n: (
                ngettext(
                    "%(count)d station took a new key.", "%(count)d stations took a new key.", n
                )
                % {"count": n}
            ),
        )

    def _upgrade(self, request, queryset, profile: int) -> None:
        def upgrade_one(station: Station) -> None:
            status = station_security_profile_upgrade(station, profile, user=request.user)
            if status != "Accepted":
                raise ValidationError(
                    _("not changed, the station answered %(status)s") % {"status": status}
                )

        self._each(
            request,
            queryset,
            upgrade_one,
            lambda n: (
                ngettext(
                    "%(count)d station moved to security profile %(profile)d.",
                    "%(count)d stations moved to security profile %(profile)d.",
                    n,
                )
                % {"count": n, "profile": profile}
            ),
        )

    @admin.action(description=_("Raise the selected stations to security profile 1"))
    def upgrade_to_profile_1(self, request, queryset):
        self._upgrade(request, queryset, 1)

    @admin.action(description=_("Raise the selected stations to security profile 2"))
    def upgrade_to_profile_2(self, request, queryset):
        self._upgrade(request, queryset, 2)


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    """Reservations are made and cancelled through their services (they talk to the station)."""

    list_display = (
        "id",
        "station",
        "connector_id",
        "id_tag",
        "expires_at",
        "status",
        "station_answer",
        "transaction",
    )
    list_filter = ("status",)
    search_fields = ("=id", "station__identity", "id_tag")
    readonly_fields = [f.name for f in Reservation._meta.fields]
    actions = ["cancel"]

    @admin.action(description=_("Cancel the selected reservations"))
    def cancel(self, request, queryset):
        for reservation in queryset.select_related("station"):
            try:
                reservation_cancel(reservation=reservation, user=request.user)
            except ValidationError as exc:
                for line in validation_messages(exc):
                    self.message_user(request, f"#{reservation.pk}: {line}", messages.ERROR)


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
