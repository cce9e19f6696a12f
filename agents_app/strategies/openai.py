"""The OpenAI agent: streaming Chat Completions with function calling, through the `openai` SDK.

`OPENAI_BASE_URL` points it at any OpenAI-compatible server. The SDK's own retries are off;
opening each completion stream goes through our retry policy, and once text has streamed to
the caller a failure is reported rather than retried (the caller has already heard it).
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import openai
from django.conf import settings

from agents_app.errors import (
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from agents_app.retry import call_with_retry
from agents_app.strategies.base import AgentSpec, ChatMessage
from agents_app.tools import ToolBox

# A model that keeps calling tools is stopped after this many rounds.
MAX_TOOL_ROUNDS = 4


def translate_openai_error(exc: openai.OpenAIError, role: str) -> ProviderError:
    """Map the SDK's exceptions onto the provider error taxonomy."""
    if isinstance(exc, openai.APITimeoutError) and _timed_out(exc):
        return ProviderTimeout("OpenAI did not answer in time", role=role)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailable("could not reach OpenAI", role=role)
    if isinstance(exc, openai.RateLimitError):
        return ProviderRateLimited("OpenAI rate limit (429)", role=role, status=429)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status >= 500:
            return ProviderUnavailable(f"OpenAI server error ({status})", role=role, status=status)
        hint = ": check OPENAI_API_KEY" if status in (401, 403) else ""
        return ProviderRejected(
            f"OpenAI refused the request ({status}){hint}", role=role, status=status
        )
    return ProviderUnavailable(f"OpenAI call failed ({type(exc).__name__})", role=role)


def _timed_out(exc: BaseException) -> bool:
    """Whether a timeout the SDK reports was one: its aiohttp transport reports every lost
    connection (refused, reset, closed by the server) as a connect timeout."""
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, asyncio.TimeoutError):  # aiohttp's own timeouts are these too
            return True
        if isinstance(cause, aiohttp.ClientConnectionError):
            return False
        cause = cause.__cause__
    return True


def openai_unconfigured() -> str | None:
    """Without a key OpenAI refuses every call: say so before anyone tries."""
    return None if settings.OPENAI_API_KEY else "OPENAI_API_KEY is not set on the server"


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The certificate store, loaded once per process (SSL_CERT_FILE / SSL_CERT_DIR apply).

    Every client used to load its own: ~60 ms of the event loop each, three clients a session
    (agent, STT, TTS), so each session opening stalled every other session's audio."""
    return ssl.create_default_context()


# The clients every session of this event loop shares, by (key, base URL, timeout).
_shared_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str | None, float], openai.AsyncOpenAI]
] = weakref.WeakKeyDictionary()


def openai_client() -> openai.AsyncOpenAI:
    """The client for the current settings, with SDK retries off (our retry policy applies
    instead). Inside an event loop it is the one every session of that loop shares: one
    connection pool, and one TLS context (~0.8 MB a client), not one per engine and session.
    Connections belong to a loop, so each loop (each test) has its own."""
    key = (
        settings.OPENAI_API_KEY or "not-set",
        settings.OPENAI_BASE_URL,
        settings.OPENAI_TIMEOUT_S,
    )
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _new_client(*key)
    clients = _shared_clients.setdefault(loop, {})
    if key not in clients:
        clients[key] = _new_client(*key)
    return clients[key]


def _new_client(api_key: str, base_url: str | None, timeout: float) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        max_retries=0,
        timeout=timeout,
        # aiohttp, not httpx, underneath: a third of httpx's event-loop time per request and
        # per streamed chunk (bench/load.py, py-spy at 128-160 sessions).
        http_client=openai.DefaultAioHttpClient(verify=tls_context()),
    )


async def close_shared_clients() -> None:
    """Close the clients this event loop's sessions share (the server is stopping, or the
    loop's work is done), so that their connections close cleanly instead of being reported
    unclosed when the process exits. A later `openai_client()` in this loop builds anew."""
    clients = _shared_clients.pop(asyncio.get_running_loop(), {})
    for client in clients.values():
        await client.close()


async def release_client(client: openai.AsyncOpenAI) -> None:
    """An engine is done with `client`: close it, unless it is a shared one (others use it)."""
    if not any(client in clients.values() for clients in list(_shared_clients.values())):
        await client.close()


@dataclass
class _PendingToolCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class OpenAIStrategy:
    def __init__(self, spec: AgentSpec, client: openai.AsyncOpenAI | None = None) -> None:
        self.spec = spec
        self.client = client or openai_client()

    async def stream_reply(self, messages: list[ChatMessage], tools: ToolBox) -> AsyncIterator[str]:
        conversation: list[dict[str, Any]] = list(messages)
        for _ in range(MAX_TOOL_ROUNDS):
            calls: dict[int, _PendingToolCall] = {}
            text: list[str] = []
            try:
                stream = await call_with_retry(lambda: self._open_stream(conversation, tools))
                async for chunk in stream:
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta") or {}
                        if content := delta.get("content"):
                            text.append(content)
                            yield content
                        for call in delta.get("tool_calls") or ():
                            pending = calls.setdefault(call.get("index", 0), _PendingToolCall())
                            pending.id = call.get("id") or pending.id
                            if function := call.get("function"):
                                pending.name = function.get("name") or pending.name
                                pending.arguments.append(function.get("arguments") or "")
            except openai.OpenAIError as exc:
                raise translate_openai_error(exc, "agent") from exc
            if not calls:
                return
            conversation.append(_assistant_tool_message("".join(text), calls.values()))
            for pending in calls.values():
                result = await tools.call(pending.name, _parse_arguments(pending.arguments))
                conversation.append(
                    {"role": "tool", "tool_call_id": pending.id, "content": json.dumps(result)}
                )
        raise ProviderRejected("the model kept calling tools without answering", role="agent")

    async def _open_stream(self, conversation: list[dict[str, Any]], tools: ToolBox) -> Any:
        body: dict[str, Any] = {
            "model": self.spec.model or settings.OPENAI_MODEL,
            "messages": conversation,
            "stream": True,
        }
        if tools.tools:
            body["tools"] = tools.specs()
        try:
            # The SDK's plain POST: `chat.completions.create` walks every message through its
            # typed-parameter transform (typing introspection per field), and builds a typed
            # model of every streamed chunk: together the largest cost of a turn on the event
            # loop. The messages are plain JSON already; the chunks stay plain JSON (`object`).
            return await self.client.post(
                "/chat/completions",
                body=body,
                cast_to=object,
                stream=True,
                stream_cls=openai.AsyncStream[object],
            )
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc, "agent") from exc

    async def aclose(self) -> None:
        await release_client(self.client)


def _parse_arguments(pieces: list[str]) -> dict[str, Any]:
    raw = "".join(pieces).strip()
    try:
        value = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {"_unparsed": raw}
    return value if isinstance(value, dict) else {"_value": value}


def _assistant_tool_message(text: str, calls: Any) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": "".join(call.arguments)},
            }
            for call in calls
        ],
    }
