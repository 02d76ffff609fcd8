from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CentralSystemConfig(AppConfig):
    name = "apps.central_system"
    verbose_name = _("OCPP central system")

    def ready(self) -> None:
        from apps.central_system import receivers  # noqa: F401  (connects the signal receivers)
