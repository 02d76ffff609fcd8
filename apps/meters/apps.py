from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _sync_builtin_models(sender, **kwargs):
    from apps.meters.services import builtin_models_sync

    builtin_models_sync()


class MetersConfig(AppConfig):
    name = "apps.meters"
    verbose_name = _("Power meters")

    def ready(self):
        post_migrate.connect(_sync_builtin_models, sender=self)
