"""Call control through the real SDK (azure-communication-callautomation, async client).

Every call goes through the project's retry policy with the SDK's own retries off, and SDK
failures are translated into the provider taxonomy (role `telephony`) at this edge.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from azure.communication.callautomation import (
    AudioFormat,
    MediaStreamingAudioChannelType,
    MediaStreamingContentType,
    MediaStreamingOptions,
    StreamingTransportType,
)
from azure.communication.callautomation.aio import CallAutomationClient
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from django.conf import settings

from agents_app.errors import (
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from agents_app.retry import call_with_retry
from sessions_app.acs.config import missing_settings
from sessions_app.models import Session

logger = logging.getLogger(__name__)

T = TypeVar("T")
ROLE = "telephony"
TIMEOUT_S = 10.0
HANG_UP_DEADLINE_S = 5.0

# End reasons of a session whose call ACS reported over, or unable to stream.
CALL_DISCONNECTED = "call_disconnected"
MEDIA_STREAMING_FAILED = "media_streaming_failed"

# ACS_AUDIO_FORMAT → (the SDK's format, the sample rate the session runs at)
AUDIO_FORMATS = {
    "pcm16k": (AudioFormat.PCM16_K_MONO, 16000),
    "pcm24k": (AudioFormat.PCM24_K_MONO, 24000),
}


def callback_url(session_id: uuid.UUID) -> str:
    return f"{settings.ACS_CALLBACK_BASE_URL}/acs/callbacks/{session_id}"


def media_url(session_id: uuid.UUID) -> str:
    """The media WebSocket ACS connects to: the callback base in its wss:// form."""
    base = settings.ACS_CALLBACK_BASE_URL.removeprefix("https://").removeprefix("http://")
    return f"wss://{base}/ws/acs/{session_id}/"


def session_sample_rate() -> int:
    return AUDIO_FORMATS[settings.ACS_AUDIO_FORMAT][1]


def media_streaming_options(session_id: uuid.UUID) -> MediaStreamingOptions:
    """Bidirectional (else the caller hears nothing) mixed PCM audio, DTMF tones included."""
    return MediaStreamingOptions(
        transport_url=media_url(session_id),
        transport_type=StreamingTransportType.WEBSOCKET,
        content_type=MediaStreamingContentType.AUDIO,
        audio_channel_type=MediaStreamingAudioChannelType.MIXED,
        start_media_streaming=True,
        enable_bidirectional=True,
        audio_format=AUDIO_FORMATS[settings.ACS_AUDIO_FORMAT][0],
        enable_dtmf_tones=True,
    )


async def answer_call(incoming_call_context: str, session_id: uuid.UUID) -> str:
    """Answer a ringing call, streaming its media to this session; returns the connection id."""

    async def answer(client: CallAutomationClient) -> str:
        properties = await client.answer_call(
            incoming_call_context,
            callback_url(session_id),
            media_streaming=media_streaming_options(session_id),
            operation_context=str(session_id),
        )
        return properties.call_connection_id or ""

    return await _with_client(answer)


async def hang_up_session(session_id: uuid.UUID, call_connection_id: str = "") -> None:
    """End a phone session's call for everyone, so a caller is never left in silence: after
    the session ended from our side, or when its media could not stream. Failures are logged.

    Once per call: the consumer, the REST API and the callbacks may each get here, and only
    the one that marks the call disconnected hangs it up. A web session has no call.
    """
    if missing_settings():
        return
    over = [Session.CallState.DISCONNECTED, Session.CallState.ANSWER_FAILED]
    claimed = await (
        Session.objects.filter(pk=session_id, channel=Session.Channel.ACS)
        .exclude(call_state__in=over)
        .aupdate(call_state=Session.CallState.DISCONNECTED)
    )
    if not claimed:
        return
    if not call_connection_id:
        call_connection_id = await Session.objects.values_list(
            "call_connection_id", flat=True
        ).aget(pk=session_id)
    if not call_connection_id:
        return  # never answered: nothing to hang up

    async def terminate(client: CallAutomationClient) -> None:
        await client.get_call_connection(call_connection_id).hang_up(is_for_everyone=True)

    try:
        # Short: this may run while the server shuts down.
        await _with_client(terminate, attempts=2, deadline_s=HANG_UP_DEADLINE_S)
    except ProviderError as exc:
        logger.error("hanging up the call of session %s failed: %s", session_id, exc)
    else:
        logger.info("session %s: call hung up", session_id)


async def _with_client(
    operation: Callable[[CallAutomationClient], Awaitable[T]], **policy: float
) -> T:
    async def attempt() -> T:
        client = CallAutomationClient.from_connection_string(
            settings.ACS_CONNECTION_STRING,
            retry_total=0,  # our retry policy decides; the SDK's would multiply attempts
            connection_timeout=TIMEOUT_S,
            read_timeout=TIMEOUT_S,
        )
        async with client:
            try:
                return await operation(client)
            except AzureError as exc:
                raise translate_acs_error(exc) from exc

    return await call_with_retry(attempt, **policy)


def translate_acs_error(exc: AzureError) -> ProviderError:
    """An SDK failure → the taxonomy: 429 and 5xx and lost connections may be retried."""
    if isinstance(exc, ServiceRequestTimeoutError | ServiceResponseTimeoutError):
        return ProviderTimeout("ACS did not answer in time", role=ROLE)
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        message = f"ACS answered {status}: {_reason(exc)}"
        if status == 429:
            return ProviderRateLimited(message, role=ROLE, status=status)
        if status >= 500 or status == 408:
            return ProviderUnavailable(message, role=ROLE, status=status)
        return ProviderRejected(message, role=ROLE, status=status)
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return ProviderUnavailable(f"ACS unreachable: {type(exc).__name__}", role=ROLE)
    return ProviderUnavailable(f"ACS call failed: {type(exc).__name__}", role=ROLE)


def _reason(exc: HttpResponseError) -> str:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    return str(code or exc.reason or "error")
