"""The ACS fakes work with the real libraries: the Call Automation SDK over TLS, and PyJWT.

How a client comes to trust the fake's test CA matters. The async SDK client goes through
aiohttp, which builds its default SSL context once, when it is imported: setting
`SSL_CERT_FILE` later in this process changes nothing. In-process tests therefore pass
`connection_verify=<CA file>` to the client; a fresh process (as our server runs under daphne)
trusts the CA through `SSL_CERT_FILE` (aiohttp, asyncio client) and `REQUESTS_CA_BUNDLE`
(requests, sync client) alone.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from azure.communication.callautomation import (
    AudioFormat,
    MediaStreamingAudioChannelType,
    MediaStreamingContentType,
    MediaStreamingOptions,
    StreamingTransportType,
)
from azure.communication.callautomation.aio import CallAutomationClient
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

from tests.fakes.acs_server import ANSWER, FakeAcsServer, TlsMaterial, make_tls_material
from tests.fakes.acs_tokens import ACS_ISSUER, AcsSigner, JwksServer

CALLBACK = "https://voice.example/acs/events"
MEDIA_STREAMING = MediaStreamingOptions(
    transport_url="wss://voice.example/acs/media",
    transport_type=StreamingTransportType.WEBSOCKET,
    content_type=MediaStreamingContentType.AUDIO,
    audio_channel_type=MediaStreamingAudioChannelType.MIXED,
    start_media_streaming=True,
    enable_bidirectional=True,
    audio_format=AudioFormat.PCM16_K_MONO,
    enable_dtmf_tones=True,
)


@pytest.fixture
def tls(tmp_path: Path) -> TlsMaterial:
    return make_tls_material(tmp_path)


@pytest.fixture
def acs(tls: TlsMaterial) -> Iterator[FakeAcsServer]:
    with FakeAcsServer(tls) as server:
        yield server


def client(acs: FakeAcsServer, **options: Any) -> CallAutomationClient:
    """An async SDK client that trusts the fake's CA and, unless told, never retries."""
    options = {"connection_verify": str(acs.tls.ca_path), "retry_total": 0, **options}
    return CallAutomationClient.from_connection_string(acs.connection_string, **options)


async def test_answer_call_over_tls_sends_media_streaming_options(acs: FakeAcsServer) -> None:
    async with client(acs) as sdk:
        call = await sdk.answer_call("incoming-context", CALLBACK, media_streaming=MEDIA_STREAMING)

    (answer,) = acs.answers
    assert call.call_connection_id == answer["callConnectionId"]
    assert call.server_call_id == answer["serverCallId"]
    assert call.callback_url == CALLBACK
    assert call.call_connection_state == "connecting"
    assert call.media_streaming_subscription is not None
    (request,) = acs.requests_to(ANSWER, method="POST")
    assert request.query == {"api-version": "2026-03-12"}
    assert request.headers["Authorization"].startswith("HMAC-SHA256 SignedHeaders=")
    assert request.body is not None
    assert request.body["incomingCallContext"] == "incoming-context"
    assert request.body["callbackUri"] == CALLBACK
    assert request.body["mediaStreamingOptions"] == {
        "transportType": "websocket",
        "transportUrl": "wss://voice.example/acs/media",
        "contentType": "audio",
        "audioChannelType": "mixed",
        "startMediaStreaming": True,
        "enableBidirectional": True,
        "audioFormat": "pcm16KMono",
        "enableDtmfTones": True,
    }


async def test_a_client_without_the_ca_is_refused(acs: FakeAcsServer) -> None:
    async with client(acs, connection_verify=True) as sdk:
        with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
            await sdk.answer_call("incoming-context", CALLBACK)
    assert acs.requests == []


# Run in a fresh interpreter, trusting the CA through the environment only.
ANSWER_IN_A_FRESH_PROCESS = """
import asyncio, os
from azure.communication.callautomation import CallAutomationClient
from azure.communication.callautomation.aio import CallAutomationClient as AsyncClient

connection_string = os.environ["ACS_CONNECTION_STRING"]

async def answer():
    async with AsyncClient.from_connection_string(connection_string, retry_total=0) as sdk:
        return await sdk.answer_call("async-context", "https://voice.example/acs/events")

print(asyncio.run(answer()).call_connection_id)
sdk = CallAutomationClient.from_connection_string(connection_string, retry_total=0)
print(sdk.answer_call("sync-context", "https://voice.example/acs/events").call_connection_id)
"""


