"""Small formatting filters of the records pages."""

from __future__ import annotations

from django import template

from apps.dashboard.selectors import station_url

register = template.Library()


@register.filter
def hms(seconds: int | None) -> str:
    """A duration in seconds as H:MM:SS (hours may exceed 24); empty for None."""
    if seconds is None or seconds == "":
        return ""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


@register.filter
def station_link(identity: str) -> str:
    """The station page's address of a box identity (any characters, quoted)."""
    return station_url(identity)
