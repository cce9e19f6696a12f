"""ACS call control at its edge: SDK failures in the provider taxonomy, and the URLs and media
options an answered call is given."""

from __future__ import annotations

import json
import uuid

import pytest
from azure.communication.callautomation import (
    AudioFormat,
    MediaStreamingAudioChannelType,
    MediaStreamingContentType,
    StreamingTransportType,
)
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)

from agents_app.errors import (
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from sessions_app.acs.calls import (
    callback_url,
    media_streaming_options,
    media_url,
    translate_acs_error,
)

SESSION_ID = uuid.UUID("0b5c7f2e-3d1a-4e8b-9f6c-2a7d4e1b8c90")


class FakeResponse:
    """Just enough of an azure-core HTTP response for HttpResponseError to read."""

    def __init__(self, status_code: int, reason: str, body: object = None) -> None:
        self.status_code = status_code
        self.reason = reason
        self._body = "" if body is None else json.dumps(body)
        self.headers = {"content-type": "application/json"}
        self.content_type = "application/json"

    def text(self, encoding: str | None = None) -> str:
        return self._body


def http_error(status: int, reason: str = "Reason", *, error_code: str | None = None, cls=None):
    body = {"error": {"code": error_code, "message": "details"}} if error_code else None
    return (cls or HttpResponseError)(response=FakeResponse(status, reason, body))


# translate_acs_error


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, ProviderRateLimited),
        (500, ProviderUnavailable),
        (502, ProviderUnavailable),
        (503, ProviderUnavailable),
        (504, ProviderUnavailable),
        (408, ProviderUnavailable),
        (400, ProviderRejected),
        (401, ProviderRejected),
        (403, ProviderRejected),
        (404, ProviderRejected),
        (409, ProviderRejected),
        (422, ProviderRejected),
    ],
    ids=lambda value: str(value) if isinstance(value, int) else value.__name__,
)
def test_http_errors_by_status(status, expected):
    error = translate_acs_error(http_error(status, "Some Reason"))
    assert type(error) is expected
    assert error.role == "telephony"
    assert error.status == status
    assert str(status) in str(error)


@pytest.mark.parametrize(
    ("status", "retryable", "code"),
    [
        (429, True, "telephony_unavailable"),
        (500, True, "telephony_unavailable"),
        (503, True, "telephony_unavailable"),
        (400, False, "telephony_rejected"),
        (401, False, "telephony_rejected"),
        (404, False, "telephony_rejected"),
    ],
)
def test_http_errors_retryable_and_code(status, retryable, code):
    error = translate_acs_error(http_error(status))
    assert error.retryable is retryable
    assert error.code == code


def test_rate_limit_is_a_kind_of_unavailable():
    error = translate_acs_error(http_error(429, "Too Many Requests"))
    assert isinstance(error, ProviderUnavailable)
    assert error.kind == "unavailable"


@pytest.mark.parametrize(
    ("cls", "status"),
    [(ClientAuthenticationError, 401), (ResourceNotFoundError, 404)],
    ids=["auth", "not-found"],
)
def test_sdk_subclasses_of_http_errors(cls, status):
    error = translate_acs_error(http_error(status, cls=cls))
    assert type(error) is ProviderRejected
    assert (error.status, error.retryable, error.code) == (status, False, "telephony_rejected")


def test_message_names_the_service_error_code():
    error = translate_acs_error(http_error(400, "Bad Request", error_code="8523"))
    assert "8523" in str(error)
    assert "400" in str(error)


def test_message_falls_back_to_the_reason():
    error = translate_acs_error(http_error(404, "Not Found"))
    assert "Not Found" in str(error)


def test_http_error_without_a_response_is_not_retried():
    error = translate_acs_error(HttpResponseError(message="no response attached"))
    assert isinstance(error, ProviderRejected)
    assert error.retryable is False
    assert error.role == "telephony"


@pytest.mark.parametrize(
    ("exc", "expected", "code"),
    [
        (ServiceRequestError("connection refused"), ProviderUnavailable, "telephony_unavailable"),
        (ServiceResponseError("connection reset"), ProviderUnavailable, "telephony_unavailable"),
        (ServiceRequestTimeoutError("connect timeout"), ProviderTimeout, "telephony_timeout"),
        (ServiceResponseTimeoutError("read timeout"), ProviderTimeout, "telephony_timeout"),
        (AzureError("something else"), ProviderUnavailable, "telephony_unavailable"),
    ],
    ids=["request-error", "response-error", "request-timeout", "response-timeout", "other"],
)
def test_transport_errors(exc, expected, code):
    error = translate_acs_error(exc)
    assert type(error) is expected
    assert error.retryable is True
    assert error.role == "telephony"
    assert error.code == code
    assert error.status is None


def test_transport_error_message_does_not_echo_the_exception_text():
    # The SDK's text may carry URLs with the resource name; the name of the failure suffices.
    error = translate_acs_error(ServiceRequestError("https://secret.communication.azure.com"))
    assert "secret" not in str(error)
    assert "ServiceRequestError" in str(error)


# URLs


@pytest.fixture
def base_url(settings):
    settings.ACS_CALLBACK_BASE_URL = "https://voice.example.test"


def test_media_url(base_url):
    assert media_url(SESSION_ID) == f"wss://voice.example.test/ws/acs/{SESSION_ID}/"


def test_callback_url(base_url):
    assert callback_url(SESSION_ID) == f"https://voice.example.test/acs/callbacks/{SESSION_ID}"


def test_media_url_keeps_a_port_and_path(settings):
    settings.ACS_CALLBACK_BASE_URL = "https://voice.example.test:8443/agent"
    assert media_url(SESSION_ID) == f"wss://voice.example.test:8443/agent/ws/acs/{SESSION_ID}/"
    assert callback_url(SESSION_ID) == (
        f"https://voice.example.test:8443/agent/acs/callbacks/{SESSION_ID}"
    )


def test_media_url_is_always_secure(settings):
    # ACS connects only to wss:// transport URLs.
    settings.ACS_CALLBACK_BASE_URL = "http://voice.example.test"
    assert media_url(SESSION_ID) == f"wss://voice.example.test/ws/acs/{SESSION_ID}/"


# Media streaming options


@pytest.mark.parametrize(
    ("setting", "audio_format"),
    [("pcm16k", AudioFormat.PCM16_K_MONO), ("pcm24k", AudioFormat.PCM24_K_MONO)],
)
def test_media_streaming_options(base_url, settings, setting, audio_format):
    settings.ACS_AUDIO_FORMAT = setting
    options = media_streaming_options(SESSION_ID)
    assert options.transport_url == f"wss://voice.example.test/ws/acs/{SESSION_ID}/"
    assert options.transport_type == StreamingTransportType.WEBSOCKET
    assert options.content_type == MediaStreamingContentType.AUDIO
    assert options.audio_channel_type == MediaStreamingAudioChannelType.MIXED
    assert options.start_media_streaming is True
    assert options.enable_bidirectional is True  # without it the caller hears nothing
    assert options.enable_dtmf_tones is True
    assert options.audio_format == audio_format


def test_media_streaming_options_as_sent_to_acs(base_url, settings):
    settings.ACS_AUDIO_FORMAT = "pcm24k"
    sent = media_streaming_options(SESSION_ID)._to_generated()
    assert sent.transport_url == f"wss://voice.example.test/ws/acs/{SESSION_ID}/"
    assert sent.enable_bidirectional is True
    assert sent.start_media_streaming is True
    assert sent.enable_dtmf_tones is True
    assert sent.audio_format == "pcm24KMono"
