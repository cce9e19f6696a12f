"""A fake OpenAI-compatible HTTP server on loopback, driven by scripted replies.

Tests queue one script per expected request; each request takes the next script of its route
and is recorded, so a test can assert both on what the client received and on what the
"model" was sent. The server runs its own event loop in a thread, so it outlives the
function-scoped loops of pytest-asyncio and never blocks the test's loop.

For load, `always()` gives a route a script that answers every request once its queue is empty,
the paced scripts (`Delayed`, `PacedTextReply`, `StreamedSpeech`) answer with a real service's
delays, and `record_requests=False` keeps memory flat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from aiohttp import web

CHAT_COMPLETIONS = "/v1/chat/completions"
TRANSCRIPTIONS = "/v1/audio/transcriptions"
SPEECH = "/v1/audio/speech"

# Uploaded utterances can exceed aiohttp's default 1 MiB body limit.
MAX_BODY_BYTES = 32 * 1024 * 1024

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}


@dataclass(frozen=True)
class RecordedFile:
    """A file uploaded in a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received: its path, headers, JSON body (or form fields) and files."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    files: dict[str, RecordedFile] = field(default_factory=dict)


async def record(request: web.Request) -> RecordedRequest:
    """Decode a JSON or multipart request into what tests assert on."""
    if request.content_type != "multipart/form-data":
        return RecordedRequest(request.path, dict(request.headers), await request.json())
    fields: dict[str, Any] = {}
    files: dict[str, RecordedFile] = {}
    for name, value in (await request.post()).items():
        if isinstance(value, web.FileField):
            files[name] = RecordedFile(value.filename, value.content_type, value.file.read())
        else:
            fields[name] = value
    return RecordedRequest(request.path, dict(request.headers), fields, files)


class Script(Protocol):
    async def respond(self, request: web.Request, server: FakeOpenAIServer) -> web.StreamResponse:
        """Answer one request."""
        ...


@dataclass(frozen=True)
class TextReply:
    """Stream these text pieces as chat completion chunks, then finish with "stop".

    With `stall_s`, the stream stops after the pieces and sends nothing more for that long.
    """

    pieces: list[str]
    stall_s: float = 0.0

    async def respond(self, request: web.Request, server: FakeOpenAIServer) -> web.StreamResponse:
        deltas = [{"role": "assistant", "content": ""}] + [{"content": p} for p in self.pieces]
        response = await start_stream(request, deltas)
        if self.stall_s:
            await server.wait_closing(self.stall_s)
            return response
        return await finish_stream(response, "stop")


