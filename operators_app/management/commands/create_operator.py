"""`python manage.py create_operator NAME`: a staff user who may run sessions, and an API token.

The token goes to stdout alone (scripts read it); everything else to stderr.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from operators_app.models import ApiToken
from operators_app.permissions import grant_operator_permissions


class Command(BaseCommand):
    help = (
        "Create (or update) a staff user with the session permissions (view, add, change) "
        "and print a new API token for them. Set a password with `changepassword NAME`."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--token-name", default="created by create_operator")
        parser.add_argument("--no-token", action="store_true", help="create no API token")

    def handle(self, *args, username: str, token_name: str, no_token: bool, **options) -> None:
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"is_staff": True}
        )
        if created:
            user.set_unusable_password()
        user.is_staff = True
        user.save()
        grant_operator_permissions(user)
        verb = "created" if created else "updated"
        self.stderr.write(f"operator {username} {verb}: may view, start, end and interrupt")
        if no_token:
            return
        _, raw = ApiToken.objects.issue(user, token_name)
        self.stderr.write("API token (shown once; send it as 'Authorization: Bearer <token>'):")
        self.stdout.write(raw)
