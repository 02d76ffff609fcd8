"""WebSocket routes: the dashboard's live feed, and OCPP stations at ``/<identity>``
and ``/ocpp/<identity>``."""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import re_path

from apps.central_system.consumers import OcppConsumer
from apps.dashboard.consumers import LiveConsumer

# One path segment for stations; the consumer checks the identity's characters
# and length so that a bad one gets an HTTP answer instead of a silent close.
# The live feed has two segments, so no station identity can shadow it.
websocket_urlpatterns: list = [
    re_path(
        r"^ws/live/$",
        AllowedHostsOriginValidator(AuthMiddlewareStack(LiveConsumer.as_asgi())),
    ),
    re_path(r"^(?:ocpp/)?(?P<identity>[^/]+)/?$", OcppConsumer.as_asgi()),
]