@dataclass(frozen=True)
class ToolCallReply:
    """Stream one function call, its arguments split into `argument_pieces`."""

    name: str
    argument_pieces: list[str]
    call_id: str = "call_fake_1"

    async def respond(self, request: web.Request, server: FakeOpenAIServer) -> web.StreamResponse:
        opening = {
            "index": 0,
            "id": self.call_id,
            "type": "function",
            "function": {"name": self.name, "arguments": ""},
        }
        deltas: list[dict[str, Any]] = [
            {"role": "assistant", "content": None, "tool_calls": [opening]}
        ]
        deltas += [
            {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
            for piece in self.argument_pieces
        ]
        return await finish_stream(await start_stream(request, deltas), "tool_calls")


@dataclass(frozen=True)
class ErrorReply:
    """Answer an HTTP error status with an OpenAI-style JSON error body."""

    status: int
    message: str = "scripted failure"

    async def respond(self, request: web.Request, server: FakeOpenAIServer) -> web.StreamResponse:
        kind = ERROR_TYPES.get(self.status, "server_error")
        body = {"error": {"message": self.message, "type": kind, "param": None, "code": None}}
        return web.json_response(body, status=self.status)


@dataclass(frozen=True)
class Hang:
    """Send nothing for `seconds` (or until the server stops): longer than any client timeout."""

    seconds: float = 30.0

    async def respond(self, request: web.Request, server: FakeOpenAIServer) -> web.StreamResponse:
        await server.wait_closing(self.seconds)
        return web.json_response({"error": {"message": "hung", "type": "server_error"}}, status=504)


@dataclass(frozen=True)
class TranscriptionReply:
    """Answer a transcription request with this text, as the `json` response format does;
    with `words` ((word, start s, end s)...), as `verbose_json` with word times does."""

    text: str
    words: tuple[tuple[str, float, float], ...] = ()

    async def respond(self, request: web.Request, server: FakeOpenAIServer) -> web.StreamResponse:
        if not self.words:
            return web.json_response({"text": self.text})
        words = [{"word": word, "start": start, "end": end} for word, start, end in self.words]
        return web.json_response({"text": self.text, "duration": 2.0, "words": words})


@dataclass(frozen=True)
class TranscribedReply:
    """Answer a transcription with `await transcribe(wav)`: text that depends on the audio."""

    transcribe: Callable[[bytes], Awaitable[str]]

    async def respond(self, request: web.Request, server: FakeOpenAIServer) -> web.StreamResponse:
        (recorded,) = server.uploads_to()[-1:]
        return web.json_response({"text": await self.transcribe(recorded.data)})


@dataclass(frozen=True)
class SpeechReply:
    """Answer a speech request with these bytes (raw PCM when `response_format` is "pcm")."""

    pcm: bytes

    async def respond(self, request: web.Request, server: FakeOpenAIServer) -> web.StreamResponse:
        return web.Response(body=self.pcm, content_type="audio/pcm")


@dataclass(frozen=True)
class SpokenReply:
    """Answer a speech request with `speak(input)`: audio that depends on the text, like a voice."""

    speak: Callable[[str], bytes]

    async def respond(self, request: web.Request, server: FakeOpenAIServer) -> web.StreamResponse:
        body = await request.json()
        return web.Response(body=self.speak(body["input"]), content_type="audio/pcm")


@dataclass(frozen=True)
class Delayed:
    """Answer with `script` after `seconds`, as a service that takes time to think does."""

    script: Script
    seconds: float

    async def respond(self, request: web.Request, server: FakeOpenAIServer) -> web.StreamResponse:
        await asyncio.sleep(self.seconds)
        return await self.script.respond(request, server)


@dataclass(frozen=True)
class PacedTextReply:
    """Stream text pieces at a model's pace: the first after `first_token_s`, then one every
    `interval_s`; then finish with "stop"."""

    pieces: list[str]
    first_token_s: float = 0.2
    interval_s: float = 0.02

    async def respond(self, request: web.Request, server: FakeOpenAIServer) -> web.StreamResponse:
        response = await start_stream(request, [{"role": "assistant", "content": ""}])
        with contextlib.suppress(ConnectionResetError):  # the client stopped listening
            for index, piece in enumerate(self.pieces):
                await asyncio.sleep(self.first_token_s if index == 0 else self.interval_s)
                await send_event(response, chunk({"content": piece}))
            await finish_stream(response, "stop")
        return response


@dataclass(frozen=True)
class StreamedSpeech:
    """Answer a speech request with a quiet tone as long as the text takes to say
    (`ms_per_char` a character), as raw 24 kHz PCM streamed in `chunk_ms` pieces: the first
    after `first_byte_s`, the rest `speed` times faster than real time."""

    ms_per_char: float = 60.0
    first_byte_s: float = 0.2
    speed: float = 10.0
    chunk_ms: int = 100
    sample_rate: int = 24000

    async def respond(self, request: web.Request, server: FakeOpenAIServer) -> web.StreamResponse:
        text = (await request.json())["input"]
        pcm = tone(len(text) * self.ms_per_char, self.sample_rate)
        response = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        await response.prepare(request)
        await asyncio.sleep(self.first_byte_s)
        size = self.sample_rate * self.chunk_ms // 1000 * 2
        with contextlib.suppress(ConnectionResetError):  # the client stopped listening
            for start in range(0, len(pcm), size):
                if start:
                    await asyncio.sleep(self.chunk_ms / 1000 / self.speed)
                await response.write(pcm[start : start + size])
            await response.write_eof()
        return response


def tone(duration_ms: float, sample_rate: int, hz: float = 220.0) -> bytes:
    """A quiet sine (-20 dBFS) as PCM16 mono: audible, unlike silence, and cheap to make."""
    t = np.arange(int(sample_rate * duration_ms / 1000)) / sample_rate
    return (np.sin(2 * np.pi * hz * t) * 3277).astype(np.int16).tobytes()


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    """One `chat.completion.chunk` object, as the real API streams it."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "fake-model",
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


async def start_stream(request: web.Request, deltas: list[dict[str, Any]]) -> web.StreamResponse:
    """Open a Server-Sent Events response and send each delta as one chunk."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    for delta in deltas:
        await send_event(response, chunk(delta))
    return response


async def finish_stream(response: web.StreamResponse, finish_reason: str) -> web.StreamResponse:
    """Send the finishing chunk and `[DONE]`, and end the response."""
    await send_event(response, chunk({}, finish_reason))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def send_event(response: web.StreamResponse, data: dict[str, Any]) -> None:
    await response.write(f"data: {json.dumps(data)}\n\n".encode())


@dataclass
class FakeOpenAIServer:
    """The fake: `start()`, queue scripts with `script()`, read `requests`, then `stop()`."""

    host: str = "127.0.0.1"
    port: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    record_requests: bool = True
    _scripts: dict[str, deque[Script]] = field(default_factory=dict)
    _always: dict[str, Script] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None
    _closing: asyncio.Event | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def script(self, *scripts: Script, path: str = CHAT_COMPLETIONS) -> None:
        """Queue replies for the next requests to `path`, in order."""
        self._scripts.setdefault(path, deque()).extend(scripts)

    def always(self, script: Script, path: str = CHAT_COMPLETIONS) -> None:
        """Answer requests to `path` with `script` whenever no queued script is waiting."""
        self._always[path] = script

    def requests_to(self, path: str = CHAT_COMPLETIONS) -> list[dict[str, Any]]:
        """The JSON bodies (or form fields) received on `path`, oldest first."""
        return [request.body for request in self.requests if request.path == path]

    def uploads_to(self, path: str = TRANSCRIPTIONS, name: str = "file") -> list[RecordedFile]:
        """The files uploaded as form field `name` on `path`, oldest first."""
        return [r.files[name] for r in self.requests if r.path == path and name in r.files]

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(CHAT_COMPLETIONS, self._scripted),
            web.post(TRANSCRIPTIONS, self._scripted),
            web.post(SPEECH, self._scripted),
        ]

    async def _scripted(self, request: web.Request) -> web.StreamResponse:
        if self.record_requests:
            self.requests.append(await record(request))
        else:
            await request.read()  # cached: a script may still read the JSON body
        queue = self._scripts.get(request.path)
        if queue:
            reply: Script = queue.popleft()
        elif request.path in self._always:
            reply = self._always[request.path]
        else:
            reply = ErrorReply(599, f"fake: no script queued for {request.path}")
        return await reply.respond(request, self)

    async def wait_closing(self, seconds: float) -> None:
        assert self._closing is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def start(self) -> FakeOpenAIServer:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fake-openai", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)
        return self

    async def _serve(self) -> None:
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.add_routes(self.routes())
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        assert self._loop is not None and self._thread is not None
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _shutdown(self) -> None:
        assert self._closing is not None and self._runner is not None
        self._closing.set()
        await self._runner.cleanup()
