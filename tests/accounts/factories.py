import factory
from factory.django import DjangoModelFactory

from apps.accounts.models import Role, User

STRONG_PASSWORD = "Charge&Park2024"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    role = Role.OPERATOR
    password = factory.django.Password(STRONG_PASSWORD)


class AdminFactory(UserFactory):
    role = Role.ADMIN
