"""The live feed ``/ws/live/``: relays what changed to the logged-in UI users' pages."""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.dashboard.live import GROUP, LiveMessage

#: Refused: no session, an expired one, or a role without the web UI (ebms).
CLOSE_NOT_ALLOWED = 4403


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Joins the live group for admins and operators; forwards each message's topics.

    The page fetches its figures again over HTTP, through the same views and
    selectors as a reload: the feed says *what* changed, never the figures.
    """

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not getattr(user, "may_use_ui", False):
            await self.close(code=CLOSE_NOT_ALLOWED)
            return
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()
        await self.send_json({"topics": [], "hello": True})

    async def disconnect(self, code) -> None:
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        """The browser has nothing to say; what it sends is ignored."""

    async def live_changed(self, message: LiveMessage) -> None:
        await self.send_json({"topics": message["topics"], "at_s": message["at_s"]})
