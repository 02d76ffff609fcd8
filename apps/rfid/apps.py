from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RfidConfig(AppConfig):
    name = "apps.rfid"
    verbose_name = _("Driver authentication")

    def ready(self) -> None:
        from apps.rfid import receivers  # noqa: F401  (connects the signal receivers)
