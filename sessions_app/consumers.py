"""The WebSockets: authenticate, decode, validate, dispatch. Behaviour lives elsewhere.

`StreamConsumer` carries a browser (or any client of the JSON protocol); `AcsMediaConsumer`
carries a phone call's media from Azure Communication Services; both drive the same
Conversation. `WatchConsumer` lets the dashboard follow a phone session's events live.

Browser refusals happen after `accept()` so the client can read why: an `error` event, then a
close with code 4401 (missing, invalid or expired token), 4404 (no such session), 4409 (the
session has ended, or another socket holds it) or 4503 (this server is at capacity). ACS
reads no events: its refusals are the close codes alone, 4401 when the connection is not
signed by ACS. daphne sends only 1000 and 3000-4999, so every code we choose is in the 4000s.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from autobahn.exception import Disconnected
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from sessions_app import events, log_context, shutdown, store
from sessions_app.access import AccessRefused, principal_for_socket
from sessions_app.acs.calls import AUDIO_FORMATS, hang_up_session
from sessions_app.acs.config import missing_settings, not_configured_message
from sessions_app.acs.media import (
    STOP_AUDIO_FRAME,
    AudioChunk,
    AudioMetadata,
    DtmfTone,
    MediaFormatError,
    Transcription,
    audio_data_frame,
    parse_media_message,
)
from sessions_app.acs.tokens import AcsTokenRefused, verify_acs_request
from sessions_app.control import LAYER_OUTAGES, ControlReceiver, WatcherFeed
from sessions_app.dispatch import dispatch_messages
from sessions_app.events import ErrorCode, Event, EventStream
from sessions_app.models import Session, group_name, watch_group_name
from sessions_app.pipeline.turns import AlreadyConnected, Conversation, SessionClosed
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
from sessions_app.transport import ServerTransport, transport_of

logger = logging.getLogger(__name__)

Send = Callable[[dict], Awaitable[None]]
AT_CAPACITY_MESSAGE = "this server holds all the live sessions it can; try again shortly"

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_NOT_READING = 4408
CLOSE_ENDED = 4409  # also: another socket already holds the session
CLOSE_INTERNAL_ERROR = 4500
CLOSE_UNAVAILABLE = 4503  # at capacity; for ACS also: not configured


class LiveSessionConsumer(AsyncWebsocketConsumer):
    """What every socket carrying a live conversation shares: the session's control group
    (operator interrupt and end, from any process), shutdown, and the end of the session."""

    conversation: Conversation | None = None
    control: ControlReceiver | None = None
    disconnect_reason = "client_disconnected"
    events_outlive_socket = False  # whether session_ended still reaches someone after close
    socket_closed = False
    transport: ServerTransport | None = None
    _ending: asyncio.Task[bool] | None = None

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
        SIGTERM) ends the live session with reason `server_shutdown` before it goes; a
        consumer that fails for any reason ends it as `connection_lost`. Either way the
        session leaves this process's registry."""
        log_context.bind_session(scope.get("url_route", {}).get("kwargs", {}).get("session_id"))
        self.transport = transport_of(send, settings.OUTBOUND_BACKLOG_MAX_BYTES)
        try:
            await self._consume(scope, receive, self._send_while_open(send))
        except asyncio.CancelledError:
            await self.end_session("server_shutdown", close_code=shutdown.CLOSE_SHUTDOWN)
            raise
        except Exception:
            logger.exception("session %s: the consumer failed", getattr(self, "session_id", "?"))
            await self._end_after_failure()
        finally:
            shutdown.untrack(self)
            if self._ending is not None:
                await asyncio.wait([self._ending])

    async def _consume(self, scope, receive, send: Send) -> None:
        """channels' `AsyncConsumer.__call__`, with a leaner message loop (sessions_app.dispatch:
        50 audio frames a second per caller make its per-message cost count)."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
        self.base_send = send
        with contextlib.suppress(StopConsumer):
            await dispatch_messages(receive, self.channel_receive, self.dispatch)

    def _send_while_open(self, send: Send) -> Send:
        """The one place sends after close are dropped: a reply's task or a late event may
        still try once the socket has gone, and that is no error."""

        async def send_while_open(message: dict) -> None:
            if self.socket_closed:
                return
            if message["type"] == "websocket.close":
                self.socket_closed = True
            # The client went first: autobahn's Disconnected, or uvicorn's ClientDisconnected
            # (an OSError, as is any failed write to a socket that has gone).
            with contextlib.suppress(Disconnected, OSError):
                await send(message)

        return send_while_open

    async def _end_after_failure(self) -> None:
        try:
            if not await self.end_session("connection_lost", close_code=CLOSE_INTERNAL_ERROR):
                await self.close(code=CLOSE_INTERNAL_ERROR)
        except Exception:
            session_id = getattr(self, "session_id", None)
            logger.exception("session %s: ending after a failure failed", session_id)
            if session_id is not None:
                with contextlib.suppress(Exception):
                    await store.end_session(session_id, "connection_lost")

    def skips_database_hop(self, message: dict) -> bool:
        """Whether a received frame may skip channels' database hop (see dispatch)."""
        raise NotImplementedError

    async def dispatch(self, message: dict) -> None:
        # channels hands every message to the database thread first, to close stale
        # connections; audio frames (50 a second per caller) touch no ORM, and under load that
        # hop dominated the event loop (bench/load.py: lag p99 55 → 10 ms at 24 sessions).
        # Stored writes reconnect on their own (store.py).
        if message["type"] == "websocket.receive" and self.skips_database_hop(message):
            await self.websocket_receive(message)
            return
        await super().dispatch(message)

    def end_soon(self, reason: str, close_code: int) -> None:
        """End the session from inside one of its own tasks (which ending cancels)."""
        if self._ending is None:
            self._ending = asyncio.create_task(self.end_session(reason, close_code))

    def client_is_not_reading(self) -> bool:
        """Whether the client left more unread than OUTBOUND_BACKLOG_MAX_BYTES; if so its
        session is ending (`client_not_reading`, close 4408) and nothing more is queued."""
        if self._ending is not None:
            return True
        if self.transport is None or self.transport.unsent() <= settings.OUTBOUND_BACKLOG_MAX_BYTES:
            return False
        logger.warning("session %s: the client is not reading", self.session_id)
        self.end_soon("client_not_reading", CLOSE_NOT_READING)
        self.transport.give_up_on_client()  # after end_soon: its reason is the one stored
        return True

    async def go_live(self, conversation: Conversation) -> None:
        session = conversation.session
        log_context.bind_session(session.id, session.call_connection_id)
        await self.control.ensure_joined()
        self.conversation = conversation
        shutdown.track(self)
        await conversation.start()

    async def playback_cancel(self, message: dict) -> None:
        """Group message: stop the agent's reply (operator button, another process, ACS)."""
        if self.conversation is not None:
            await self.conversation.barge_in(message.get("source", "operator"))

    async def session_end(self, message: dict) -> None:
        """Group message: end this session (operator, REST API on any process, ACS)."""
        await self.end_session(message.get("reason", "operator_ended"))

    async def end_session(self, reason: str, close_code: int = 1000) -> bool:
        """End the conversation and close the socket; False if it had already ended."""
        if self.conversation is None or self.conversation.ended:
            return False
        await self.conversation.end(reason)
        await self.close(code=close_code)
        return True

    async def disconnect(self, code: int) -> None:
        self.socket_closed = True
        shutdown.untrack(self)
        if self.conversation is not None:
            with contextlib.suppress(*LAYER_OUTAGES):
                await self.channel_layer.group_discard(
                    group_name(self.session_id), self.channel_name
                )
            await self.conversation.end(self.disconnect_reason, notify=self.events_outlive_socket)


