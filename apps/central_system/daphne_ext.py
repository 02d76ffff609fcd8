"""Give daphne the ASGI "WebSocket Denial Response" extension.

Daphne answers every WebSocket refused before ``accept`` with ``403``. OCPP
security profiles 1 and 2 need ``401 Unauthorized`` (with a
``WWW-Authenticate`` challenge) for missing or wrong credentials, and ``404``
suits an impossible identity. The ASGI spec's extension
(``websocket.http.response.start`` / ``.body`` sent instead of
``websocket.close``) is what other servers implement; this adds it to
daphne's WebSocket protocol and announces it in the scope, so the consumer
uses it when present and falls back to a plain close elsewhere.
"""

from __future__ import annotations

import http.client
import logging

EXTENSION = "websocket.http.response"

logger = logging.getLogger(__name__)


def enable_denial_response() -> None:
    """Patch daphne once per process (idempotent; a no-op when daphne is absent)."""
    try:
        from daphne.server import Server
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:
        return
    if getattr(WebSocketProtocol, "_evce_denial_response", False):
        return

    original_create_application = Server.create_application
    original_handle_reply = WebSocketProtocol.handle_reply

    def create_application(self, protocol, scope):
        if scope.get("type") == "websocket":
            scope.setdefault("extensions", {})[EXTENSION] = {}
        return original_create_application(self, protocol, scope)

    def handle_reply(self, message):
        kind = message.get("type", "")
        if kind == "websocket.http.response.start" and self.state == self.STATE_CONNECTING:
            self._evce_denial = (int(message["status"]), list(message.get("headers", [])), [])
            return None
        if kind == "websocket.http.response.body" and hasattr(self, "_evce_denial"):
            status, headers, body = self._evce_denial
            body.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                _send_denial(self, status, headers, b"".join(body))
            return None
        return original_handle_reply(self, message)

    Server.create_application = create_application
    WebSocketProtocol.handle_reply = handle_reply
    WebSocketProtocol._evce_denial_response = True


def _send_denial(protocol, status: int, headers: list, body: bytes) -> None:
    """Write the HTTP answer and drop the connection (the handshake never completes)."""
    del protocol._evce_denial
    if hasattr(protocol, "handshake_deferred"):
        # The pending handshake is abandoned: nothing waits on it but the
        # autobahn machinery that we answer for here.
        del protocol.handshake_deferred
    pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
    pairs.append(("Content-Length", str(len(body))))
    pairs.append(("Connection", "close"))
    protocol.sendHttpErrorResponse(status, http.client.responses.get(status, "Error"), pairs)
    if body:
        protocol.sendData(body)
    protocol.dropConnection(abort=False)
    protocol.server.protocol_disconnected(protocol)
    logger.debug("WebSocket %s refused with HTTP %s", protocol.client_addr, status)
