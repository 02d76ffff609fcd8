"""ASGI entry point: HTTP (UI, admin, API) and WebSocket routing."""

from __future__ import annotations

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evce_site.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from apps.central_system.daphne_ext import enable_denial_response  # noqa: E402
from evce_site.routing import websocket_urlpatterns  # noqa: E402

# OCPP refuses bad station credentials with HTTP 401, which daphne cannot say by itself.
enable_denial_response()

# The web process holds a thousand long-lived station connections: full
# garbage collections over that heap stall every socket for a few hundred ms.
# What is loaded at start-up lives forever (freeze it out of the collector)
# and collections run less often.
gc.freeze()
gc.set_threshold(10_000, 50, 100)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
