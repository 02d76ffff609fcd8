from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DeviceLogConfig(AppConfig):
    """The device log: every layer writes to it, so it depends on nothing but accounts."""

    name = "apps.devicelog"
    verbose_name = _("Device log")
