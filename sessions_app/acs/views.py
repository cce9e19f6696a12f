"""ACS's HTTP side: the Event Grid webhook that answers calls, and the per-call callbacks."""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.db import IntegrityError
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from agents_app.errors import ProviderError
from agents_app.models import Agent
from sessions_app import events, log_context
from sessions_app.acs import calls
from sessions_app.acs.config import missing_settings, not_configured_message
from sessions_app.acs.notifications import (
    CallNotification,
    IncomingCall,
    SubscriptionValidation,
    parse_callbacks,
    parse_event_grid,
)
from sessions_app.acs.tokens import AcsTokenRefused, verify_acs_request
from sessions_app.api import api_view, error_response, find_session
from sessions_app.control import LAYER_OUTAGES, ask_to_end
from sessions_app.events import ErrorCode
from sessions_app.models import CallEvent, Session
from sessions_app.protocol import ProtocolError
from sessions_app.redaction import redact_digits
from sessions_app.store import durably, end_session

logger = logging.getLogger(__name__)

CallState = Session.CallState

# Callback kind → the call state it moves the session to.
STATE_AFTER = {
    "CallConnected": CallState.CONNECTED,
    "MediaStreamingStarted": CallState.STREAMING,
    "MediaStreamingStopped": CallState.CONNECTED,
    "MediaStreamingFailed": CallState.MEDIA_FAILED,
    "CallDisconnected": CallState.DISCONNECTED,
}


def _not_configured() -> JsonResponse | None:
    missing = missing_settings()
    if not missing:
        return None
    return error_response(ErrorCode.NOT_CONFIGURED, not_configured_message(missing), 503)


@api_view("POST")
async def incoming_events(request: HttpRequest) -> JsonResponse:
    """Event Grid: the subscription handshake, and IncomingCall → a session and an answer."""
    # The secret first, when there is one: a stranger learns nothing, not even what is unset.
    secret = settings.ACS_WEBHOOK_SECRET
    if secret and not constant_time_compare(request.GET.get("secret", ""), secret):
        return error_response(ErrorCode.UNAUTHORIZED, "missing or wrong 'secret' parameter", 401)
    if refusal := _not_configured():
        return refusal
    try:
        delivered = parse_event_grid(request.body)
    except ProtocolError as exc:
        return error_response(exc.code, exc.message, 400)
    for event in delivered:
        if isinstance(event, SubscriptionValidation):
            logger.info("Event Grid subscription validated")
            return JsonResponse({"validationResponse": event.code})
    answered = []
    for call in delivered:
        session, failure = await _answer(call)
        if failure is not None:
            return failure
        answered.append(str(session.id))
    return JsonResponse({"sessions": answered})


async def _answer(call: IncomingCall) -> tuple[Session, JsonResponse | None]:
    """A session for the call, answered with media streaming to it."""
    session, ours = await _claim(call)
    if not ours:
        return session, None
    logger.info("incoming call: session %s answering", session.id)
    try:
        connection_id = await calls.answer_call(call.incoming_call_context, session.id)
    except ProviderError as exc:
        logger.error("answering the call of session %s failed: %s", session.id, exc)
        await Session.objects.filter(pk=session.pk).aupdate(
            call_state=CallState.ANSWER_FAILED,
            status=Session.Status.FAILED,
            end_reason="answer_failed",
            ended_at=timezone.now(),
        )
        return session, JsonResponse(events.error_for(exc), status=502)
    await Session.objects.filter(pk=session.pk).aupdate(call_connection_id=connection_id)
    return session, None


