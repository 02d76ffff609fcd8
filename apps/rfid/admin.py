from django.contrib import admin
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.rfid.cards_csv import cards_csv_export
from apps.rfid.models import AuthGroup, Card
from apps.rfid.services import (
    auth_group_create,
    auth_group_delete,
    auth_group_update,
    card_create,
    card_update,
    cards_bulk_delete,
    cards_bulk_update,
)
from evce_site.admin import ServiceAdminMixin


@admin.register(AuthGroup)
class AuthGroupAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = ("name", "online_mode", "offline_strategy")
    list_filter = ("online_mode", "offline_strategy")
    search_fields = ("name",)
    fields = ("name", "online_mode", "offline_strategy", "plug_and_charge_id_tag")

    # Writes go through the services so they are logged and reach the stations.
    def save_model(self, request, obj, form, change):
        values = {field: form.cleaned_data[field] for field in self.fields}
        if change:
            auth_group_update(group=AuthGroup(pk=obj.pk), user=request.user, **values)
        else:
            obj.pk = auth_group_create(user=request.user, **values).pk

    def service_delete(self, request, obj):
        auth_group_delete(group=obj, user=request.user)


@admin.register(Card)
class CardAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = (
        "id_tag",
        "authorized",
        "vip",
        "comment",
        "expires_at",
        "registered_at",
        "last_seen_at",
    )
    list_filter = ("authorized", "vip", "groups")
    search_fields = ("id_tag", "comment")
    editable_fields = (
        "id_tag",
        "authorized",
        "vip",
        "comment",
        "groups",
        "parent_id_tag",
        "expires_at",
    )
    fields = (*editable_fields, "registered_at", "last_seen_at")
    readonly_fields = ("registered_at", "last_seen_at")
    filter_horizontal = ("groups",)
    actions = ["authorize", "block", "vip_on", "vip_off", "export_csv"]

    def save_model(self, request, obj, form, change):
        values = {field: form.cleaned_data[field] for field in self.editable_fields}
        if change:
            card_update(card=Card(pk=obj.pk), user=request.user, **values)
        else:
            created = card_create(user=request.user, **values)
            obj.pk, obj.registered_at = created.pk, created.registered_at

    def save_related(self, request, form, formsets, change):
        # The groups were saved by the service with the card.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj):
        cards_bulk_delete(cards=[obj], user=request.user)

    def delete_queryset(self, request, queryset):
        cards_bulk_delete(cards=queryset, user=request.user)

    def _bulk(self, request, queryset, **change):
        count = cards_bulk_update(cards=queryset, user=request.user, **change)
        self.message_user(
            request,
            ngettext("%(count)d card changed.", "%(count)d cards changed.", count)
            % {"count": count},
        )

    @admin.action(description=_("Authorise the selected cards"))
    def authorize(self, request, queryset):
        self._bulk(request, queryset, authorized=True)

    @admin.action(description=_("Block the selected cards"))
    def block(self, request, queryset):
        self._bulk(request, queryset, authorized=False)

    @admin.action(description=_("Set VIP on the selected cards"))
    def vip_on(self, request, queryset):
        self._bulk(request, queryset, vip=True)

    @admin.action(description=_("Remove VIP from the selected cards"))
    def vip_off(self, request, queryset):
        self._bulk(request, queryset, vip=False)

    @admin.action(description=_("Export the selected cards as CSV"))
    def export_csv(self, request, queryset):
        response = StreamingHttpResponse(
            cards_csv_export(cards=queryset), content_type="text/csv; charset=utf-8"
        )
        name = f"cards-{timezone.localdate():%Y%m%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
