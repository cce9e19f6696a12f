"""Phone-call fixtures: ACS settings pointing at fakes on loopback, tokens, a media client.

The SDK talks TLS to a fake ACS whose certificate a locally generated CA signs; ACS's JWTs
are signed with a locally generated RSA key published by a JWKS server on loopback.
"""

from __future__ import annotations

import base64
import json
import ssl
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp.connector
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from sessions_app.contracts import validator
from sessions_app.models import Session
from tests.conftest import make_session, operator_token
from tests.fakes import acs_events
from tests.fakes.acs_server import FakeAcsServer, TlsMaterial, make_tls_material
from tests.fakes.acs_tokens import AcsSigner, JwksServer
from voiceproject.asgi import application

AUDIENCE = "00000000-0000-0000-0000-00000000acs0"
CALLBACK_BASE = "https://voice.example.test"
SECRET = "webhook-secret-for-tests"


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("acs-tls"))


@pytest.fixture
def fake_acs(tls_material, monkeypatch) -> Iterator[FakeAcsServer]:
    """A TLS fake ACS the SDK trusts. aiohttp builds its default SSL context at import, so in
    this process the context is swapped for one trusting the test CA; a fresh server process
    trusts it through SSL_CERT_FILE instead (test_acs_process.py)."""
    monkeypatch.setattr(
        aiohttp.connector,
        "_SSL_CONTEXT_VERIFIED",
        ssl.create_default_context(cafile=str(tls_material.ca_path)),
    )
    with FakeAcsServer(tls_material) as server:
        yield server


@pytest.fixture
def acs_signer() -> AcsSigner:
    return AcsSigner()


@pytest.fixture
def jwks_server(acs_signer) -> Iterator[JwksServer]:
    with JwksServer(acs_signer) as server:
        yield server


@pytest.fixture
def acs_settings(settings, fake_acs, jwks_server) -> Any:
    """Telephony fully configured against the fakes, with a fast retry policy."""
    settings.ACS_CONNECTION_STRING = fake_acs.connection_string
    settings.ACS_CALLBACK_BASE_URL = CALLBACK_BASE
    settings.ACS_WEBHOOK_SECRET = SECRET
    settings.ACS_AUDIO_FORMAT = "pcm16k"
    settings.ACS_VERIFY_JWT = True
    settings.ACS_JWT_AUDIENCE = AUDIENCE
    settings.ACS_JWKS_URL = jwks_server.url
    settings.PROVIDER_RETRY_ATTEMPTS = 3
    settings.PROVIDER_RETRY_BASE_S = 0.01
    settings.PROVIDER_RETRY_MAX_WAIT_S = 0.05
    return settings


@pytest.fixture
def acs_token(acs_signer):
    """A valid ACS bearer token, as ACS would send it."""
    return lambda **claims: acs_signer.token(AUDIENCE, **claims)


async def make_phone_session(agent: str = "echo", **fields: Any) -> Session:
    defaults = {
        "channel": Session.Channel.ACS,
        "caller_id": "4:+14255550123",
        "call_connection_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
        "call_state": Session.CallState.CONNECTED,
    }
    return await make_session(agent, **{**defaults, **fields})


class AcsMediaClient:
    """Plays ACS's side of the media WebSocket: sends ACS media JSON, collects our replies."""

    def __init__(self, session_id: uuid.UUID, token: str | None) -> None:
        headers = [(b"host", b"voice.example.test"), (b"x-ms-call-connection-id", b"call-1")]
        if token is not None:
            headers.append((b"authorization", f"Bearer {token}".encode()))
        self.communicator = WebsocketCommunicator(
            application, f"/ws/acs/{session_id}/", headers=headers
        )
        self.received: list[dict[str, Any]] = []

    async def connect(self) -> None:
        connected, _ = await self.communicator.connect()
        assert connected

    async def send_metadata(self, sample_rate: int = 16000) -> None:
        await self.send(acs_events.audio_metadata(sample_rate))

    async def send_audio(self, pcm: bytes, *, silent: bool = False) -> None:
        await self.send(acs_events.audio_data(pcm, silent=silent))

    async def send_dtmf(self, tone: str) -> None:
        await self.send(acs_events.dtmf(tone))

    async def send_transcription(self, text: str, status: str, **extra: Any) -> None:
        await self.send(acs_events.transcription(text, status, **extra))

    async def send(self, frame: dict[str, Any]) -> None:
        await self.communicator.send_to(text_data=json.dumps(frame))

    async def receive(self, timeout: float = 3) -> dict[str, Any]:
        """Our next outbound frame (AudioData or StopAudio), checked for ACS's shape."""
        message = await self.communicator.receive_output(timeout=timeout)
        assert message["type"] == "websocket.send", f"socket closed: {message}"
        frame = json.loads(message["text"])
        assert set(frame) == {"Kind", "AudioData", "StopAudio"}, frame
        assert frame["Kind"] in ("AudioData", "StopAudio")
        self.received.append(frame)
        return frame

    async def close(self) -> None:
        if not self.communicator.future.done():
            await self.communicator.disconnect()


def pcm_of(frame: dict[str, Any]) -> bytes:
    return base64.b64decode(frame["AudioData"]["Data"])


class Watcher:
    """Follows a session's events on /ws/sessions/<id>/watch/, as the dashboard does, as an
    operator (with an API token); every event is checked against the contract and for seq
    gaps."""

    def __init__(self, session_id: uuid.UUID) -> None:
        self.session_id = session_id
        self.events: list[dict[str, Any]] = []

    async def connect(self) -> None:
        token = await sync_to_async(operator_token)()
        self.communicator = WebsocketCommunicator(
            application,
            f"/ws/sessions/{self.session_id}/watch/",
            headers=[
                (b"origin", b"http://localhost"),
                (b"host", b"localhost"),
                (b"authorization", f"Bearer {token}".encode()),
            ],
        )
        connected, _ = await self.communicator.connect()
        assert connected

    async def receive(self, timeout: float = 3) -> dict[str, Any]:
        event = await self.communicator.receive_json_from(timeout=timeout)
        validator("stream-event").validate(event)
        expected_seq = self.events[-1]["seq"] + 1 if self.events else 1
        assert event["seq"] == expected_seq, f"seq gap: {event['seq']} after {expected_seq - 1}"
        self.events.append(event)
        return event

    async def receive_until(self, event_type: str, timeout: float = 5) -> list[dict[str, Any]]:
        """Events up to and including the first of `event_type`."""
        seen = []
        while True:
            seen.append(await self.receive(timeout))
            if seen[-1]["type"] == event_type:
                return seen

    async def close(self) -> None:
        if not self.communicator.future.done():
            await self.communicator.disconnect()
