"""The caller's WebSocket: authenticate, decode, validate, dispatch. Behaviour lives elsewhere.

Refusals happen after `accept()` so the client can read why: an `error` event, then a close
with code 4401 (missing, invalid or expired token), 4404 (no such session) or 4409 (the
session has ended).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer

from sessions_app import events, shutdown
from sessions_app.control import LAYER_OUTAGES, ControlReceiver
from sessions_app.events import ErrorCode, Event, EventStream
from sessions_app.models import Session, group_name
from sessions_app.pipeline.turns import Conversation, SessionClosed
from sessions_app.protocol import (
    ConfigMessage,
    EndMessage,
    InterruptMessage,
    ProtocolError,
    TextMessage,
    check_audio,
    parse_client_message,
)
from sessions_app.tokens import TokenRefused, check_token

logger = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_ENDED = 4409


class StreamConsumer(AsyncWebsocketConsumer):
    conversation: Conversation | None = None
    control: ControlReceiver | None = None

    async def dispatch(self, message: dict) -> None:
        # channels hands every message to the database thread first, to close stale
        # connections; audio frames (50 a second per caller) touch no ORM, and under load that
        # hop dominated the event loop (bench/load.py: lag p99 55 → 10 ms at 24 sessions).
        if message["type"] == "websocket.receive" and message.get("bytes") is not None:
            await self.websocket_receive(message)
            return
        await super().dispatch(message)

    @property
    def channel_receive(self) -> ControlReceiver | None:
        return self.control

    @channel_receive.setter
    def channel_receive(self, receive) -> None:
        # channels sets this to the layer's receive; wrapped, a layer outage is ridden out.
        self.control = ControlReceiver(receive, self._join_group)

    async def _join_group(self) -> None:
        await self.channel_layer.group_add(group_name(self.session_id), self.channel_name)

    async def __call__(self, scope, receive, send) -> None:
        """Run the consumer. A server shutting down (daphne cancels every application on
        SIGTERM) ends the live session with reason `server_shutdown` before it goes."""
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            await self.end_session("server_shutdown", close_code=CLOSE_GOING_AWAY)
            raise

    async def connect(self) -> None:
        self.session_id = self.scope["url_route"]["kwargs"]["session_id"]
        self.events = EventStream(self.session_id)
        await self.accept()
        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            check_token(query.get("token", [""])[0], self.session_id)
            conversation = await Conversation.open(
                self.session_id, self.send_event, self.send_audio
            )
        except TokenRefused as exc:
            await self.refuse(ErrorCode.UNAUTHORIZED, str(exc), CLOSE_UNAUTHORIZED)
            return
        except Session.DoesNotExist:
            await self.refuse(ErrorCode.SESSION_NOT_FOUND, "no such session", CLOSE_NOT_FOUND)
            return
        except SessionClosed as exc:
            await self.refuse(ErrorCode.SESSION_ENDED, str(exc), CLOSE_ENDED)
            return
        await self.control.ensure_joined()
        self.conversation = conversation
        shutdown.track(self)
        await conversation.start()

    async def refuse(self, code: ErrorCode, message: str, close_code: int) -> None:
        logger.info("refused stream for session %s: %s", self.session_id, code)
        await self.send_event(events.error(code, message, "client"))
        await self.close(code=close_code)

    async def send_event(self, body: Event) -> None:
        await self.send(text_data=json.dumps(self.events.stamp(body)))

    async def send_audio(self, frame: bytes) -> None:
        await self.send(bytes_data=frame)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        conversation = self.conversation
        if conversation is None:
            return
        try:
            if conversation.ended:
                raise ProtocolError(ErrorCode.SESSION_ENDED, "the session has ended")
            if bytes_data is not None:
                conversation.hear_audio(check_audio(bytes_data, conversation.session.sample_rate))
                return
            message = parse_client_message(text_data or "")
        except ProtocolError as exc:
            await conversation.report(events.error(exc.code, exc.message, "client"))
            return
        match message:
            case TextMessage(text=text, final=final):
                await conversation.hear_text(text, final=final)
            case InterruptMessage():
                await conversation.barge_in("interrupt")
            case ConfigMessage(sample_rate=rate):
                await conversation.configure(rate)
            case EndMessage():
                await self.end_session("client_ended")

    async def playback_cancel(self, message: dict) -> None:
        """Group message: stop the agent's reply (operator button, another process, ACS)."""
        if self.conversation is not None:
            await self.conversation.barge_in(message.get("source", "operator"))

    async def session_end(self, message: dict) -> None:
        """Group message: end this session (operator, REST API on any process)."""
        await self.end_session(message.get("reason", "operator_ended"))

    async def end_session(self, reason: str, close_code: int = 1000) -> None:
        if self.conversation is not None and not self.conversation.ended:
            await self.conversation.end(reason)
            await self.close(code=close_code)

    async def disconnect(self, code: int) -> None:
        shutdown.untrack(self)
        if self.conversation is not None:
            with contextlib.suppress(*LAYER_OUTAGES):
                await self.channel_layer.group_discard(
                    group_name(self.session_id), self.channel_name
                )
            await self.conversation.end("client_disconnected", notify=False)
