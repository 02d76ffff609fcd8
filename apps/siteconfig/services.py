"""Site-settings workflow: the one write path of the settings row."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.devicelog.models import EventCategory
from apps.devicelog.services import device_log_write, fields_assign
from apps.siteconfig.models import SiteSettings

# Fields no interface sets (secrets have their own workflow).
_NOT_SETTINGS = frozenset({"id", "shared_authorization_key_hash"})


@transaction.atomic
def site_settings_update(*, user=None, **values: Any) -> SiteSettings:
    """Change site settings; ``ValidationError`` (nothing saved) on an inconsistent value.

    Only what really changes is saved and logged. The allocator hears of the
    change through the model signals of :mod:`apps.energy.receivers`.
    """
    allowed = {f.name for f in SiteSettings._meta.concrete_fields} - _NOT_SETTINGS
    unknown = set(values) - allowed
    if unknown:
        raise TypeError(f"not site settings: {', '.join(sorted(unknown))}")
    site = SiteSettings.load()
    site = SiteSettings.objects.select_for_update().get(pk=site.pk)
    changes = fields_assign(site, values)
    if changes:
        site.full_clean()
        site.save()
        device_log_write(
            category=EventCategory.CONFIGURATION,
            event="site_settings_updated",
            message=f"Site settings changed: {', '.join(changes)}.",
            user=user,
            data={"changes": changes},
        )
    return site
