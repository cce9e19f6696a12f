"""Who may do what with sessions: operators by permission, callers with their session token.

A request speaks for
- an operator: a logged-in staff user (Django's login; the session cookie, so unsafe methods
  must also pass the CSRF check), or a script with an API token (`Authorization: Bearer vat_…`,
  operators_app). Permissions of the Session model decide: `view_session` lists, reads and
  watches, `change_session` ends and interrupts, `add_session` starts when sessions are not
  public. Superusers have them all.
- a caller: the signed session token POST /api/sessions returned (`Authorization: Bearer
  <token>`), which reads and ends that one session.
- nobody: the public endpoints only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware

from operators_app.authentication import is_api_token, user_for_api_token
from sessions_app.events import ErrorCode
from sessions_app.tokens import TokenRefused, session_of_token

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SIGN_IN = "log in as an operator, or send 'Authorization: Bearer <API token>'"


class AccessRefused(Exception):
    """401: no (valid) credentials; 403: credentials without the right to this."""

    def __init__(self, status: int, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def unauthenticated(message: str) -> AccessRefused:
    return AccessRefused(401, ErrorCode.UNAUTHORIZED, message)


def forbidden(message: str) -> AccessRefused:
    return AccessRefused(403, ErrorCode.FORBIDDEN, message)


def is_operator(user: AbstractBaseUser | None) -> bool:
    """Operators are active staff users; their permissions say what they may do."""
    return user is not None and user.is_active and user.is_staff


@dataclass(frozen=True)
class Principal:
    """Who is asking: an operator (`user`), a caller (`session_id`), or neither (anonymous)."""

    user: AbstractBaseUser | None = None
    session_id: uuid.UUID | None = None

    async def may(self, permission: str) -> bool:
        """Whether this is an active staff user holding `permission` on sessions."""
        return is_operator(self.user) and await self.user.ahas_perm(f"sessions_app.{permission}")

    async def require(self, permission: str) -> None:
        """Refuse unless an operator with `permission` is asking."""
        if await self.may(permission):
            return
        if self.user is not None:
            raise forbidden(f"your account lacks the {permission} permission")
        if self.session_id is not None:
            raise forbidden("a session token opens only its own session")
        raise unauthenticated(f"operators only: {SIGN_IN}")

    async def require_own_or(self, session_id: str, permission: str) -> None:
        """Refuse unless this is the session's caller, or an operator with `permission`."""
        if self.session_id is not None and self.session_id.hex == _hex_or_none(session_id):
            return
        await self.require(permission)


def _hex_or_none(session_id: str) -> str | None:
    try:
        return uuid.UUID(session_id).hex
    except ValueError:
        return None


async def principal_for(request: HttpRequest) -> Principal:
    """Who sent `request`. A credential given but wrong is refused, never taken as anonymous."""
    header = request.headers.get("Authorization", "")
    if header:
        return await _bearer_principal(header)
    user = await request.auser()
    if not user.is_authenticated:
        return Principal()
    if request.method not in SAFE_METHODS:
        _check_csrf(request)
    return Principal(user=user)


async def principal_for_socket(scope: dict) -> Principal:
    """Who opened a WebSocket: an API token in its Authorization header, or the logged-in
    user (AuthMiddlewareStack; the origin check keeps other sites from using the cookie)."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            return await _bearer_principal(value.decode("latin-1"))
    user = scope.get("user")
    if user is not None and user.is_authenticated:
        return Principal(user=user)
    return Principal()


async def _bearer_principal(header: str) -> Principal:
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise unauthenticated("the Authorization header must be 'Bearer <token>'")
    if is_api_token(credential):
        user = await user_for_api_token(credential)
        if user is None:
            raise unauthenticated("unknown or revoked API token")
        return Principal(user=user)
    try:
        return Principal(session_id=session_of_token(credential, settings.SESSION_ACCESS_MAX_AGE_S))
    except TokenRefused as exc:
        raise unauthenticated(str(exc)) from None


def _check_csrf(request: HttpRequest) -> None:
    """A cookie-authenticated change needs Django's CSRF token (X-CSRFToken header)."""
    check = CsrfViewMiddleware(lambda _: None)
    check.process_request(request)
    if check.process_view(request, None, (), {}) is not None:
        raise forbidden("CSRF check failed: send the csrftoken cookie's value as X-CSRFToken")
