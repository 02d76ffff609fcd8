"""Secrets out of everything evce keeps: the OCPP log, command results, the device log.

A station's Basic-auth password travels in ``ChangeConfiguration(AuthorizationKey)``
(and a station may echo it in a ``GetConfiguration`` answer); a private key
could travel in a certificate message or a vendor's ``DataTransfer``. What is
stored of such a frame is a copy with the secret replaced by :data:`REDACTED`;
the frame itself reaches the station untouched.

Cheap on purpose: it sits on the path of every logged frame, and only the few
actions that can carry a secret are looked into.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[redacted]"

#: Configuration keys whose value is a secret (compared case-insensitively).
SECRET_CONFIGURATION_KEYS = frozenset({"authorizationkey"})

#: Actions whose free text may carry a PEM private key.
_PEM_ACTIONS = frozenset(
    {
        "InstallCertificate",
        "CertificateSigned",
        "SignCertificate",
        "SignedUpdateFirmware",
        "DataTransfer",
    }
)
_PRIVATE_KEY = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)", re.S
)


def is_secret_key(name: Any) -> bool:
    return isinstance(name, str) and name.lower() in SECRET_CONFIGURATION_KEYS


def redact(action: str, payload: Any) -> Any:
    """``payload`` of a CALL or CALLRESULT of ``action``, fit to be stored.

    The same object when there is nothing to hide; a redacted copy otherwise.
    """
    if not isinstance(payload, dict) or not payload:
        return payload
    if action == "ChangeConfiguration" and is_secret_key(payload.get("key")):
        return {**payload, "value": REDACTED}
    if action == "GetConfiguration" and isinstance(payload.get("configurationKey"), list):
        items = payload["configurationKey"]
        if any(isinstance(item, dict) and is_secret_key(item.get("key")) for item in items):
            return {
                **payload,
                "configurationKey": [
                    {**item, "value": REDACTED}
                    if isinstance(item, dict) and is_secret_key(item.get("key")) and "value" in item
                    else item
                    for item in items
                ],
            }
        return payload
    if not action:  # an answer matching no outstanding CALL: it may be anything
        return _without_private_keys(redact("GetConfiguration", payload))
    if action in _PEM_ACTIONS:
        return _without_private_keys(payload)
    return payload


def redact_text(text: str) -> str:
    """A raw frame as received (unparsable): hidden whole if it may carry a secret."""
    lowered = text.lower()
    if "authorizationkey" in lowered or "private key" in lowered:
        return REDACTED
    return text


def _without_private_keys(value: Any) -> Any:
    if isinstance(value, str):
        return _PRIVATE_KEY.sub(REDACTED, value) if "PRIVATE KEY" in value else value
    if isinstance(value, dict):
        return {key: _without_private_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_private_keys(item) for item in value]
    return value
