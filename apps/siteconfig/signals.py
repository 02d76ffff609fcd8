"""What the site settings ask of the apps above them."""

from __future__ import annotations

from django.dispatch import Signal

#: ``SiteSettings.clean()`` is checking ``instance``: rules that depend on the
#: apps above the settings (zones) are theirs to check. A receiver raises
#: ``ValidationError`` (with field errors) when the settings do not fit.
site_settings_checked = Signal()
