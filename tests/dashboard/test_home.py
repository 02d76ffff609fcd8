"""The first dashboard page: zones with their live figures and the station counts."""

from __future__ import annotations

import json

import pytest

from apps.energy import state
from tests.accounts.factories import UserFactory
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db


def test_zones_appear_as_a_tree_with_their_figures(client, hot_state):
    main = ZoneFactory(name="Main switchboard", max_current_a=100)
    level = ZoneFactory(name="Level -1", parent=main, max_current_a=63)
    figures = {
        "limit_a": 100.0,
        "allocated_a": [32.0, 16.0, 0.0],
        "available_a": [68.0, 84.0, 100.0],
        "session_count": 2,
        "charging_count": 1,
    }
    state.redis_client().hset(state.ZONES, str(main.id), json.dumps(figures))
    client.force_login(UserFactory())
    body = client.get("/").content.decode()
    assert body.index("Main switchboard") < body.index("Level -1")
    assert f'class="depth-1"><a href="/zones/{level.id}/">Level -1</a>' in body
    assert "32.0 / 16.0 / 0.0" in body and "1 charging of 2" in body
    assert "no allocation yet" in body  # Level -1 has not been allocated


def test_an_ebms_session_gets_403(client, hot_state):
    client.force_login(UserFactory(role="ebms"))
    assert client.get("/").status_code == 403
