"""``manage.py user create/token/unlock`` (SPEC §12): through the services, logged."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.accounts.models import Role, User
from apps.devicelog.models import DeviceLogEntry
from tests.accounts.factories import STRONG_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("user", *args, stdout=out)
    return out.getvalue()


def test_create_takes_the_password_from_the_environment(settings):
    settings.USER_PASSWORD = STRONG_PASSWORD

    assert "created" in run("create", "bms", "--role", "ebms")

    user = User.objects.get(username="bms")
    assert user.role == Role.EBMS and user.check_password(STRONG_PASSWORD)
    assert DeviceLogEntry.objects.filter(event="user_created").count() == 1


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [
        ("bms", "short", "password"),
        ("Admin", STRONG_PASSWORD, "username"),
    ],
)
def test_create_applies_the_rules_and_changes_nothing(settings, name, password, message):
    settings.USER_PASSWORD = password

    with pytest.raises(CommandError, match=message):
        run("create", name, "--role", "ebms")

    assert not User.objects.exists()


def test_token_prints_a_new_key_that_replaces_the_previous_one():
    user = UserFactory(username="bms", role=Role.EBMS)
    first = run("token", "bms").strip()
    second = run("token", "bms").strip()

    assert first != second and Token.objects.get(user=user).key == second
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    assert client.get("/api/v2/cards/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {second}")
    assert client.get("/api/v2/cards/").status_code == 200


def test_unlock_lifts_the_lock_and_is_logged():
    UserFactory(
        username="bms", locked_until=timezone.now() + timedelta(minutes=1), failed_login_count=5
    )

    assert "unlocked" in run("unlock", "bms")
    assert "not locked" in run("unlock", "bms")

    user = User.objects.get(username="bms")
    assert user.locked_until is None and user.failed_login_count == 0
    assert DeviceLogEntry.objects.filter(event="user_unlocked").count() == 1


def test_an_unknown_user_is_a_clear_error():
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        run("token", "ghost")
