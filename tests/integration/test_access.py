"""Who may do what: every REST endpoint and the watch socket, for every kind of caller.

The matrix asserts each answer's status (or close code) and, for every refusal, that nothing
changed: the session is still active, no control message reached it, no session was created.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import AsyncClient

from operators_app.models import ApiToken, token_digest
from sessions_app.contracts import validator
from sessions_app.models import Session, group_name
from sessions_app.tokens import issue_token
from tests.conftest import assert_api_error, bearer, make_operator, make_session
from voiceproject.asgi import application

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("in_memory_layer"),
]


@dataclass
class Caller:
    """One kind of caller: how it authenticates over HTTP and on a socket."""

    client: AsyncClient
    headers: dict[str, str] = field(default_factory=dict)
    socket_headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def get(self, path: str) -> Any:
        return await self.client.get(path, headers=self.headers)

    async def post(self, path: str, body: dict | None = None) -> Any:
        return await self.client.post(
            path, body or {}, content_type="application/json", headers=self.headers
        )


async def logged_in(permissions: bool) -> Caller:
    user = await sync_to_async(make_operator)(
        f"staff-{uuid.uuid4().hex[:6]}", permissions=permissions
    )
    client = AsyncClient()
    await client.aforce_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    return Caller(client, socket_headers=[(b"cookie", cookie)])


def with_bearer(token: str) -> Caller:
    return Caller(
        AsyncClient(),
        headers=bearer(token),
        socket_headers=[(b"authorization", f"Bearer {token}".encode())],
    )


async def new_api_token(*, revoked: bool = False) -> str:
    user = await sync_to_async(make_operator)(f"script-{uuid.uuid4().hex[:6]}")
    token, raw = await sync_to_async(ApiToken.objects.issue)(user, "matrix")
    if revoked:
        await sync_to_async(token.revoke)()
    return raw


async def caller_of(kind: str, session: Session) -> Caller:
    match kind:
        case "anonymous":
            return Caller(AsyncClient())
        case "own session token":
            return with_bearer(issue_token(session.id))
        case "other session's token":
            return with_bearer(issue_token((await make_session()).id))
        case "staff with permissions":
            return await logged_in(permissions=True)
        case "staff without permissions":
            return await logged_in(permissions=False)
        case "API token":
            return with_bearer(await new_api_token())
        case "revoked API token":
            return with_bearer(await new_api_token(revoked=True))
    raise AssertionError(kind)


CALLERS = [
    "anonymous",
    "own session token",
    "other session's token",
    "staff with permissions",
    "staff without permissions",
    "API token",
    "revoked API token",
]
# The answer each caller gets, per endpoint (an HTTP status, or the watch socket's close code;
# "open" for a socket that follows the session).
MATRIX = {
    #                          list  create detail end  interrupt watch
    "anonymous": (401, 201, 401, 401, 401, 4401),
    "own session token": (403, 201, 200, 200, 403, 4403),
    "other session's token": (403, 201, 403, 403, 403, 4403),
    "staff with permissions": (200, 201, 200, 200, 202, "open"),
    "staff without permissions": (403, 201, 403, 403, 403, 4403),
    "API token": (200, 201, 200, 200, 202, "open"),
    "revoked API token": (401, 401, 401, 401, 401, 4401),
}
ENDPOINTS = ["list", "create", "detail", "end", "interrupt", "watch"]
REFUSAL_CODES = {401: "unauthorized", 403: "forbidden"}


def expected(kind: str, endpoint: str) -> int | str:
    return MATRIX[kind][ENDPOINTS.index(endpoint)]


async def listen_to_group(session_id: uuid.UUID) -> str:
    layer = get_channel_layer()
    channel = await layer.new_channel("test.")
    await layer.group_add(group_name(session_id), channel)
    return channel


async def nothing_sent_to(channel: str) -> bool:
    try:
        await asyncio.wait_for(get_channel_layer().receive(channel), 0.2)
    except TimeoutError:
        return True
    return False


@pytest.mark.parametrize("kind", CALLERS)
@pytest.mark.parametrize("endpoint", ["list", "create", "detail", "end", "interrupt"])
async def test_rest_access(kind, endpoint):
    session = await make_session()
    channel = await listen_to_group(session.id)
    caller = await caller_of(kind, session)
    sessions_before = await Session.objects.acount()
    path = f"/api/sessions/{session.id}"

    match endpoint:
        case "list":
            response = await caller.get("/api/sessions")
        case "create":
            response = await caller.post("/api/sessions", {"agent": "echo"})
        case "detail":
            response = await caller.get(path)
        case "end" | "interrupt":
            response = await caller.post(f"{path}/{endpoint}")

    status = expected(kind, endpoint)
    assert response.status_code == status, response.content
    if status in REFUSAL_CODES:
        body = assert_api_error(response, status, REFUSAL_CODES[status])
        assert body["retryable"] is False
        if status == 401:
            assert response["WWW-Authenticate"].startswith("Bearer")
        stored = await Session.objects.aget(pk=session.id)
        assert stored.status == Session.Status.ACTIVE, "a refused caller changed nothing"
        assert await Session.objects.acount() == sessions_before
        assert await nothing_sent_to(channel)
    elif endpoint in ("list", "detail", "create", "end"):
        body = response.json()
        for item in body.get("sessions", [body]):
            validator("session").validate(item)


@pytest.mark.parametrize("kind", CALLERS)
@pytest.mark.parametrize("path", ["/health", "/api/agents"])
async def test_public_endpoints_answer_everyone(kind, path):
    caller = await caller_of(kind, await make_session())
    assert (await caller.get(path)).status_code == 200


async def test_a_caller_ending_their_own_session_is_client_ended():
    session = await make_session()
    caller = with_bearer(issue_token(session.id))
    response = await caller.post(f"/api/sessions/{session.id}/end")
    assert response.status_code == 200
    assert response.json()["end_reason"] == "client_ended"


@pytest.mark.parametrize("kind", CALLERS)
async def test_watch_socket_access(kind):
    session = await make_session(channel=Session.Channel.ACS)
    caller = await caller_of(kind, session)
    watcher = WebsocketCommunicator(
        application,
        f"/ws/sessions/{session.id}/watch/",
        headers=[(b"origin", b"http://localhost"), (b"host", b"localhost"), *caller.socket_headers],
    )
    connected, _ = await watcher.connect()
    assert connected
    try:
        if expected(kind, "watch") == "open":
            assert await watcher.receive_nothing(timeout=0.2), "a follower's socket stays open"
        else:
            closed = await watcher.receive_output(timeout=3)
            assert closed == {"type": "websocket.close", "code": expected(kind, "watch")}
    finally:
        await watcher.disconnect()


async def test_a_session_token_in_a_malformed_header_is_unauthorized():
    session = await make_session()
    response = await AsyncClient().get(
        f"/api/sessions/{session.id}", headers={"Authorization": issue_token(session.id)}
    )
    assert_api_error(response, 401, "unauthorized")


# --- operators' cookies and CSRF ---------------------------------------------------------------


async def test_a_cookie_authenticated_change_needs_the_csrf_token():
    user = await sync_to_async(make_operator)("csrf-operator")
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(user)
    session = await make_session()

    refused = await client.post(f"/api/sessions/{session.id}/end")
    assert_api_error(refused, 403, "forbidden")
    assert (await Session.objects.aget(pk=session.id)).status == Session.Status.ACTIVE

    await client.get("/")  # the dashboard sets the csrftoken cookie
    csrf = client.cookies["csrftoken"].value
    allowed = await client.post(f"/api/sessions/{session.id}/end", headers={"X-CSRFToken": csrf})
    assert allowed.status_code == 200, allowed.content


async def test_api_is_never_an_html_login_redirect():
    response = await AsyncClient().get("/api/sessions", headers={"Accept": "text/html"})
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"


# --- PUBLIC_SESSIONS off -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("anonymous", 401),
        ("other session's token", 403),
        ("staff without permissions", 403),
        ("staff with permissions", 201),
        ("API token", 201),
        ("revoked API token", 401),
    ],
)
async def test_private_sessions_are_started_by_operators_only(settings, kind, status):
    settings.PUBLIC_SESSIONS = False
    caller = await caller_of(kind, await make_session())
    before = await Session.objects.acount()
    response = await caller.post("/api/sessions", {"agent": "echo"})
    assert response.status_code == status, response.content
    assert await Session.objects.acount() == before + (status == 201)


# --- the creation rate limit -----------------------------------------------------------------


async def test_creating_too_fast_from_one_address_is_429_with_retry_after(settings):
    settings.SESSION_CREATE_RATE = "2/min"
    client = Caller(AsyncClient())
    for _ in range(2):
        assert (await client.post("/api/sessions")).status_code == 201

    refused = await client.post("/api/sessions")
    body = assert_api_error(refused, 429, "rate_limited")
    assert body["retryable"] is True
    assert 1 <= int(refused["Retry-After"]) <= 30  # a token comes back every 30 s
    assert await Session.objects.acount() == 2


async def test_operators_who_may_start_sessions_are_not_rate_limited(settings, api_token):
    settings.SESSION_CREATE_RATE = "1/min"
    operator = with_bearer(api_token)
    for _ in range(3):
        assert (await operator.post("/api/sessions")).status_code == 201


# --- API tokens --------------------------------------------------------------------------------


async def test_an_api_token_is_stored_as_a_hash_and_records_its_use(api_token):
    token = await ApiToken.objects.aget()
    assert token.digest == token_digest(api_token) != api_token
    assert token.prefix == api_token[:12] and len(api_token) > 40
    assert token.last_used_at is None

    response = await with_bearer(api_token).get("/api/sessions")
    assert response.status_code == 200
    await token.arefresh_from_db()
    assert token.last_used_at is not None


async def test_an_inactive_users_token_is_refused(api_token, operator):
    operator.is_active = False
    await operator.asave()
    response = await with_bearer(api_token).get("/api/sessions")
    assert_api_error(response, 401, "unauthorized")


async def test_create_operator_prints_a_working_token(capsys):
    await sync_to_async(call_command)("create_operator", "alice")
    token = capsys.readouterr().out.strip()
    assert token.startswith("vat_")
    assert (await with_bearer(token).get("/api/sessions")).status_code == 200
    session = await make_session()
    interrupt = await with_bearer(token).post(f"/api/sessions/{session.id}/interrupt")
    assert interrupt.status_code == 202


# --- the dashboard -----------------------------------------------------------------------------


async def test_the_dashboard_asks_anonymous_visitors_to_log_in():
    page = (await AsyncClient().get("/")).content.decode()
    assert 'data-can-view-sessions="false"' in page
    assert 'data-testid="sessions-login"' in page
    assert 'href="/admin/login/?next=/"' in page
    assert 'data-testid="start-button"' in page, "the talk panel is for everyone"


async def test_the_dashboard_shows_operators_their_panels(operator_client):
    page = (await operator_client.get("/")).content.decode()
    assert 'data-can-view-sessions="true"' in page
    assert 'data-can-control-sessions="true"' in page
    assert 'data-testid="sessions-login"' not in page
    assert 'data-testid="account-name">operator<' in page


async def test_the_dashboard_tells_staff_without_permission_why_there_is_no_list():
    caller = await logged_in(permissions=False)
    page = (await caller.get("/")).content.decode()
    assert 'data-can-view-sessions="false"' in page
    assert "Your account may not view sessions" in page


# --- the admin's actions -------------------------------------------------------------------------


async def test_admin_actions_need_the_change_permission(operator):
    viewer = await sync_to_async(make_operator)("viewer", permissions=False)
    await sync_to_async(viewer.user_permissions.add)(
        *[p async for p in Permission.objects.filter(codename="view_session")]
    )
    session = await make_session()
    changelist = "/admin/sessions_app/session/"
    action = {"action": "end_sessions", "_selected_action": [str(session.id)]}

    client = AsyncClient()
    await client.aforce_login(viewer)
    assert (await client.get(changelist)).status_code == 200, "a viewer sees the sessions"
    await client.post(changelist, action)
    assert (await Session.objects.aget(pk=session.id)).status == Session.Status.ACTIVE

    await client.aforce_login(operator)
    assert (await client.post(changelist, action)).status_code == 302
    assert (await Session.objects.aget(pk=session.id)).status == Session.Status.ENDED


async def test_an_api_token_made_in_the_admin_is_shown_once_and_works(admin_user):
    client = AsyncClient()
    await client.aforce_login(admin_user)
    response = await client.post(
        "/admin/operators_app/apitoken/add/",
        {"user": admin_user.pk, "name": "nightly script"},
        follow=True,
    )
    shown = [str(m) for m in response.context["messages"]]
    [raw] = [word for m in shown for word in m.split() if word.startswith("vat_")]
    token = await ApiToken.objects.aget(name="nightly script")
    assert token.digest == token_digest(raw) and raw not in (token.prefix, token.digest)
    assert (await with_bearer(raw).get("/api/sessions")).status_code == 200
    listing = (await client.get("/admin/operators_app/apitoken/")).content.decode()
    assert raw not in listing and token.prefix in listing
