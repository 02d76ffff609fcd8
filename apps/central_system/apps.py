from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CentralSystemConfig(AppConfig):
    name = "apps.central_system"
    verbose_name = _("OCPP central system")
