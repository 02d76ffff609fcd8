"""Reads of the supervision configuration shared by the admin, the API and the relay."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from apps.siteconfig.models import SiteSettings, SupervisionMode
from apps.stations.models import Station
from apps.supervision.models import (
    AuthMode,
    GroupSupervision,
    OutboxMessage,
    OutboxState,
    StationCpoPassword,
    Supervision,
)
from apps.supervision.secrets import secret_decrypt


def supervision_by_name(name: str) -> Supervision | None:
    return Supervision.objects.filter(name=name).first()


def supervisions_listed():
    return Supervision.objects.order_by("name")


def supervision_resolver() -> Callable[[int | None], Supervision | None]:
    """A function from a station's group id to the supervision relaying it, or None.

    Reads the mode and the assignments once, so a whole station list is
    resolved with two or three queries. ``unique`` mode relays to the one
    supervision there is (none while there are zero or several: the site file
    and the admin refuse that state, but a half-configured site stays local).
    """
    mode = SiteSettings.load().supervision_mode
    if mode == SupervisionMode.UNIQUE:
        only = list(Supervision.objects.all()[:2])
        chosen = only[0] if len(only) == 1 else None
        return lambda group_id: chosen
    if mode == SupervisionMode.MULTIPLE:
        by_group = {
            row.group_id: row.supervision
            for row in GroupSupervision.objects.select_related("supervision")
        }
        return lambda group_id: by_group.get(group_id)
    return lambda group_id: None


def station_supervision(station: Station) -> Supervision | None:
    """The supervision a station is relayed to under the current mode, or None (local)."""
    return supervision_resolver()(station.auth_group_id)


def cpo_url(supervision: Supervision | None, identity: str) -> str | None:
    """Where evce connects upstream as the station: ``<url>/<identity>``."""
    if supervision is None:
        return None
    return f"{supervision.url.rstrip('/')}/{identity}"


@dataclass(frozen=True, slots=True)
class UpstreamCredentials:
    """What evce presents upstream as a station (Basic auth), or ``password`` None."""

    username: str
    password: bytes | None


def station_upstream_credentials(station: Station, supervision: Supervision) -> UpstreamCredentials:
    """The Basic-auth user and password for a station (decrypted here, only when needed)."""
    if supervision.auth == AuthMode.SHARED and supervision.password_encrypted:
        return UpstreamCredentials(station.identity, secret_decrypt(supervision.password_encrypted))
    if supervision.auth == AuthMode.PER_STATION:
        stored = StationCpoPassword.objects.filter(station=station).first()
        if stored is not None:
            return UpstreamCredentials(station.identity, secret_decrypt(stored.password_encrypted))
    return UpstreamCredentials(station.identity, None)


def outbox_backlog(station: Station) -> int:
    """Messages of a station still waiting for its CPO (flagged ones included)."""
    return (
        OutboxMessage.objects.filter(station=station).exclude(state=OutboxState.DELIVERED).count()
    )
