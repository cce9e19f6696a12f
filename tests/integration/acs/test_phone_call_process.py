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
import uuid
from typing import Any

import aiohttp

from tests.integration.acs.conftest import AUDIENCE, SECRET
from tests.servers import migrate, running_daphne, server_env

CALLER = "4:+14255550123"


def incoming_call(correlation_id: str) -> list[dict[str, Any]]:
    return [
        {
            "id": str(uuid.uuid4()),
            "topic": "/subscriptions/x/resourceGroups/y/providers/Microsoft.Communication/z",
            "subject": f"/caller/{CALLER}/recipient/4:+18005550100",
            "eventType": "Microsoft.Communication.IncomingCall",
            "eventTime": "2026-11-25T10:00:00Z",
            "dataVersion": "1.0",
            "data": {
                "to": {"kind": "phoneNumber", "rawId": "4:+18005550100"},
                "from": {
                    "kind": "phoneNumber",
                    "rawId": CALLER,
                    "phoneNumber": {"value": CALLER[2:]},
                },
                "callerDisplayName": "",
                "incomingCallContext": "eyJhbGciOiJub25lIn0.context-from-acs",
                "serverCallId": "aHR0cHM6Ly9hcGkuZmxpZ2h0cHJveHkuc2t5cGUuY29t",
                "correlationId": correlation_id,
            },
        }
    ]


def callback(kind: str, call_connection_id: str) -> list[dict[str, Any]]:
    return [
        {
            "id": str(uuid.uuid4()),
            "source": f"calling/callConnections/{call_connection_id}",
            "type": f"Microsoft.Communication.{kind}",
            "specversion": "1.0",
            "time": "2026-11-25T10:00:01Z",
            "data": {"callConnectionId": call_connection_id, "correlationId": "c"},
        }
    ]


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
    signed = {"Authorization": f"Bearer {acs_signer.token(AUDIENCE)}"}
    with running_daphne(env, tmp_path / "daphne.log") as url:
        async with aiohttp.ClientSession() as http:
            # The phone rings: Event Grid tells the webhook; the server answers through ACS.
            async with http.post(
                f"{url}/acs/events?secret={SECRET}",
                json=incoming_call(str(uuid.uuid4())),
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
                json=callback("CallConnected", connection_id),
                headers=signed,
            ) as response:
                assert response.status == 200, await response.text()

            # ACS opens the media socket; the caller presses 2 # for their balance.
            async with http.ws_connect(f"{url}/ws/acs/{session_id}/", headers=signed) as media:
                await media.send_json(
                    {
                        "kind": "AudioMetadata",
                        "audioMetadata": {
                            "subscriptionId": "s",
                            "encoding": "PCM",
                            "sampleRate": 16000,
                            "channels": 1,
                            "length": 640,
                        },
                    }
                )
                # The agent greets the caller first, who knows the menu and cuts it short.
                for _ in range(5):
                    frame = await next_frame(media)
                    assert frame["Kind"] == "AudioData"
                    assert len(base64.b64decode(frame["AudioData"]["Data"])) == 640
                for tone in "2#":
                    await media.send_json({"kind": "DtmfData", "dtmfData": {"data": tone}})
                while (frame := await next_frame(media))["Kind"] == "AudioData":
                    pass
                assert frame["Kind"] == "StopAudio"
                for _ in range(10):
                    frame = await next_frame(media)
                    assert frame["Kind"] == "AudioData"

                await media.send_json({"kind": "DtmfData", "dtmfData": {"data": "9"}})
                while (frame := await next_frame(media))["Kind"] == "AudioData":
                    pass
                assert frame["Kind"] == "StopAudio"

                # The caller hangs up: ACS says so, and the server closes the media socket.
                async with http.post(
                    f"{url}/acs/callbacks/{session_id}",
                    json=callback("CallDisconnected", connection_id),
                    headers=signed,
                ) as response:
                    assert response.status == 200
                closing = await asyncio.wait_for(media.receive(), 5)
                while closing.type == aiohttp.WSMsgType.TEXT:
                    assert json.loads(closing.data)["Kind"] != "AudioData", "audio after StopAudio"
                    closing = await asyncio.wait_for(media.receive(), 5)
                assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)

            async with http.get(f"{url}/api/sessions/{session_id}") as response:
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
