from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ZonesConfig(AppConfig):
    name = "apps.zones"
    verbose_name = _("Electrical zones")

    def ready(self):
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from apps.zones.models import TouPeriod, TouSlot
        from apps.zones.selectors import tou_cache_clear

        for model in (TouPeriod, TouSlot):
            post_save.connect(
                tou_cache_clear, sender=model, dispatch_uid=f"tou-cache-{model.__name__}-save"
            )
            post_delete.connect(
                tou_cache_clear, sender=model, dispatch_uid=f"tou-cache-{model.__name__}-delete"
            )
        m2m_changed.connect(
            tou_cache_clear, sender=TouPeriod.zones.through, dispatch_uid="tou-cache-zones"
        )

        from apps.zones import receivers  # noqa: F401  (connects the signal receivers)
