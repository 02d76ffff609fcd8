"""Who may open an OCPP connection: security profiles 0–2 of the OCPP 1.6 security whitepaper.

Checked before the WebSocket upgrade, so a refusal is an HTTP answer: 401
for missing or wrong Basic credentials, 403 for a connection below the
station's configured profile (no downgrade), 404 for an impossible identity.

Keys are stored hashed with the project's password hasher, which is slow on
purpose; stations reconnect often, so a successful check is remembered in
this process (keyed by the stored hash, so changing the key forgets it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from apps.devicelog.models import EventCategory, EventLevel
from apps.devicelog.services import device_log_write
from apps.siteconfig.models import SiteSettings
from apps.stations.models import SecurityProfile, StationState, identity_validator
from apps.stations.selectors import station_by_identity

REFUSAL_LOG_INTERVAL_S = 60.0
_VERIFIED_MAX = 20_000

_verified: dict[tuple[str, str], bytes] = {}
_last_refusal_logged: dict[str, float] = {}


@dataclass(frozen=True, slots=True)
class StationAccess:
    """What the database says about a connecting identity."""

    identity: str
    station_id: int | None
    security_profile: int
    key_hash: str  # the station's own key, else the site's shared key
    installed: bool
    valid_identity: bool = True


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool
    http_status: int = 200
    reason: str = ""


def station_access(identity: str) -> StationAccess:
    try:
        identity_validator(identity)
    except ValidationError:
        return StationAccess(identity, None, 0, "", False, valid_identity=False)
    station = station_by_identity(identity)
    key_hash = station.authorization_key_hash if station is not None else ""
    if not key_hash:
        key_hash = SiteSettings.load().shared_authorization_key_hash
    if station is None:
        return StationAccess(identity, None, SecurityProfile.NONE, key_hash, False)
    return StationAccess(
        station.identity,  # as stored, whatever the case the station connected with
        station.pk,
        station.security_profile,
        key_hash,
        station.state == StationState.INSTALLED,
    )


def basic_credentials(headers: list[tuple[bytes, bytes]]) -> tuple[str, bytes] | None:
    """User and password of an ``Authorization: Basic`` header, if there is one."""
    for name, value in headers:
        if name.lower() != b"authorization":
            continue
        scheme, _sep, encoded = value.strip().partition(b" ")
        if scheme.lower() != b"basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        user, sep, password = decoded.partition(b":")
        if not sep:
            return None
        return user.decode("latin-1"), password
    return None


def admit(access: StationAccess, *, credentials: tuple[str, bytes] | None, tls: bool) -> Admission:
    """Decide on a connection (may run a slow key hash: call it off the event loop)."""
    if not access.valid_identity:
        return Admission(False, 404, "invalid box identity")
    profile = access.security_profile
    if profile >= SecurityProfile.TLS_CLIENT_CERT:
        return Admission(False, 403, "security profile 3 (client certificates) is not served")
    if profile >= SecurityProfile.TLS_BASIC and not tls:
        return Admission(False, 403, f"profile {profile} station connected without TLS")
    needs_key = profile >= SecurityProfile.BASIC
    if credentials is None:
        if needs_key:
            return Admission(False, 401, "no Basic credentials")
        return Admission(True)
    if not needs_key and not access.key_hash:
        return Admission(True)  # profile 0 and nothing to check against
    user, password = credentials
    if user.lower() != access.identity.lower():
        return Admission(False, 401, "the Basic user is not the box identity")
    if not access.key_hash:
        return Admission(False, 401, "no authorization key is configured for this station")
    if not _key_matches(access.identity, access.key_hash, password):
        return Admission(False, 401, "wrong authorization key")
    return Admission(True)


def _key_matches(identity: str, key_hash: str, password: bytes) -> bool:
    cache_key = (identity.lower(), key_hash)
    digest = hmac.new(settings.SECRET_KEY.encode(), password, hashlib.sha256).digest()
    remembered = _verified.get(cache_key)
    if remembered is not None and hmac.compare_digest(remembered, digest):
        return True
    for candidate in _candidates(password):
        if check_password(candidate, key_hash):
            if len(_verified) >= _VERIFIED_MAX:
                _verified.clear()
            _verified[cache_key] = digest
            return True
    return False


def _candidates(password: bytes) -> list[str]:
    """The key as text; raw (non-printable) bytes also in the hex AuthorizationKey form."""
    try:
        text = password.decode("ascii")
        if text.isprintable():
            return [text]
    except UnicodeDecodeError:
        pass
    return [password.hex().upper(), password.hex()]


def record_refusal(identity: str, admission: Admission, *, remote_addr: str | None) -> None:
    """A security event for a refused connection (at most one a minute per identity)."""
    now = time.monotonic()
    key = identity.lower()[:64]
    if now - _last_refusal_logged.get(key, -REFUSAL_LOG_INTERVAL_S) < REFUSAL_LOG_INTERVAL_S:
        return
    if len(_last_refusal_logged) > _VERIFIED_MAX:
        _last_refusal_logged.clear()
    _last_refusal_logged[key] = now
    device_log_write(
        category=EventCategory.SECURITY,
        level=EventLevel.WARNING,
        event="ocpp_connection_refused",
        message=_("OCPP connection of %(identity)s refused (HTTP %(status)s): %(reason)s.")
        % {"identity": identity[:30], "status": admission.http_status, "reason": admission.reason},
        station_identity=identity[:30],
        remote_addr=remote_addr,
        data={"http_status": admission.http_status, "reason": admission.reason},
    )
