"""``python manage.py user create NAME --role ROLE`` / ``user token NAME`` / ``user unlock NAME``.

The stable operating interface of SPEC §12: scripts create accounts, give a
building management system its API token, and lift a login lock. Each goes
through the accounts services, so the password rules hold and every change is
a security event in the device log.
"""

from __future__ import annotations

import getpass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Role, User
from apps.accounts.services import user_create, user_token_renew, user_unlock


class Command(BaseCommand):
    help = "Create users, give them a new API token, or unlock them."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser(
            "create",
            help="Create a user (password from EVCE_USER_PASSWORD, else asked for).",
        )
        create.add_argument("name")
        create.add_argument("--role", required=True, choices=Role.values)
        token = sub.add_parser(
            "token", help="Print a new API token for the user (the previous one stops working)."
        )
        token.add_argument("name")
        unlock = sub.add_parser("unlock", help="Lift the user's login lock.")
        unlock.add_argument("name")

    def handle(self, *args, **options):
        action, name = options["action"], options["name"]
        if action == "create":
            self._create(name, options["role"])
            return
        user = User.objects.filter(username=name).first()
        if user is None:
            raise CommandError(f"No user named {name!r}.")
        if action == "token":
            self.stdout.write(user_token_renew(user))
        elif user_unlock(user):
            self.stdout.write(f"{name} unlocked.")
        else:
            self.stdout.write(f"{name} was not locked.")

    def _create(self, name: str, role: str) -> None:
        password = settings.USER_PASSWORD or self._ask_password()
        try:
            user_create(username=name, password=password, role=role)
        except ValidationError as error:
            messages = [
                f"{field}: {message}" if field != "__all__" else message
                for field, field_messages in error.message_dict.items()
                for message in field_messages
            ]
            raise CommandError("\n".join(messages)) from None
        self.stdout.write(f"User {name} created with role {role}.")

    def _ask_password(self) -> str:
        try:
            first = getpass.getpass("Password: ")
            second = getpass.getpass("Password (again): ")
        except (EOFError, KeyboardInterrupt):
            raise CommandError("No password given (set EVCE_USER_PASSWORD).") from None
        if first != second:
            raise CommandError("The passwords differ.")
        if not first:
            raise CommandError("No password given (set EVCE_USER_PASSWORD).")
        return first
