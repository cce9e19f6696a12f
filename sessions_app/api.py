"""The REST API: health, sessions, operator control. Errors answer in the error-event shape.

Who may call what is sessions_app/access.py's to say; each view names what it needs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import OperationalError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from agents_app.models import Agent, Task
from agents_app.serializers import agent_listing_json, task_json
from agents_app.strategies import unavailable_reason
from sessions_app import events, shutdown
from sessions_app.access import AccessRefused, Principal, principal_for
from sessions_app.control import LAYER_OUTAGES, end_live_session, interrupt_session
from sessions_app.events import ErrorCode
from sessions_app.models import Session
from sessions_app.protocol import ProtocolError, check_sample_rate, decode_json
from sessions_app.rate_limit import session_creation
from sessions_app.recording.download import recording_response
from sessions_app.serializers import call_event_json, session_json, utterance_json
from sessions_app.text import clean_text
from sessions_app.tokens import issue_token

View = Callable[..., Awaitable[JsonResponse]]
HEALTH_TIMEOUT_S = 2.0

logger = logging.getLogger(__name__)


def error_response(code: ErrorCode, message: str, status: int) -> JsonResponse:
    return JsonResponse(events.error(code, message, "api"), status=status)


def refusal_response(refused: AccessRefused) -> JsonResponse:
    response = error_response(refused.code, refused.message, refused.status)
    if refused.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def database_unavailable_response(exc: OperationalError) -> JsonResponse:
    """The database refused or dropped the connection: a 503 the client may retry, not a
    crash page. Each request in flight holds a connection of its own (Django runs an async
    view's queries on a thread of its own), so a burst of requests can meet PostgreSQL's
    `max_connections` (bench/load.py: 160 sessions opened in a second over two processes)."""
    logger.warning("database unavailable (%s): %s", type(exc).__name__, str(exc)[:200])
    response = error_response(
        ErrorCode.STORAGE_FAILED, "the database is unavailable or at its connection limit", 503
    )
    response["Retry-After"] = "1"
    return response


def api_view(*methods: str) -> Callable[[View], View]:
    """An async JSON endpoint: allowed methods checked, access refusals answered as errors.

    Django's CSRF middleware stands aside: bearer tokens need no CSRF protection, and a
    cookie-authenticated change is checked where it is authenticated (access.py).
    """

    def decorate(view: View) -> View:
        @functools.wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
            if request.method not in methods:
                response = error_response(
                    ErrorCode.METHOD_NOT_ALLOWED, f"use {' or '.join(methods)}", 405
                )
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return await view(request, *args, **kwargs)
            except AccessRefused as refused:
                return refusal_response(refused)
            except OperationalError as exc:
                return database_unavailable_response(exc)

        return csrf_exempt(wrapper)

    return decorate


def requires(permission: str, *, or_own: bool = False) -> Callable[[View], View]:
    """Refuse the view to all but operators with `permission` (or, `or_own`, to the caller
    whose session token names the session in the URL); before the session is looked up, so
    that a refusal says nothing of whether it exists."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        async def wrapper(request: HttpRequest, session_id: str) -> JsonResponse:
            principal = await principal_for(request)
            if or_own:
                await principal.require_own_or(session_id, permission)
            else:
                await principal.require(permission)
            request.principal = principal
            return await view(request, session_id)

        return wrapper

    return decorate


@database_sync_to_async
def _ping_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def _ping_channel_layer() -> None:
    # A send reaches the layer's server (Redis) and expires unread. A receive would share
    # channels_redis's process-wide receive loop with the live sessions' consumers.
    layer = get_channel_layer()
    await layer.send(await layer.new_channel("health."), {"type": "health.ping"})


async def _check(probe: Callable[[], Awaitable[None]]) -> str:
    try:
        await asyncio.wait_for(probe(), HEALTH_TIMEOUT_S)
    except TimeoutError:
        return "down: no answer in time"
    except Exception as exc:  # any failure of the dependency is what /health reports
        return f"down: {type(exc).__name__}"
    return "ok"


@api_view("GET")
async def health(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": await _check(_ping_database),
        "channel_layer": await _check(_ping_channel_layer),
    }
    healthy = all(state == "ok" for state in checks.values())
    body = {"status": "ok" if healthy else "degraded", "checks": checks}
    return JsonResponse(body, status=200 if healthy else 503)


@api_view("GET")
async def agents(request: HttpRequest) -> JsonResponse:
    listed = [agent_listing_json(agent) async for agent in Agent.objects.all()]
    return JsonResponse({"agents": listed})


@api_view("GET", "POST")
async def sessions(request: HttpRequest) -> JsonResponse:
    principal = await principal_for(request)
    if request.method == "GET":
        await principal.require("view_session")
        recent = Session.objects.select_related("agent")[:50]
        return JsonResponse({"sessions": [session_json(s) async for s in recent]})
    if not settings.PUBLIC_SESSIONS:
        await principal.require("add_session")
    if too_many := await _creation_rate_exceeded(request, principal):
        return too_many
    return await _create_session(request)


async def _creation_rate_exceeded(
    request: HttpRequest, principal: Principal
) -> JsonResponse | None:
    """A 429 when this address has started sessions too fast; operators who may start them
    are not limited (benchmarks and scripts)."""
    if await principal.may("add_session"):
        return None
    wait_s = session_creation.retry_after(request.META.get("REMOTE_ADDR", ""))
    if wait_s is None:
        return None
    seconds = max(1, math.ceil(wait_s))
    response = error_response(
        ErrorCode.RATE_LIMITED,
        f"too many sessions started from your address: try again in {seconds} s",
        429,
    )
    response["Retry-After"] = str(seconds)
    return response


MAX_TURN_BUDGET = 1000


def _session_options(body: object) -> tuple[str | None, int, int | None]:
    """Validate a create-session body: (agent name, sample rate, turn budget)."""
    if not isinstance(body, dict):
        raise ProtocolError(ErrorCode.INVALID_EVENT, "request body must be a JSON object")
    agent_name = body.get("agent")
    turn_budget = body.get("turn_budget")
    if agent_name is not None and (not isinstance(agent_name, str) or not agent_name.strip()):
        raise ProtocolError(ErrorCode.INVALID_EVENT, "'agent' must be an agent's name")
    if agent_name is not None:
        agent_name = clean_text(agent_name)
    if turn_budget is not None and (
        type(turn_budget) is not int or not 1 <= turn_budget <= MAX_TURN_BUDGET
    ):
        raise ProtocolError(
            ErrorCode.INVALID_EVENT, f"'turn_budget' must be an integer from 1 to {MAX_TURN_BUDGET}"
        )
    return agent_name, check_sample_rate(body.get("sample_rate", 16000)), turn_budget


async def _create_session(request: HttpRequest) -> JsonResponse:
    if shutdown.at_capacity():
        return error_response(
            ErrorCode.AT_CAPACITY, "this server holds all the live sessions it can; retry", 503
        )
    shutdown.sweeper.ensure_running()  # a session never connected is ended in time
    try:
        body = decode_json(request.body or b"{}")
        agent_name, sample_rate, turn_budget = _session_options(body)
    except ProtocolError as exc:
        return error_response(exc.code, exc.message, 400)
    try:
        agent = await Agent.objects.afor_session(agent_name)
    except Agent.DoesNotExist:
        return error_response(ErrorCode.AGENT_NOT_FOUND, f"no agent named {agent_name!r}", 400)
    if reason := unavailable_reason(agent.strategy):
        message = f"agent {agent.name!r} is unavailable on this server: {reason}"
        return error_response(ErrorCode.NOT_CONFIGURED, message, 503)
    session = await Session.objects.acreate(
        agent=agent,
        sample_rate=sample_rate,
        turn_budget=turn_budget or agent.turn_budget or settings.CONTEXT_TURN_BUDGET,
    )
    token = issue_token(session.id)
    ws_path = f"/ws/sessions/{session.id}/?token={token}"
    scheme = "wss" if request.is_secure() else "ws"
    return JsonResponse(
        {
            **session_json(session),
            "token": token,
            "ws_path": ws_path,
            "ws_url": f"{scheme}://{request.get_host()}{ws_path}",
        },
        status=201,
    )


def with_session(view: Callable[..., Awaitable[JsonResponse]]) -> View:
    """Load the session named in the URL, answering 404 in the error shape when there is none."""

    @functools.wraps(view)
    async def wrapper(request: HttpRequest, session_id: str) -> JsonResponse:
        session = await find_session(session_id)
        if session is None:
            return error_response(ErrorCode.SESSION_NOT_FOUND, f"no session {session_id}", 404)
        return await view(request, session)

    return wrapper


async def find_session(session_id: str) -> Session | None:
    try:
        pk = uuid.UUID(session_id)
    except ValueError:
        return None
    return await Session.objects.select_related("agent").filter(pk=pk).afirst()


@api_view("GET")
@requires("view_session", or_own=True)
@with_session
async def session_detail(request: HttpRequest, session: Session) -> JsonResponse:
    utterances = [utterance_json(u) async for u in session.utterances.all()]
    tasks = [
        task_json(task, list(task.tool_invocations.all()))
        async for task in Task.objects.filter(session=session).prefetch_related("tool_invocations")
    ]
    detail = {**session_json(session), "utterances": utterances, "tasks": tasks}
    if session.channel == Session.Channel.ACS:
        detail["call_events"] = [call_event_json(e) async for e in session.call_events.all()]
    return JsonResponse(detail)


@api_view("GET")
@requires("view_session")
@with_session
async def session_recording(request: HttpRequest, session: Session) -> HttpResponse:
    """The call's stereo WAV (caller left, agent right): operators only, never the caller."""
    if not session.recording:
        return error_response(ErrorCode.RECORDING_NOT_FOUND, "this session has no recording", 404)
    try:
        return await recording_response(session.recording.name, f"session-{session.id}.wav")
    except OSError:
        return error_response(ErrorCode.RECORDING_NOT_FOUND, "the recording file is missing", 404)


@api_view("POST")
@requires("change_session", or_own=True)
@with_session
async def session_end(request: HttpRequest, session: Session) -> JsonResponse:
    if session.status != Session.Status.ACTIVE:
        return error_response(ErrorCode.SESSION_ENDED, "the session has already ended", 409)
    own = request.principal.session_id == session.id
    try:
        await end_live_session(session.id, "client_ended" if own else "operator_ended")
    except LAYER_OUTAGES:
        return _control_unavailable()
    return JsonResponse(session_json(await find_session(str(session.id))))


@api_view("POST")
@requires("change_session")
@with_session
async def session_interrupt(request: HttpRequest, session: Session) -> JsonResponse:
    if session.status != Session.Status.ACTIVE:
        return error_response(ErrorCode.SESSION_ENDED, "the session has ended", 409)
    try:
        await interrupt_session(session.id)
    except LAYER_OUTAGES:
        return _control_unavailable()
    return JsonResponse({"session_id": str(session.id), "interrupt": "sent"}, status=202)


def _control_unavailable() -> JsonResponse:
    message = "session control is unavailable: the channel layer is down; try again"
    return error_response(ErrorCode.INTERNAL_ERROR, message, 503)
