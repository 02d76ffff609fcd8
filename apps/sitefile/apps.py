from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SiteFileConfig(AppConfig):
    """The site file: a whole site read from or written to YAML (an interface, no models).

    It calls the services of every app, so it sits in the interfaces layer;
    the site settings it carries are a base model of ``apps.siteconfig``.
    """

    name = "apps.sitefile"
    verbose_name = _("Site file")

    def ready(self) -> None:
        from apps.sitefile import receivers  # noqa: F401  (the device report's configuration)