class StreamConsumer(LiveSessionConsumer):
    """A browser's socket: JSON events both ways, caller audio as binary PCM16 frames."""

    def skips_database_hop(self, message: dict) -> bool:
        return message.get("bytes") is not None  # audio

    async def connect(self) -> None:
        self.session_id = self.scope["url_route"]["kwargs"]["session_id"]
        self.events = EventStream(self.session_id)
        await self.accept()
        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            check_token(query.get("token", [""])[0], self.session_id)
            if shutdown.at_capacity():
                await self.refuse(ErrorCode.AT_CAPACITY, AT_CAPACITY_MESSAGE, CLOSE_UNAVAILABLE)
                return
            conversation = await Conversation.open(
                self.session_id, self.send_event, self.send_audio
            )
        except TokenRefused as exc:
            await self.refuse(ErrorCode.UNAUTHORIZED, str(exc), CLOSE_UNAUTHORIZED)
            return
        except AlreadyConnected as exc:
            await self.refuse(ErrorCode.ALREADY_CONNECTED, str(exc), CLOSE_ENDED)
            return
        except Session.DoesNotExist:
            await self.refuse(ErrorCode.SESSION_NOT_FOUND, "no such session", CLOSE_NOT_FOUND)
            return
        except SessionClosed as exc:
            await self.refuse(ErrorCode.SESSION_ENDED, str(exc), CLOSE_ENDED)
            return
        await self.go_live(conversation)

    async def refuse(self, code: ErrorCode, message: str, close_code: int) -> None:
        logger.info("refused stream for session %s: %s", self.session_id, code)
        await self.send_event(events.error(code, message, "client"))
        await self.close(code=close_code)

    # Straight to the socket's send: every reply's 50 frames a second skip channels' two
    # layers of `send` that only build this message.
    async def send_event(self, body: Event) -> None:
        text = json.dumps(self.events.stamp(body))
        await self.base_send({"type": "websocket.send", "text": text})

    async def send_audio(self, frame: bytes) -> None:
        if not self.client_is_not_reading():
            await self.base_send({"type": "websocket.send", "bytes": frame})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        conversation = self.conversation
        if conversation is None:
            return
        try:
            if conversation.ended:
                raise ProtocolError(ErrorCode.SESSION_ENDED, "the session has ended")
            if bytes_data is not None:
                await conversation.hear_audio(
                    check_audio(bytes_data, conversation.session.sample_rate)
                )
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


