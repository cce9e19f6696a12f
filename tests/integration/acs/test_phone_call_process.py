"""A whole phone call against a real daphne process, as ACS would place it.

The server trusts the fake ACS's test CA only through SSL_CERT_FILE / REQUESTS_CA_BUNDLE,
as a deployment behind a corporate CA would; ACS's tokens come from a JWKS on loopback.
Event Grid delivers IncomingCall; the SDK answers with media streaming; ACS's callbacks and
media socket carry signed tokens; the caller presses keys, hears the agent, presses a key
over it, and hangs up.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp

from tests.conftest import bearer
from tests.fakes.acs_events import CALLER, audio_metadata, callback_event, dtmf, incoming_call
from tests.integration.acs.conftest import AUDIENCE, SECRET
from tests.servers import create_operator_token, migrate, running_daphne, server_env


async def test_a_phone_call_is_answered_heard_and_interruptible(
    tmp_path, fake_acs, tls_material, acs_signer, jwks_server
):
    env = server_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        AGENT_STRATEGY="rules",
        TTS_ENGINE="espeak",
        STT_ENGINE="none",
        DTMF_ENTRY_TIMEOUT_MS="60000",  # entries end with "#"; a lone key only barges in
        ACS_CONNECTION_STRING=fake_acs.connection_string,
        ACS_CALLBACK_BASE_URL="https://voice.example.test",
        ACS_WEBHOOK_SECRET=SECRET,
        ACS_JWT_AUDIENCE=AUDIENCE,
        ACS_JWKS_URL=jwks_server.url,
        SSL_CERT_FILE=str(tls_material.ca_path),
        REQUESTS_CA_BUNDLE=str(tls_material.ca_path),
    )
    migrate(env)
    operator = bearer(create_operator_token(env))
    signed = {"Authorization": f"Bearer {acs_signer.token(AUDIENCE)}"}
    with running_daphne(env, tmp_path / "daphne.log") as url:
        async with aiohttp.ClientSession() as http:
            # The phone rings: Event Grid tells the webhook; the server answers through ACS.
            async with http.post(
                f"{url}/acs/events?secret={SECRET}",
                json=[incoming_call()],
                headers={"aeg-event-type": "Notification"},
            ) as response:
                assert response.status == 200, await response.text()
                (session_id,) = (await response.json())["sessions"]
            (answer,) = fake_acs.requests_to(":answer")
            streaming = answer.body["mediaStreamingOptions"]
            assert streaming["transportUrl"] == f"wss://voice.example.test/ws/acs/{session_id}/"
            assert streaming["enableBidirectional"] is True
            connection_id = fake_acs.answers[0]["callConnectionId"]

            async with http.post(
                f"{url}/acs/callbacks/{session_id}",
                json=[callback_event("CallConnected", connection_id)],
                headers=signed,
            ) as response:
                assert response.status == 200, await response.text()

            # ACS opens the media socket; the caller presses 2 # for their balance.
            async with http.ws_connect(f"{url}/ws/acs/{session_id}/", headers=signed) as media:
                await media.send_json(audio_metadata())
                # The agent greets the caller first, who knows the menu and cuts it short.
                for _ in range(5):
                    frame = await next_frame(media)
                    assert frame["Kind"] == "AudioData"
                    assert len(base64.b64decode(frame["AudioData"]["Data"])) == 640
                for tone in "2#":
                    await media.send_json(dtmf(tone))
                while (frame := await next_frame(media))["Kind"] == "AudioData":
                    pass
                assert frame["Kind"] == "StopAudio"
                for _ in range(10):
                    frame = await next_frame(media)
                    assert frame["Kind"] == "AudioData"

                await media.send_json(dtmf("9"))
                while (frame := await next_frame(media))["Kind"] == "AudioData":
                    pass
                assert frame["Kind"] == "StopAudio"

                # The caller hangs up: ACS says so, and the server closes the media socket.
                async with http.post(
                    f"{url}/acs/callbacks/{session_id}",
                    json=[callback_event("CallDisconnected", connection_id)],
                    headers=signed,
                ) as response:
                    assert response.status == 200
                closing = await asyncio.wait_for(media.receive(), 5)
                while closing.type == aiohttp.WSMsgType.TEXT:
                    assert json.loads(closing.data)["Kind"] != "AudioData", "audio after StopAudio"
                    closing = await asyncio.wait_for(media.receive(), 5)
                assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)

            async with http.get(f"{url}/api/sessions/{session_id}", headers=operator) as response:
                stored = await response.json()
    assert (stored["channel"], stored["status"]) == ("acs", "ended")
    assert stored["end_reason"] == "call_disconnected"
    assert (stored["caller_id"], stored["call_connection_id"]) == (CALLER, connection_id)
    assert [e["kind"] for e in stored["call_events"]] == ["CallConnected", "CallDisconnected"]
    greeting, user, agent = stored["utterances"][:3]
    assert greeting["text"].startswith("Hello!") and greeting["interrupted_by"] == "dtmf"
    assert user["text"] == "2"
    assert agent["text"].startswith("Your balance is")
    assert agent["interrupted"] and agent["heard_text"] != agent["text"]
    assert stored["barge_in_count"] == 2
    assert not fake_acs.requests_to(":terminate"), "the caller hung up; nothing to hang up"


async def next_frame(media: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message = await asyncio.wait_for(media.receive(), 10)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    return json.loads(message.data)
