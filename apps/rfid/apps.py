from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RfidConfig(AppConfig):
    name = "apps.rfid"
    verbose_name = _("Driver authentication")
