import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from apps.accounts.models import Role, User
from tests.accounts.factories import STRONG_PASSWORD, AdminFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Hashing strength is not what these tests are about.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.parametrize("name", ["root", "admin", "Administrator", "ROOT"])
def test_full_clean_refuses_reserved_usernames(name):
    user = User(username=name, role=Role.OPERATOR)
    user.set_password(STRONG_PASSWORD)
    with pytest.raises(ValidationError) as excinfo:
        user.full_clean()
    assert "username" in excinfo.value.message_dict
    assert "reserved" in excinfo.value.message_dict["username"][0]


def test_full_clean_accepts_an_ordinary_username():
    user = User(username="facility.manager", role=Role.OPERATOR)
    user.set_password(STRONG_PASSWORD)
    user.full_clean()


def test_usernames_are_unique():
    UserFactory(username="alice")
    duplicate = User(username="alice", password="x")
    with pytest.raises(ValidationError) as excinfo:
        duplicate.full_clean()
    assert excinfo.value.message_dict["username"] == ["A user with that user name already exists."]


@pytest.mark.parametrize(
    ("role", "staff"),
    [(Role.ADMIN, True), (Role.OPERATOR, False), (Role.EBMS, False)],
)
def test_staff_and_superuser_flags_follow_the_role(role, staff):
    user = UserFactory(role=role)
    user.refresh_from_db()
    assert user.is_staff is staff
    assert user.is_superuser is staff
    assert user.is_admin is staff


def test_flags_cannot_be_set_against_the_role():
    user = UserFactory(role=Role.OPERATOR, is_staff=True, is_superuser=True)
    user.refresh_from_db()
    assert not user.is_staff
    assert not user.is_superuser


def test_demoting_an_admin_removes_its_admin_rights():
    user = AdminFactory()
    user.role = Role.OPERATOR
    user.save()
    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser) == (False, False)
    assert not user.has_perm("accounts.change_user")


def test_new_users_are_operators_by_default():
    user = User.objects.create_user(username="bob", password=STRONG_PASSWORD)
    assert user.role == Role.OPERATOR
    assert not user.is_staff


def test_create_superuser_gives_an_admin():
    user = User.objects.create_superuser("boss", "boss@example.com", STRONG_PASSWORD)
    user.refresh_from_db()
    assert user.role == Role.ADMIN
    assert user.is_staff and user.is_superuser
    assert user.check_password(STRONG_PASSWORD)


def test_createsuperuser_command_gives_an_admin():
    call_command(
        "createsuperuser", interactive=False, username="chief", email="c@example.com", verbosity=0
    )
    user = User.objects.get(username="chief")
    assert user.role == Role.ADMIN
    assert user.is_superuser


def test_createsuperuser_command_refuses_a_reserved_name():
    with pytest.raises(CommandError, match="reserved"):
        call_command(
            "createsuperuser",
            interactive=False,
            username="Admin",
            email="a@example.com",
            verbosity=0,
        )
    assert not User.objects.exists()


def test_full_clean_refuses_an_unknown_role():
    user = UserFactory.build(role="superhero")
    with pytest.raises(ValidationError) as excinfo:
        user.full_clean()
    assert "role" in excinfo.value.message_dict


def test_the_database_refuses_an_unknown_role():
    user = UserFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=user.pk).update(role="superhero")
    user.refresh_from_db()
    assert user.role == Role.OPERATOR
