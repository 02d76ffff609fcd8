from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DashboardConfig(AppConfig):
    """The operators' web UI: layout, login and the pages of SPEC §7."""

    name = "apps.dashboard"
    verbose_name = _("Dashboard")

    def ready(self) -> None:
        # The admin's login page counts failures and locks like /login/ (SPEC §1).
        from django.contrib import admin

        from apps.dashboard import receivers  # noqa: F401  (connects the live feed)
        from apps.dashboard.forms import AdminLoginForm

        admin.site.login_form = AdminLoginForm
