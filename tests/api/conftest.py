"""API clients for each role, authenticated as SPEC §9 says: a token or HTTP Basic."""

from __future__ import annotations

import base64
from unittest import mock

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.accounts.models import Role
from tests.accounts.factories import STRONG_PASSWORD, UserFactory


def token_client(role: str) -> APIClient:
    user = UserFactory(role=role)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def basic_client(role: str) -> APIClient:
    user = UserFactory(role=role)
    pair = base64.b64encode(f"{user.username}:{STRONG_PASSWORD}".encode()).decode()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {pair}")
    return client


@pytest.fixture
def ebms(db):
    return token_client(Role.EBMS)


@pytest.fixture
def operator(db):
    return token_client(Role.OPERATOR)


@pytest.fixture
def admin(db):
    return token_client(Role.ADMIN)


@pytest.fixture
def station_side(settings, redis_url, hot_state):
    # As in the central-system tests: handlers on the test's thread, its connection kept.
    settings.OCPP_DB_THREADS = 0
    settings.STATION_COMMAND_TIMEOUT_S = 5.0
    with mock.patch("channels.db.close_old_connections", lambda: None):
        yield
