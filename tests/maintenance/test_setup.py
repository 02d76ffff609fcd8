import stat

import pytest
from django.contrib.auth.password_validation import validate_password

from apps.accounts.models import Role, User
from apps.accounts.validators import password_problems
from apps.devicelog.models import DeviceLogEntry
from apps.maintenance.management.setup import (
    ensure_first_admin,
    generate_password,
    is_empty_install,
)
from tests.accounts.factories import UserFactory
from tests.stations.factories import StationFactory


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return tmp_path


@pytest.mark.django_db
def test_first_start_creates_one_admin_with_a_valid_password(data_dir):
    credentials = ensure_first_admin()

    assert credentials is not None
    user = User.objects.get()
    assert user.username == credentials.username
    assert user.role == Role.ADMIN
    assert user.is_superuser
    assert user.check_password(credentials.password)
    assert password_problems(credentials.password) == []
    assert DeviceLogEntry.objects.filter(event="user_created").count() == 1


@pytest.mark.django_db
def test_first_admin_credentials_are_readable_only_by_their_owner(data_dir):
    credentials = ensure_first_admin()

    assert credentials.path == data_dir / "first-admin.txt"
    assert credentials.path.read_text() == f"{credentials.username} {credentials.password}\n"
    assert stat.S_IMODE(credentials.path.stat().st_mode) == 0o600


@pytest.mark.django_db
def test_the_first_admin_is_created_once(data_dir):
    first = ensure_first_admin()
    again = ensure_first_admin()

    assert again == first
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_credentials_are_forgotten_once_the_password_is_changed(data_dir):
    credentials = ensure_first_admin()
    user = User.objects.get()
    user.set_password("Changed&Secret2024")
    user.save()

    assert ensure_first_admin() is None
    assert not credentials.path.exists()
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_no_admin_is_created_when_users_exist(data_dir):
    UserFactory(role=Role.OPERATOR)

    assert ensure_first_admin() is None
    assert User.objects.count() == 1
    assert not (data_dir / "first-admin.txt").exists()


@pytest.mark.django_db
def test_a_stale_credentials_file_is_removed(data_dir):
    UserFactory(username="installer")
    (data_dir / "first-admin.txt").write_text("installer Not&ThePassword1\n")

    assert ensure_first_admin() is None
    assert not (data_dir / "first-admin.txt").exists()


@pytest.mark.django_db
def test_generated_passwords_satisfy_every_rule():
    passwords = {generate_password() for _ in range(200)}
    assert len(passwords) == 200
    for password in passwords:
        assert len(password) == 16
        assert password_problems(password) == []
    validate_password(passwords.pop())


def test_generated_password_length_can_be_chosen():
    password = generate_password(24)
    assert len(password) == 24
    assert password_problems(password) == []


@pytest.mark.django_db
def test_an_install_is_empty_until_it_has_zones_or_stations():
    assert is_empty_install()
    StationFactory()
    assert not is_empty_install()
