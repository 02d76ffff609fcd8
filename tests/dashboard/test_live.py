"""The live feed /ws/live/: who may open it, and what it hears of (real consumer, real Redis)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from apps.dashboard.consumers import CLOSE_NOT_ALLOWED
from apps.devicelog.models import EventCategory
from apps.devicelog.services import device_log_write
from apps.energy.control import rebalance_once
from apps.stations.services import connector_status_update
from evce_site.routing import websocket_urlpatterns
from tests.accounts.factories import UserFactory
from tests.stations.factories import ConnectorFactory, StationFactory
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db

application = URLRouter(websocket_urlpatterns)


def _feed(client=None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if client is not None and "sessionid" in client.cookies:
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return WebsocketCommunicator(application, "/ws/live/", headers=headers)


async def _topics_until(feed: WebsocketCommunicator, topic: str, timeout_s: float = 3) -> set:
    """Every topic heard until ``topic`` arrives (fails after ``timeout_s``)."""
    heard: set[str] = set()
    deadline = asyncio.get_running_loop().time() + timeout_s
    while topic not in heard:
        remaining = deadline - asyncio.get_running_loop().time()
        assert remaining > 0, f"{topic} not heard, only {heard}"
        message = await feed.receive_json_from(timeout=remaining)
        heard |= set(message["topics"])
    return heard


@pytest.mark.parametrize("role", [None, "ebms"])
def test_only_ui_users_may_open_the_feed(client, redis_url, role):
    if role is not None:
        client.force_login(UserFactory(role=role))

    async def scenario():
        feed = _feed(client)
        connected, code = await feed.connect()
        assert not connected and code == CLOSE_NOT_ALLOWED
        await feed.disconnect()  # let the application end before the loop closes

    async_to_sync(scenario)()


# The feed's authentication closes the thread's database connection when it is
# done, as Channels does after each call: committed data, not a test transaction.
@pytest.mark.django_db(transaction=True)
def test_a_status_change_and_a_control_loop_run_reach_an_operator(
    client, hot_state, django_capture_on_commit_callbacks
):
    client.force_login(UserFactory(role="operator"))
    zone = ZoneFactory(max_current_a=32)
    station = StationFactory(zone=zone)
    ConnectorFactory(station=station, connector_id=1)

    def committed(service, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return service(**kwargs)

    async def scenario():
        feed = _feed(client)
        connected, _code = await feed.connect()
        assert connected
        try:
            assert (await feed.receive_json_from())["hello"] is True
            await sync_to_async(committed)(
                connector_status_update,
                station=station,
                connector_id=1,
                status="Faulted",
                at=timezone.now(),
            )
            assert "stations" in await _topics_until(feed, "stations")
            await sync_to_async(committed)(rebalance_once)
            assert "setpoints" in await _topics_until(feed, "setpoints")
        finally:
            await feed.disconnect()  # a failure fails the test instead of hanging its loop

    async_to_sync(scenario)()


def test_live_refreshes_do_not_keep_a_session_alive(client):
    """The session timeout counts the user's requests, not the page refreshing itself."""
    from datetime import timedelta

    from django.contrib.sessions.models import Session

    from apps.siteconfig.services import site_settings_update

    site_settings_update(session_timeout_s=300)
    client.force_login(UserFactory(role="operator"))
    client.get("/password/")
    soon = timezone.now() + timedelta(seconds=30)
    Session.objects.update(expire_date=soon)
    session = Session.objects.get()
    session_data = session.get_decoded()
    session_data["_session_expiry"] = soon.isoformat()
    Session.objects.filter(pk=session.pk).update(session_data=Session.objects.encode(session_data))
    assert client.get("/password/", headers={"X-Evce-Live": "1"}).status_code == 200
    assert abs((Session.objects.get().expire_date - soon).total_seconds()) < 1
    assert client.get("/password/").status_code == 200
    assert (Session.objects.get().expire_date - timezone.now()).total_seconds() > 290


def test_a_device_log_entry_reaches_the_open_device_log_pages(
    client, hot_state, django_capture_on_commit_callbacks
):
    client.force_login(UserFactory(role="operator"))

    def write():
        with django_capture_on_commit_callbacks(execute=True):
            device_log_write(
                category=EventCategory.COMMUNICATION, event="meter_lost", message="Meter lost."
            )

    async def scenario():
        feed = _feed(client)
        connected, _code = await feed.connect()
        assert connected
        try:
            assert (await feed.receive_json_from())["hello"] is True
            await sync_to_async(write)()
            assert "devicelog" in await _topics_until(feed, "devicelog")
        finally:
            await feed.disconnect()

    async_to_sync(scenario)()
