"""Site-settings workflow: the one write path of the settings row."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.devicelog.services import configuration_save_logged, fields_assign, settings_only
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
    settings_only(values, allowed, what="site settings")
    site = SiteSettings.load()
    site = SiteSettings.objects.select_for_update().get(pk=site.pk)
    changes = fields_assign(site, values)
    configuration_save_logged(
        site, changes, created=False, kind="site_settings", label="Site settings", user=user
    )
    return site
