from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DashboardConfig(AppConfig):
    """The operators' web UI: layout, login and the pages of SPEC §7."""

    name = "apps.dashboard"
    verbose_name = _("Dashboard")
