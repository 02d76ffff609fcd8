"""Accounts are written through their services, from the admin as from anywhere else."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from apps.accounts import services
from apps.accounts.models import Role, User
from apps.devicelog.models import DeviceLogEntry

pytestmark = pytest.mark.django_db

STRONG = "Evce-Strong-Pass-2025!"


def events() -> list[str]:
    return list(DeviceLogEntry.objects.order_by("id").values_list("event", flat=True))


def test_create_update_delete_are_logged_once_each():
    user = services.user_create(username="op", password=STRONG, role=Role.OPERATOR)
    assert user.check_password(STRONG) and not user.is_staff
    services.user_update(user, role=Role.ADMIN)
    services.user_update(user, role=Role.ADMIN)  # no change: no entry
    assert User.objects.get(username="op").is_staff
    services.user_delete(user)
    assert events() == ["user_created", "user_updated", "user_deleted"]
    assert DeviceLogEntry.objects.first().category == "security"


def test_a_weak_password_creates_nothing():
    with pytest.raises(ValidationError) as exc:
        services.user_create(username="op", password="short")
    assert "password" in exc.value.message_dict
    assert not User.objects.filter(username="op").exists() and not events()


def test_a_user_added_in_the_admin_is_logged(admin_client):
    data = {"username": "op", "role": Role.OPERATOR, "password1": STRONG, "password2": STRONG}
    response = admin_client.post(reverse("admin:accounts_user_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert User.objects.get(username="op").check_password(STRONG)
    entry = DeviceLogEntry.objects.get()
    assert (entry.event, entry.username) == ("user_created", "admin")


def test_a_user_changed_and_deleted_in_the_admin_is_logged(admin_client):
    user = services.user_create(username="op", password=STRONG)
    data = {"username": "op", "role": Role.OPERATOR, "language": "fr"}
    response = admin_client.post(reverse("admin:accounts_user_change", args=[user.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert User.objects.get(pk=user.pk).language == "fr"
    assert not User.objects.get(pk=user.pk).is_active  # unchecked box: deactivated
    admin_client.post(reverse("admin:accounts_user_delete", args=[user.pk]), {"post": "yes"})
    assert not User.objects.filter(pk=user.pk).exists()
    assert events() == ["user_created", "user_updated", "user_deleted"]
