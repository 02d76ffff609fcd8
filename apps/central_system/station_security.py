"""Changing how a station proves who it is: its password (AuthorizationKey) and security profile.

Both follow the OCPP 1.6 security whitepaper: evce sends the change with
``ChangeConfiguration`` and adopts it only once the station answered
``Accepted``. Until then the old key (or profile) stays the one evce checks,
so a station that refuses, fails or goes offline is never locked out; after
it, the next connection is checked against the new one (the old key is
refused, and so is a connection below the new profile: no downgrade).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from ocpp.v16.enums import ConfigurationStatus

from apps.central_system import command_loop, commands
from apps.devicelog.models import EventCategory, EventLevel
from apps.devicelog.services import device_log_write
from apps.siteconfig.models import SiteSettings
from apps.stations import services as stations
from apps.stations.models import SecurityProfile, Station, StationState
from apps.stations.selectors import online_identities

logger = logging.getLogger(__name__)

# 20 random bytes written as 40 hexadecimal characters: within the whitepaper's
# 16–40, printable for stations that take the key as text, and the hex form
# of the bytes for those that send them raw (the admission check tries both).
KEY_BYTES = 20
COMMAND_TIMEOUT_S = 30.0
HIGHEST_SERVED_PROFILE = SecurityProfile.TLS_BASIC  # profile 3 needs a TLS terminator

Send = Callable[[commands.Command], dict[str, Any]]


def authorization_key_new() -> str:
    return secrets.token_hex(KEY_BYTES).upper()


def _send_now(identity: str, command: commands.Command) -> dict[str, Any]:
    return command_loop.run(commands.send(identity, command, timeout_s=COMMAND_TIMEOUT_S))


def _refused(station: Station, event: str, message: str, **data: Any) -> None:
    device_log_write(
        category=EventCategory.SECURITY,
        level=EventLevel.WARNING,
        event=event,
        message=message,
        station_identity=station.identity,
        data=data,
    )


def _change(station: Station, key: str, value: str, send: Send | None) -> str:
    """The station's answer to one ChangeConfiguration, or what kept it from answering."""
    send = send or (lambda command: _send_now(station.identity, command))
    try:
        return str(send(commands.change_configuration(key, value)).get("status", "Unknown"))
    except commands.CommandError as exc:
        return f"{type(exc).__name__}: {exc}"


def station_key_rotate(station: Station, *, user=None, send: Send | None = None) -> str:
    """Give the station a new AuthorizationKey; return the station's answer.

    The new key is kept (hashed) only when the station answers ``Accepted``;
    any other answer, a CALLERROR or no answer keeps the old key, and is a
    security warning in the device log. The key itself is never logged.
    """
    if station.state != StationState.INSTALLED:
        raise ValidationError(_("Only an installed station gets a new authorization key."))
    key = authorization_key_new()
    status = _change(station, "AuthorizationKey", key, send)
    if status == ConfigurationStatus.accepted:
        stations.station_authorization_key_adopt(station=station, key=key, user=user)
    else:
        _refused(
            station,
            "station_key_change_failed",
            _(
                "Station %(identity)s did not take a new authorization key (%(status)s): "
                "it keeps the old one."
            )
            % {"identity": station.identity, "status": status},
            status=status,
        )
    return status


def station_security_profile_upgrade(
    station: Station, profile: int, *, user=None, send: Send | None = None
) -> str:
    """Ask the station to connect with a higher security profile; return its answer.

    ``ValidationError`` (nothing sent) for a profile that is not higher than
    the station's, that evce does not serve, or that needs a key the station
    does not have. On ``Accepted`` the stored profile is raised: from then on
    a connection below it is refused.
    """
    current = Station.objects.get(pk=station.pk)
    if profile <= current.security_profile:
        raise ValidationError(
            _(
                "Station %(identity)s already uses security profile %(current)d: "
                "a profile is only ever raised."
            )
            % {"identity": current.identity, "current": current.security_profile}
        )
    if profile > HIGHEST_SERVED_PROFILE:
        raise ValidationError(_("evce serves security profiles up to 2."))
    if profile >= SecurityProfile.TLS_BASIC and not settings.OCPP_TLS_ENABLED:
        raise ValidationError(_("Profile 2 needs OCPP over TLS (EVCE_OCPP_TLS=1)."))
    has_key = bool(
        current.authorization_key_hash or SiteSettings.load().shared_authorization_key_hash
    )
    if profile >= SecurityProfile.BASIC and not has_key:
        raise ValidationError(
            _("Station %(identity)s has no authorization key: give it one first.")
            % {"identity": current.identity}
        )
    status = _change(current, "SecurityProfile", str(profile), send)
    if status == ConfigurationStatus.accepted:
        stations.station_security_profile_raise(station=current, profile=profile, user=user)
    else:
        _refused(
            current,
            "station_security_profile_refused",
            _("Station %(identity)s did not move to security profile %(profile)d (%(status)s).")
            % {"identity": current.identity, "profile": profile, "status": status},
            status=status,
            security_profile=profile,
        )
    return status


def stations_due_for_key_rotation(*, now=None) -> list[Station]:
    """Connected, installed stations using Basic authentication whose key is older than
    ``EVCE_STATION_KEY_ROTATION_DAYS`` (none when that is 0)."""
    days = settings.STATION_KEY_ROTATION_DAYS
    if not days:
        return []
    before = (now or timezone.now()) - timedelta(days=days)
    candidates = list(
        Station.objects.filter(
            state=StationState.INSTALLED,
            security_profile__gte=SecurityProfile.BASIC,
            security_profile__lte=HIGHEST_SERVED_PROFILE,
        ).filter(Q(authorization_key_set_at__lt=before) | Q(authorization_key_set_at__isnull=True))
    )
    online = online_identities([s.identity for s in candidates])
    return [s for s in candidates if s.identity in online]


def station_keys_rotate_due() -> dict[str, str]:
    """Rotate the key of every station due for it; each station's answer by identity."""
    return {
        station.identity: station_key_rotate(station) for station in stations_due_for_key_rotation()
    }