async def _claim(call: IncomingCall) -> tuple[Session, bool]:
    """The call's session, and whether this request is the one to answer it.

    Event Grid delivers at least once, possibly to two processes at the same time: a copy of
    a call already answered (or being answered) answers nothing; a copy after a failed answer
    (our 502 asked for it) tries again while the phone still rings.
    """
    agent = await Agent.objects.afor_session(None)
    try:
        session = await Session.objects.acreate(
            agent=agent,
            channel=Session.Channel.ACS,
            sample_rate=calls.session_sample_rate(),
            turn_budget=agent.turn_budget or settings.CONTEXT_TURN_BUDGET,
            caller_id=redact_digits(call.caller_id),
            server_call_id=call.server_call_id,
            correlation_id=call.correlation_id,
            call_state=CallState.ANSWERING,
        )
        return session, True
    except IntegrityError:
        session = await Session.objects.aget(
            channel=Session.Channel.ACS, correlation_id=call.correlation_id
        )
    retry = await Session.objects.filter(pk=session.pk, call_state=CallState.ANSWER_FAILED).aupdate(
        status=Session.Status.ACTIVE, call_state=CallState.ANSWERING, end_reason="", ended_at=None
    )
    return session, retry == 1


@api_view("POST")
async def call_callbacks(request: HttpRequest, session_id: str) -> JsonResponse:
    """ACS's events about one call: recorded on its session; a hang-up ends the session."""
    if refusal := _not_configured():
        return refusal
    try:
        await verify_acs_request(request.headers.get("Authorization"))
    except AcsTokenRefused as exc:
        logger.warning("refused an ACS callback: %s", exc)
        return error_response(ErrorCode.UNAUTHORIZED, f"not signed by ACS: {exc}", 401)
    session = await find_session(session_id)
    if session is None or session.channel != Session.Channel.ACS:
        return error_response(ErrorCode.SESSION_NOT_FOUND, f"no phone session {session_id}", 404)
    log_context.bind_session(session.id, session.call_connection_id)
    try:
        notifications = parse_callbacks(request.body)
    except ProtocolError as exc:
        return error_response(exc.code, exc.message, 400)
    for notification in notifications:
        await _record(session, notification)
    return JsonResponse({"session_id": str(session.id), "recorded": len(notifications)})


async def _record(session: Session, notification: CallNotification) -> None:
    kind = notification.kind
    await durably(
        f"the {kind} event",
        lambda: CallEvent.objects.acreate(
            session=session,
            kind=kind,
            result_code=notification.result_code,
            result_subcode=notification.result_subcode,
            result_message=redact_digits(notification.result_message),
        ),
    )
    if kind in STATE_AFTER:
        # Callbacks may arrive out of order: a hung-up call stays hung up, a failed stream
        # failed (only the hang-up may follow it).
        final = [CallState.DISCONNECTED]
        if kind != "CallDisconnected":
            final.append(CallState.MEDIA_FAILED)
        await (
            Session.objects.filter(pk=session.pk)
            .exclude(call_state__in=final)
            .aupdate(call_state=STATE_AFTER[kind])
        )
    if notification.call_connection_id and not session.call_connection_id:
        await Session.objects.filter(pk=session.pk, call_connection_id="").aupdate(
            call_connection_id=notification.call_connection_id
        )
    logger.info("session %s: %s (%s)", session.id, kind, notification.result_code or "ok")
    if kind == "CallDisconnected":
        await _end(session.id, calls.CALL_DISCONNECTED)
    elif kind == "MediaStreamingFailed":
        # The caller would sit in silence: end the session as failed and hang up.
        await _end(session.id, calls.MEDIA_STREAMING_FAILED, status=Session.Status.FAILED)
        await calls.hang_up_session(session.id, notification.call_connection_id)


async def _end(session_id: uuid.UUID, reason: str, status: str = Session.Status.ENDED) -> None:
    """Mark the session over (ACS's word is final), then stop its live conversation, if any.

    Stored first, so the consumer's own ending cannot overwrite a failure with "ended"; if
    the layer is down the media socket still closes with the call.
    """
    await end_session(session_id, reason, status)
    try:
        await ask_to_end(session_id, reason)
    except LAYER_OUTAGES as exc:
        logger.warning("session %s: end not delivered (%s)", session_id, type(exc).__name__)
