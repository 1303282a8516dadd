"""Create the admin account (a superuser) with a generated password, printed once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import AdminExists, admin_create


class Command(BaseCommand):
    help = (
        "Create a superuser with a generated password, printed once (only its hash is stored). "
        "--reset-password gives an existing account a new one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin", help="login name (default: admin)")
        parser.add_argument("--email", default="", help="address for password resets")
        parser.add_argument(
            "--reset-password", action="store_true", help="if the user exists, give it a new generated password"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"].strip()
        if not username:
            raise CommandError("--username must not be empty")
        try:
            _user, password = admin_create(
                username=username, email=options["email"].strip(), reset_password=options["reset_password"]
            )
        except AdminExists:
            raise CommandError(
                f"a user named {username!r} exists already: add --reset-password to give it a new password"
            ) from None
        self.stdout.write(
            self.style.SUCCESS(f"admin login: {username} / {password}")
            + "\n(shown once: store it now; `manage.py create_admin --reset-password` makes a new one)"
        )
