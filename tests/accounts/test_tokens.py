"""REST API tokens: created and revoked through the audited services, and the admin."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.accounts.services import user_token_renew, user_token_revoke
from apps.devicelog.models import DeviceLogEntry
from tests.accounts.factories import AdminFactory, UserFactory

pytestmark = pytest.mark.django_db


def _client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_a_new_token_revokes_the_previous_one_and_is_logged_without_its_key(hot_state):
    admin = AdminFactory()
    bms = UserFactory(role=Role.EBMS)
    first = user_token_renew(bms, by=admin)
    second = user_token_renew(bms, by=admin)

    assert _client(first).get("/api/v2/zones/").status_code == 401
    assert _client(second).get("/api/v2/zones/").status_code == 200
    entries = DeviceLogEntry.objects.filter(event="api_token_created")
    assert entries.count() == 2 and entries.first().user == admin
    assert not any(second in str(entry.data) + entry.message for entry in entries)


def test_a_revoked_token_no_longer_works():
    bms = UserFactory(role=Role.EBMS)
    key = user_token_renew(bms)

    assert user_token_revoke(bms) is True
    assert user_token_revoke(bms) is False
    assert _client(key).get("/api/v2/zones/").status_code == 401
    assert DeviceLogEntry.objects.filter(event="api_token_revoked").count() == 1


def test_the_admin_creates_a_token_from_the_users_page():
    admin = AdminFactory()
    bms = UserFactory(role=Role.EBMS)
    browser = Client()
    browser.force_login(admin)

    response = browser.post(
        "/admin/accounts/user/",
        {"action": "renew_api_token", "_selected_action": [bms.pk]},
        follow=True,
    )

    key = Token.objects.get(user=bms).key
    assert key in response.content.decode()
    assert DeviceLogEntry.objects.filter(event="api_token_created", user=admin).exists()
