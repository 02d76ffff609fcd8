"""Small formatting filters of the UI pages."""

from __future__ import annotations

from django import template

from apps.dashboard.selectors import FLEET_STATUSES, station_url

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
def status_words(status: str | None) -> str:
    """An OCPP connector status in words of the reader's language ("SuspendedEV" is
    "Suspended by the vehicle"); an unknown status stays as the station sent it."""
    if not status:
        return ""
    label = FLEET_STATUSES.get(status)
    return str(label) if label is not None else status


@register.filter
def station_link(identity: str) -> str:
    """The station page's address of a box identity (any characters, quoted)."""
    return station_url(identity)
