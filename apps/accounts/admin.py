from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import User


@admin.register(User)
class EvceUserAdmin(UserAdmin):
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
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "role", "password1", "password2")}),
    )
