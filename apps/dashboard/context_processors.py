"""The status bar of every page (templates/base.html)."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from apps.stations.selectors import station_counts


def status_bar(request) -> dict:
    """Station counts for UI users, read only if the page shows them (not the admin's)."""
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "may_use_ui", False):
        return {}
    return {"station_counts": SimpleLazyObject(station_counts)}
