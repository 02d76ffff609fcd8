"""Refuse a station's WebSocket handshake with an HTTP status.

OCPP security profiles 1 and 2 need ``401 Unauthorized`` with a Basic
challenge for missing or wrong credentials, and ``404`` suits an impossible
identity or port. That takes the ASGI "WebSocket Denial Response" extension
(added to daphne by :mod:`apps.central_system.daphne_ext`); where the server
lacks it, a plain close is all that can be sent (daphne answers 403 then).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from apps.central_system.daphne_ext import EXTENSION

_HTTP_REASONS = {401: b"Unauthorized", 403: b"Forbidden", 404: b"Not Found"}


async def deny(
    scope: dict[str, Any], send: Callable[[dict[str, Any]], Awaitable[None]], status: int
) -> None:
    """Answer the handshake in ``scope`` with ``status`` instead of accepting it."""
    if EXTENSION not in scope.get("extensions", {}):
        await send({"type": "websocket.close"})
        return
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    if status == 401:
        headers.append((b"www-authenticate", b'Basic realm="evce OCPP", charset="UTF-8"'))
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": _HTTP_REASONS.get(status, b"")})
