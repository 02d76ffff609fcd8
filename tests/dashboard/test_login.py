"""Logging in to the web UI: the lockout and timeout of SPEC §1, roles, security events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Role, User
from apps.devicelog.models import DeviceLogEntry, EventCategory
from apps.siteconfig.services import site_settings_update
from tests.accounts.factories import STRONG_PASSWORD, AdminFactory, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/login/"


@pytest.fixture(autouse=True)
def _hot_state(hot_state):
    """The status bar reads station presence from Redis."""


def _login(client, username: str, password: str = STRONG_PASSWORD):
    return client.post(LOGIN, {"username": username, "password": password})


def _events(event: str) -> list[DeviceLogEntry]:
    return list(DeviceLogEntry.objects.filter(category=EventCategory.SECURITY, event=event))


def test_an_operator_logs_in_and_sees_the_dashboard(client):
    user = UserFactory(username="olivia")
    response = _login(client, "olivia")
    assert response.status_code == 302 and response.url == reverse("dashboard:home")
    page = client.get("/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "olivia" in body and 'data-count="online"' in body
    assert [e.username for e in _events("login_succeeded")] == ["olivia"]
    assert _events("login_succeeded")[0].user == user


def test_the_dashboard_asks_for_a_login_first(client):
    response = client.get("/")
    assert response.status_code == 302 and response.url.startswith(f"{LOGIN}?next=/")


def test_a_wrong_password_is_refused_on_the_page_and_logged(client):
    UserFactory(username="olivia")
    response = _login(client, "olivia", "Wrong&Password1")
    assert response.status_code == 200
    assert "Wrong user name or password." in response.content.decode()
    assert client.get("/").status_code == 302
    (failure,) = _events("login_failed")
    assert failure.data["reason"] == "wrong_password" and failure.username == "olivia"
    _login(client, "nobody", "Wrong&Password1")
    assert _events("login_failed")[0].data["reason"] == "unknown_user"


def test_the_configured_failures_lock_the_login_for_the_configured_period(client):
    site_settings_update(login_max_attempts=3, login_lock_s=120)
    UserFactory(username="olivia")
    for _attempt in range(2):
        assert "Wrong user name" in _login(client, "olivia", "bad").content.decode()
    third = _login(client, "olivia", "bad").content.decode()
    assert "locked" in third and "120 seconds" in third
    (lock,) = _events("login_locked")
    assert lock.data["lock_s"] == 120

    # Locked: even the right password is refused, and the lock is not extended.
    user = User.objects.get(username="olivia")
    locked_until = user.locked_until
    assert "locked" in _login(client, "olivia").content.decode()
    assert client.get("/").status_code == 302
    user.refresh_from_db()
    assert user.locked_until == locked_until


def test_the_login_opens_again_after_the_lock_period(client):
    site_settings_update(login_max_attempts=2, login_lock_s=60)
    UserFactory(username="olivia")
    _login(client, "olivia", "bad")
    _login(client, "olivia", "bad")
    user = User.objects.get(username="olivia")
    assert user.locked_until is not None
    User.objects.filter(pk=user.pk).update(locked_until=timezone.now() - timedelta(seconds=1))

    # The count starts again: one more failure does not lock at once.
    assert "Wrong user name" in _login(client, "olivia", "bad").content.decode()
    assert _login(client, "olivia").status_code == 302
    user.refresh_from_db()
    assert (user.failed_login_count, user.locked_until) == (0, None)


def test_an_ebms_account_cannot_log_in_to_the_web_ui(client):
    UserFactory(username="bms", role=Role.EBMS)
    response = _login(client, "bms")
    assert response.status_code == 200
    assert "REST API only" in response.content.decode()
    assert client.get("/").status_code == 302
    assert _events("login_failed")[0].data["reason"] == "no_ui_access"


def test_the_session_times_out_after_the_configured_inactivity(client):
    site_settings_update(session_timeout_s=300)
    UserFactory(username="olivia")
    _login(client, "olivia")
    session = Session.objects.get()
    assert abs((session.expire_date - timezone.now()).total_seconds() - 300) < 10

    # Each request moves the expiry; a session left alone past it is gone.
    Session.objects.update(expire_date=timezone.now() + timedelta(seconds=5))
    assert client.get("/").status_code == 200
    assert (Session.objects.get().expire_date - timezone.now()).total_seconds() > 290
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/")
    assert response.status_code == 302 and response.url.startswith(LOGIN)


def test_log_out(client):
    UserFactory(username="olivia")
    _login(client, "olivia")
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_a_password_change_follows_the_rules_and_is_logged(client):
    UserFactory(username="olivia")
    _login(client, "olivia")
    weak = client.post(
        "/password/",
        {"old_password": STRONG_PASSWORD, "new_password": "short", "new_password_again": "short"},
    )
    assert "at least 12 characters" in weak.content.decode()
    wrong = client.post(
        "/password/",
        {
            "old_password": "not it",
            "new_password": "New&Strong2025x",
            "new_password_again": "New&Strong2025x",
        },
    )
    assert "current password is wrong" in wrong.content.decode()
    assert _events("password_changed") == []

    done = client.post(
        "/password/",
        {
            "old_password": STRONG_PASSWORD,
            "new_password": "New&Strong2025x",
            "new_password_again": "New&Strong2025x",
        },
    )
    assert "Your password was changed." in done.content.decode()
    assert client.get("/").status_code == 200  # still logged in
    assert User.objects.get(username="olivia").check_password("New&Strong2025x")
    assert [e.username for e in _events("password_changed")] == ["olivia"]


def test_the_user_menu_switches_the_language(client):
    AdminFactory(username="ada")
    _login(client, "ada")
    response = client.post("/i18n/setlang/", {"language": "fr", "next": "/"})
    assert response.status_code == 302 and response.url == "/"
    page = client.get("/").content.decode()
    assert '<html lang="fr">' in page
    assert "/admin/" in page  # admins get the link to the administration


def test_the_admin_login_counts_failures_and_locks_like_the_ui(client):
    site_settings_update(login_max_attempts=2, login_lock_s=60)
    AdminFactory(username="ada")
    form = {"username": "ada", "password": "bad", "next": "/admin/"}
    assert "Wrong user name" in client.post("/admin/login/", form).content.decode()
    assert "locked" in client.post("/admin/login/", form).content.decode()
    refused = client.post("/admin/login/", {**form, "password": STRONG_PASSWORD})
    assert "locked" in refused.content.decode()
    assert client.get("/admin/").status_code == 302
    assert len(_events("login_locked")) == 1 and len(_events("login_failed")) == 3

    User.objects.filter(username="ada").update(locked_until=timezone.now())
    assert client.post("/admin/login/", {**form, "password": STRONG_PASSWORD}).status_code == 302
    assert client.get("/admin/").status_code == 200
    assert [e.username for e in _events("login_succeeded")] == ["ada"]