class AcsMediaConsumer(LiveSessionConsumer):
    """ACS's media WebSocket for one phone session (../shared/ACS.md).

    Inbound ACS media JSON feeds the Conversation; agent audio leaves as `AudioData` frames at
    the negotiated rate; a barge-in sends `StopAudio`, which flushes what ACS has queued. A
    frame that does not parse is logged and dropped: one bad frame never ends a call. Events
    go to the session's watchers (the dashboard), since ACS reads none.
    """

    disconnect_reason = "media_disconnected"
    events_outlive_socket = True
    feed: WatcherFeed | None = None
    transcribed_by_acs = False  # set by the first TranscriptionData: local STT then stops
    silent_frame = b""
    audio_queued_at_acs = False  # AudioData sent since the last StopAudio

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.feed is not None:
                await self.feed.aclose()  # session_ended still reaches the watchers

    def skips_database_hop(self, message: dict) -> bool:
        # Every ACS frame is JSON text, mostly audio (50 a second); keys and transcripts
        # write through store.py, which reconnects on its own.
        return True

    async def connect(self) -> None:
        self.session_id = self.scope["url_route"]["kwargs"]["session_id"]
        self.events = EventStream(self.session_id)
        self.feed = WatcherFeed(self.session_id)
        await self.accept()
        if missing := missing_settings():
            await self.refuse(not_configured_message(missing), CLOSE_UNAVAILABLE)
            return
        try:
            await verify_acs_request(self._header(b"authorization"))
            if shutdown.at_capacity():
                await self.refuse(AT_CAPACITY_MESSAGE, CLOSE_UNAVAILABLE)
                return
            conversation = await Conversation.open(
                self.session_id, self.send_event, self.send_audio, channel=Session.Channel.ACS
            )
        except AcsTokenRefused as exc:
            await self.refuse(f"not signed by ACS: {exc}", CLOSE_UNAUTHORIZED)
            return
        except AlreadyConnected:
            await self.refuse("another media socket holds the session", CLOSE_ENDED)
            return
        except Session.DoesNotExist:
            await self.refuse("no such phone session", CLOSE_NOT_FOUND)
            return
        except SessionClosed:
            await self.refuse("the session has ended", CLOSE_ENDED)
            return
        self.silent_frame = bytes(conversation.session.sample_rate * 2 // 50)  # 20 ms
        logger.info("session %s: ACS media connected", self.session_id)
        await self.go_live(conversation)
        await conversation.greet()

    def _header(self, name: bytes) -> str | None:
        for key, value in self.scope.get("headers", []):
            if key.lower() == name:
                return value.decode("latin-1")
        return None

    async def refuse(self, why: str, close_code: int) -> None:
        logger.warning("refused ACS media for session %s: %s", self.session_id, why)
        await self.close(code=close_code)

    async def send_event(self, body: Event) -> None:
        if body["type"] in ("barge_in", "playback_paused") and self.audio_queued_at_acs:
            # Playback has already stopped or paused here; StopAudio drops what ACS still holds.
            self.audio_queued_at_acs = False
            await self.send(text_data=STOP_AUDIO_FRAME)
        self.feed.publish(self.events.stamp(body))

    async def send_audio(self, frame: bytes) -> None:
        if not self.client_is_not_reading():
            self.audio_queued_at_acs = True
            await self.send(text_data=audio_data_frame(frame))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        conversation = self.conversation
        if conversation is None or conversation.ended:
            return
        try:
            if text_data is None:
                raise MediaFormatError("binary frame: ACS media frames are JSON text")
            message = parse_media_message(text_data)
            match message:
                case AudioChunk():
                    await self._hear(conversation, message)
                case AudioMetadata():
                    await self._negotiate(conversation, message)
                case DtmfTone(tone=tone):
                    await conversation.hear_dtmf(tone)
                case Transcription():
                    self.transcribed_by_acs = True
                    await conversation.hear_text(
                        message.text,
                        final=message.final,
                        source="speech",
                        **self._timing(message),
                    )
        except MediaFormatError as exc:
            await self._drop(conversation, ErrorCode.INVALID_EVENT, str(exc))
        except ProtocolError as exc:
            await self._drop(conversation, exc.code, exc.message)

    async def _drop(self, conversation: Conversation, code: ErrorCode, why: str) -> None:
        logger.warning("session %s: dropped an ACS media frame: %s", self.session_id, why)
        await conversation.report(events.error(code, f"dropped a media frame: {why}", "client"))

    async def _hear(self, conversation: Conversation, chunk: AudioChunk) -> None:
        pcm = check_audio(chunk.pcm or self.silent_frame, conversation.session.sample_rate)
        # Once ACS recognises the caller, local recognition stops (no second answer).
        await conversation.hear_audio(pcm, recognise=not self.transcribed_by_acs)

    async def _negotiate(self, conversation: Conversation, metadata: AudioMetadata) -> None:
        rate = metadata.sample_rate
        rates = sorted(rate for _, rate in AUDIO_FORMATS.values())
        if metadata.encoding.upper() != "PCM" or metadata.channels != 1 or rate not in rates:
            raise ProtocolError(
                ErrorCode.INVALID_AUDIO,
                f"audio must be PCM mono at {' or '.join(map(str, rates))} Hz",
            )
        if rate != conversation.session.sample_rate:
            await conversation.configure(rate)
        self.silent_frame = bytes(max(metadata.length, 0)) or self.silent_frame

    @staticmethod
    def _timing(transcription: Transcription) -> dict[str, object]:
        if not transcription.final:
            return {}
        return {
            "start_ms": transcription.start_ms,
            "end_ms": transcription.end_ms,
            "confidence": transcription.confidence,
        }

    async def end_session(self, reason: str, close_code: int = 1000) -> bool:
        """Ending a phone session hangs up the call (a no-op if it is already over)."""
        ended = await super().end_session(reason, close_code)
        if ended:
            await hang_up_session(self.session_id)
        return ended


class WatchConsumer(AsyncWebsocketConsumer):
    """Follows a session's events without taking part (the dashboard, for phone sessions).

    Operators only (view_session): closes with 4401 or 4403 otherwise; then with 4404 for no
    such session, 4409 for one that has ended, and after relaying `session_ended`: nothing
    follows it. Accepted only once it follows the session: no event falls between the socket
    opening and the first one relayed.
    """

    group: str | None = None

    async def connect(self) -> None:
        session_id = self.scope["url_route"]["kwargs"]["session_id"]
        try:
            await (await principal_for_socket(self.scope)).require("view_session")
        except AccessRefused as refused:
            logger.info("refused watching session %s: %s", session_id, refused.message)
            await self.refuse(CLOSE_UNAUTHORIZED if refused.status == 401 else CLOSE_FORBIDDEN)
            return
        status = (
            await Session.objects.filter(pk=session_id).values_list("status", flat=True).afirst()
        )
        if status != Session.Status.ACTIVE:
            await self.refuse(CLOSE_NOT_FOUND if status is None else CLOSE_ENDED)
            return
        self.group = watch_group_name(session_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def refuse(self, close_code: int) -> None:
        await self.accept()  # a close code only reaches a client whose socket opened
        await self.close(code=close_code)

    async def session_event(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message["event"]))
        if message["event"]["type"] == "session_ended":
            await self.close()

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            with contextlib.suppress(*LAYER_OUTAGES):
                await self.channel_layer.group_discard(self.group, self.channel_name)


class UnroutedConsumer(AsyncWebsocketConsumer):
    """Any WebSocket path nothing else serves: accepted only to be closed with 4404, so the
    client reads a code instead of a failed handshake."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_NOT_FOUND)