def test_environment_variables_alone_make_a_fresh_process_trust_the_ca(
    acs: FakeAcsServer,
) -> None:
    ca = str(acs.tls.ca_path)
    env = {
        **os.environ,
        "SSL_CERT_FILE": ca,
        "REQUESTS_CA_BUNDLE": ca,
        "ACS_CONNECTION_STRING": acs.connection_string,
    }
    done = subprocess.run(
        [sys.executable, "-c", ANSWER_IN_A_FRESH_PROCESS],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [answer["callConnectionId"] for answer in acs.answers]
    contexts = [r.body["incomingCallContext"] for r in acs.requests_to(ANSWER) if r.body]
    assert contexts == ["async-context", "sync-context"]


async def test_hang_up_terminates_for_everyone_or_leaves_alone(acs: FakeAcsServer) -> None:
    async with client(acs) as sdk:
        call = await sdk.answer_call("incoming-context", CALLBACK)
        call_id = call.call_connection_id
        assert call_id is not None
        await sdk.get_call_connection(call_id).hang_up(is_for_everyone=True)
        await sdk.get_call_connection(call_id).hang_up(is_for_everyone=False)

    terminate = acs.wait_for(lambda r: r.path.endswith(":terminate"))
    assert (terminate.method, terminate.path) == (
        "POST",
        f"/calling/callConnections/{call_id}:terminate",
    )
    (leave,) = acs.requests_to(call_id, method="DELETE")
    assert leave.headers["Authorization"].startswith("HMAC-SHA256 ")


async def test_a_scripted_failure_raises_then_the_next_request_succeeds(
    acs: FakeAcsServer,
) -> None:
    acs.fail_next(500, code="8500", message="Internal server error.")
    async with client(acs) as sdk:
        with pytest.raises(HttpResponseError) as failure:
            await sdk.answer_call("incoming-context", CALLBACK)
        await sdk.answer_call("incoming-context", CALLBACK)

    assert failure.value.status_code == 500
    assert failure.value.error is not None and failure.value.error.code == "8500"
    assert len(acs.requests) == 2 and len(acs.answers) == 1


async def test_by_default_the_sdk_retries_a_500_three_times(acs: FakeAcsServer) -> None:
    acs.fail_next(500, times=4)
    # Default retry counts, but backoff shrunk from 0.8 s (waits of 0, 1.6, 3.2 s) to nothing.
    async with client(acs, retry_total=10, retry_backoff_factor=0.001) as sdk:
        with pytest.raises(HttpResponseError) as failure:
            await sdk.answer_call("incoming-context", CALLBACK)

    assert failure.value.status_code == 500
    assert len(acs.requests_to(ANSWER)) == 4


async def test_an_unknown_route_answers_404(acs: FakeAcsServer) -> None:
    async with client(acs) as sdk:
        with pytest.raises(ResourceNotFoundError) as failure:
            await sdk.get_call_connection("no-such-call").get_call_properties()

    assert failure.value.status_code == 404
    assert acs.requests[-1].method == "GET"


def test_an_unsigned_request_is_refused(acs: FakeAcsServer) -> None:
    request = urllib.request.Request(acs.endpoint + ANSWER.lstrip("/"), b"{}", method="POST")
    trusting = ssl.create_default_context(cafile=acs.tls.ca_path)
    with pytest.raises(urllib.error.HTTPError) as refusal:
        urllib.request.urlopen(request, context=trusting, timeout=5)

    assert refusal.value.code == 401
    assert json.load(refusal.value)["error"]["code"] == "Unauthorized"
    assert acs.answers == []


AUDIENCE = "00000000-0000-0000-0000-0000000aud00"


@pytest.fixture
def signer() -> AcsSigner:
    return AcsSigner()


@pytest.fixture
def jwks(signer: AcsSigner) -> Iterator[JwksServer]:
    with JwksServer(signer) as server:
        yield server


def verify(token: str, jwks: JwksServer) -> dict[str, Any]:
    """Verify as our server does: the key from the JWKS, then issuer, audience and expiry."""
    key = jwt.PyJWKClient(jwks.url).get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=AUDIENCE, issuer=ACS_ISSUER)


def test_a_token_verifies_against_the_published_key(signer: AcsSigner, jwks: JwksServer) -> None:
    claims = verify(signer.token(AUDIENCE), jwks)

    assert (claims["iss"], claims["aud"]) == (ACS_ISSUER, AUDIENCE)
    assert claims["exp"] - claims["iat"] == 300
    assert jwks.hits == 1


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"issued_ago_s": 600, "lifetime_s": 300}, jwt.ExpiredSignatureError),
        ({"issuer": "https://impostor.example"}, jwt.InvalidIssuerError),
    ],
)
def test_an_expired_or_misissued_token_fails(
    signer: AcsSigner, jwks: JwksServer, options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        verify(signer.token(AUDIENCE, **options), jwks)


def test_a_token_for_another_audience_fails(signer: AcsSigner, jwks: JwksServer) -> None:
    with pytest.raises(jwt.InvalidAudienceError):
        verify(signer.token("another-resource"), jwks)


def test_a_key_missing_from_the_jwks_fails(jwks: JwksServer) -> None:
    with pytest.raises(jwt.PyJWKClientError, match="Unable to find a signing key"):
        verify(AcsSigner().token(AUDIENCE), jwks)


def test_a_forged_signature_under_a_published_kid_fails(
    signer: AcsSigner, jwks: JwksServer
) -> None:
    with pytest.raises(jwt.InvalidSignatureError):
        verify(AcsSigner(kid=signer.kid).token(AUDIENCE), jwks)
