"""Passwords evce must present upstream, encrypted at rest.

A CPO's Basic-auth password cannot be hashed: evce has to send it. It is kept
encrypted (Fernet: AES-128-CBC + HMAC-SHA256) with a key derived from the
project's secret key, so a database dump, a backup or a log shows only a
token. Changing the secret key makes stored tokens unreadable: the passwords
must then be entered again (:class:`SecretUnreadable` says so).
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

# Fixed context of the derivation: another use of the secret key gets another key.
_SALT = b"evce.supervision"
_INFO = b"cpo-basic-auth-password"


class SecretUnreadable(Exception):
    """A stored token does not decrypt with this installation's secret key."""


def _fernet() -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(
        settings.SECRET_KEY.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def secret_encrypt(value: bytes) -> str:
    """The token stored for ``value`` (a fresh random IV each time)."""
    return _fernet().encrypt(value).decode("ascii")


def secret_decrypt(token: str) -> bytes:
    """The bytes behind ``token``; ``SecretUnreadable`` if the secret key changed."""
    try:
        return _fernet().decrypt(token.encode("ascii"))
    except (InvalidToken, ValueError):
        raise SecretUnreadable(
            "The stored password cannot be decrypted (was the secret key changed?): enter it again."
        ) from None
