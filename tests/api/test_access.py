"""Who reaches the API (SPEC §9): a token or HTTP Basic, by role; one error shape."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Role, User
from tests.accounts.factories import STRONG_PASSWORD, UserFactory
from tests.api.conftest import basic_client, token_client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v2/zones/", "/api/v2/stations/"])
def test_without_credentials_the_api_answers_401_with_a_challenge(path):
    response = APIClient().get(path)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Token")


def test_a_wrong_token_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-key")

    assert client.get("/api/v2/zones/").status_code == 401


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OPERATOR, Role.EBMS])
def test_every_role_reads_with_a_token_or_basic(role, hot_state):
    assert token_client(role).get("/api/v2/zones/").status_code == 200
    assert basic_client(role).get("/api/v2/stations/").status_code == 200


def test_a_wrong_password_is_401():
    client = basic_client(Role.EBMS)
    client.credentials(HTTP_AUTHORIZATION="Basic dXNlcjA6d3Jvbmc=")  # user0:wrong

    assert client.get("/api/v2/zones/").status_code == 401


def test_a_locked_account_is_refused_with_its_token_and_with_basic():
    token = token_client(Role.EBMS)
    basic = basic_client(Role.EBMS)
    User.objects.update(locked_until=timezone.now() + timedelta(minutes=1))

    assert token.get("/api/v2/zones/").status_code == 401
    assert basic.get("/api/v2/zones/").status_code == 401


def test_an_inactive_account_is_refused():
    client = token_client(Role.EBMS)
    User.objects.update(is_active=False)

    assert client.get("/api/v2/zones/").status_code == 401


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_read_only_resources_refuse_writes_with_405_not_500(ebms, hot_state, method):
    response = getattr(ebms, method)("/api/v2/zones/", {"name": "x"}, format="json")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_an_operator_may_not_write(operator, hot_state):
    response = operator.post("/api/v2/zones/", {}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_wrong_basic_passwords_lock_the_account_as_on_the_web_ui(hot_state):
    from apps.devicelog.models import DeviceLogEntry
    from apps.siteconfig.models import SiteSettings

    attempts = SiteSettings.load().login_max_attempts
    user = UserFactory(role=Role.EBMS)
    wrong, right = APIClient(), APIClient()
    wrong.credentials(HTTP_AUTHORIZATION=_basic(user.username, "wrong"))
    right.credentials(HTTP_AUTHORIZATION=_basic(user.username, STRONG_PASSWORD))
    assert right.get("/api/v2/zones/").status_code == 200

    for _attempt in range(attempts):
        assert wrong.get("/api/v2/zones/").status_code == 401

    user.refresh_from_db()
    assert user.locked_until is not None
    response = right.get("/api/v2/zones/")
    assert response.status_code == 401 and "locked" in response.json()["detail"]
    assert DeviceLogEntry.objects.filter(event="login_locked").count() == 1
    # A building management system polls: a success is not a security event.
    assert not DeviceLogEntry.objects.filter(event="login_succeeded").exists()


def test_a_success_clears_the_count_of_wrong_passwords(hot_state):
    user = UserFactory(role=Role.EBMS, failed_login_count=2)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=_basic(user.username, STRONG_PASSWORD))

    assert client.get("/api/v2/zones/").status_code == 200
    user.refresh_from_db()
    assert user.failed_login_count == 0


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
