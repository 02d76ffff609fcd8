from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _
from rest_framework.authtoken.models import TokenProxy

from apps.accounts.models import User
from apps.accounts.services import (
    USER_SETTINGS,
    user_create,
    user_delete,
    user_token_renew,
    user_token_revoke,
    user_update,
)
from evce_site.admin import ServiceAdminMixin, form_values


@admin.register(User)
class EvceUserAdmin(ServiceAdminMixin, UserAdmin):
    list_display = ("username", "role", "email", "is_active", "locked_until", "last_login")
    list_filter = ("role", "is_active")
    search_fields = ("username", "email", "first_name", "last_name")
    readonly_fields = ("last_login", "date_joined", "failed_login_count")
    fieldsets = (
        (None, {"fields": ("username", "password", "role", "is_active")}),
        (_("Personal information"), {"fields": ("first_name", "last_name", "email", "language")}),
        (
            _("Login"),
            {"fields": ("failed_login_count", "locked_until", "last_login", "date_joined")},
        ),
    )
    actions = ["renew_api_token", "revoke_api_token"]
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "role", "password1", "password2")}),
    )

    def save_model(self, request, obj, form, change):
        values = form_values(form, USER_SETTINGS)
        if change:
            user_update(User(pk=obj.pk), by=request.user, **values)
            return
        usable = form.cleaned_data.get("usable_password", True) not in (False, "false")
        created = user_create(
            password=form.cleaned_data.get("password1") if usable else None,
            by=request.user,
            **values,
        )
        obj.pk = created.pk

    def service_delete(self, request, obj):
        user_delete(obj, by=request.user)

    @admin.action(description=_("Create a new REST API token (revokes the previous one)"))
    def renew_api_token(self, request, queryset):
        for user in queryset:
            key = user_token_renew(user, by=request.user)
            # Shown once: only its owner's system should keep it.
            self.message_user(
                request,
                _("API token of %(name)s: %(key)s") % {"name": user.username, "key": key},
                messages.SUCCESS,
            )

    @admin.action(description=_("Revoke the REST API token"))
    def revoke_api_token(self, request, queryset):
        revoked = sum(user_token_revoke(user, by=request.user) for user in queryset)
        self.message_user(request, _("%(n)d token(s) revoked.") % {"n": revoked}, messages.SUCCESS)


# Tokens are created and revoked from the users' page, through the audited services.
admin.site.unregister(TokenProxy)
