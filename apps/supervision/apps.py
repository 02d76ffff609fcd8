from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SupervisionConfig(AppConfig):
    name = "apps.supervision"
    verbose_name = _("Remote supervision")

    def ready(self):
        from apps.supervision import receivers  # noqa: F401  (connects the signal receivers)
