"""What an operator may do with sessions, as Django permissions of the Session model."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Permission

# Read, list and watch sessions; start one when sessions are not public; end and interrupt.
OPERATOR_PERMISSIONS = ("view_session", "add_session", "change_session")
SESSIONS_APP = "sessions_app"


def grant_operator_permissions(user: AbstractBaseUser) -> None:
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label=SESSIONS_APP, codename__in=OPERATOR_PERMISSIONS
        )
    )
