from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.rfid.models import AuthGroup
from apps.stations.models import Station
from apps.supervision.models import (
    AuthMode,
    OutboxMessage,
    OutboxState,
    StationCpoPassword,
    Supervision,
    password_bytes,
)
from apps.supervision.services import (
    SETTINGS,
    outbox_retry,
    station_cpo_password_clear,
    station_cpo_password_set,
    supervision_delete,
    supervision_save,
)
from evce_site.admin import ReadOnlyAdmin, ServiceAdminMixin


class PasswordFields(forms.Form):
    """A password typed once, never shown back; ASCII or hex."""

    password = forms.CharField(
        label=_("password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Leave empty to keep the stored password."),
    )
    password_is_hex = forms.BooleanField(
        label=_("password given in hex"), required=False, help_text=_("e.g. 0A1B2C…")
    )

    def password_values(self) -> dict:
        """The service's ``password`` / ``password_hex`` argument, or nothing."""
        password = self.cleaned_data.get("password")
        if not password:
            return {}
        return {
            "password_hex" if self.cleaned_data.get("password_is_hex") else "password": password
        }

    def check_password(self) -> bytes | None:
        values = self.password_values()
        if not values:
            return None
        try:
            return password_bytes(**values)
        except ValidationError as exc:
            self.add_error("password", [m for ms in exc.message_dict.values() for m in ms])
            return None


class SupervisionForm(PasswordFields, forms.ModelForm):
    groups = forms.ModelMultipleChoiceField(
        queryset=AuthGroup.objects.order_by("name"),
        required=False,
        label=_("groups supervised"),
        help_text=_("In the multiple mode, the stations of these groups are relayed to this CPO."),
    )

    class Meta:
        model = Supervision
        fields = SETTINGS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["groups"].initial = list(
                self.instance.assignments.values_list("group_id", flat=True)
            )

    def clean(self):
        cleaned = super().clean()
        given = self.check_password() is not None
        # What the service will store, so the model's own checks judge the same state
        # (this instance is never saved by the form: the service saves).
        if cleaned.get("auth") != AuthMode.SHARED:
            if given:
                self.add_error("password", _("Only shared authentication takes a password."))
            self.instance.password_encrypted = ""
        elif given:
            self.instance.password_encrypted = "(new)"
        return cleaned


@admin.register(Supervision)
class SupervisionAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = SupervisionForm
    list_display = ("name", "url", "auth", "ping_interval_s", "message_timeout_s", "has_password")
    search_fields = ("name", "url")
    fieldsets = (
        (None, {"fields": ("name", "url", "groups")}),
        (
            _("Connection"),
            {
                "fields": (
                    "ping_interval_s",
                    "message_timeout_s",
                    "forward_security_events",
                    "ca_certificate",
                    "max_attempts",
                )
            },
        ),
        (_("Basic authentication"), {"fields": ("auth", "password", "password_is_hex")}),
    )

    @admin.display(boolean=True, description=_("password stored"))
    def has_password(self, obj: Supervision) -> bool:
        return obj.has_password

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in SETTINGS}
        saved, _created = supervision_save(
            Supervision.objects.get(pk=obj.pk) if change else None,
            groups=form.cleaned_data["groups"],
            user=request.user,
            **form.password_values(),
            **values,
        )
        obj.pk = saved.pk

    def save_related(self, request, form, formsets, change):
        """The groups were assigned by the service."""

    def service_delete(self, request, obj):
        supervision_delete(obj, user=request.user)


class StationCpoPasswordForm(PasswordFields, forms.ModelForm):
    class Meta:
        model = StationCpoPassword
        fields = ("station",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "station" in self.fields:  # read-only once the password exists
            self.fields["station"].queryset = Station.objects.order_by("identity")
        if not self.instance.pk:
            self.fields["password"].required = True
            self.fields["password"].help_text = ""

    def clean(self):
        cleaned = super().clean()
        self.check_password()
        return cleaned


@admin.register(StationCpoPassword)
class StationCpoPasswordAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = StationCpoPasswordForm
    list_display = ("station", "changed_at")
    search_fields = ("station__identity", "station__name")
    fields = ("station", "password", "password_is_hex", "changed_at")
    readonly_fields = ("changed_at",)

    def get_readonly_fields(self, request, obj=None):
        return ("station", "changed_at") if obj else ("changed_at",)

    def save_model(self, request, obj, form, change):
        values = form.password_values()
        if values:
            station_cpo_password_set(station=obj.station, user=request.user, **values)

    def service_delete(self, request, obj):
        station_cpo_password_clear(station=obj.station, user=request.user)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = (
        "station",
        "sequence",
        "action",
        "transaction_id",
        "state",
        "attempts",
        "created_at",
        "sent_at",
        "last_error",
    )
    list_filter = ("state", "action")
    search_fields = ("station__identity",)
    list_select_related = ("station",)
    actions = ["retry"]

    @admin.action(description=_("Retry the selected flagged messages"))
    def retry(self, request, queryset):
        count = outbox_retry(messages=queryset.filter(state=OutboxState.FLAGGED), user=request.user)
        self.message_user(
            request,
            ngettext("%(count)d message queued again.", "%(count)d messages queued again.", count)
            % {"count": count},
        )
