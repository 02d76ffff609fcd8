from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EnergyConfig(AppConfig):
    name = "apps.energy"
    verbose_name = _("Energy management")

    def ready(self):
        from apps.energy import receivers  # noqa: F401  (connects the signal receivers)
