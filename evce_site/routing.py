"""WebSocket routes. OCPP stations connect at ``/<identity>`` and ``/ocpp/<identity>``."""

from __future__ import annotations

from django.urls import re_path

from apps.central_system.consumers import OcppConsumer

# One path segment; the consumer checks the identity's characters and length
# so that a bad one gets an HTTP answer instead of a silent close.
websocket_urlpatterns: list = [
    re_path(r"^(?:ocpp/)?(?P<identity>[^/]+)/?$", OcppConsumer.as_asgi()),
]
