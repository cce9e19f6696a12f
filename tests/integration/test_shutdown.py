"""A server going down ends its live sessions properly: daphne cancels every application on
SIGTERM, and each session ends with reason `server_shutdown`, nothing said lost."""

from __future__ import annotations

import asyncio
import json

import pytest

from sessions_app.models import Session, Utterance
from tests.integration.test_voice_playback import LONG_SAY, start_speaking
from tests.speech import frames, silence, speech_pcm

pytestmark = pytest.mark.django_db(transaction=True)


async def shut_down(client) -> list[dict]:
    """Cancel the application as daphne does on SIGTERM; return the events it still sent."""
    client.communicator.future.cancel()
    sent = []
    while True:
        message = await client.communicator.output_queue.get()
        if message["type"] == "websocket.close":
            assert message["code"] == 4001
            break
        if message.get("text"):
            sent.append(json.loads(message["text"]))
    with pytest.raises(asyncio.CancelledError):
        await client.communicator.future
    return sent


async def test_shutdown_mid_reply_ends_the_session_and_keeps_what_was_heard(stream, settings):
    settings.TTS_ENGINE = "silent"
    client = await stream()
    await start_speaking(client)

    sent = await shut_down(client)

    assert sent[-1]["type"] == "session_ended" and sent[-1]["reason"] == "server_shutdown"
    session = await Session.objects.aget(pk=client.session.id)
    assert (session.status, session.end_reason) == ("ended", "server_shutdown")
    agent = await Utterance.objects.aget(session=session, role="agent")
    assert agent.interrupted and agent.heard_text
    assert (await Utterance.objects.aget(session=session, role="user")).text == LONG_SAY


async def test_shutdown_mid_sentence_stores_the_words_already_spoken(stream, settings):
    settings.STT_ENGINE = "pocketsphinx"
    client = await stream()
    speech = speech_pcm("hello I would like to check my account balance please")
    for frame in frames(silence(300) + speech):  # no silence after: still speaking
        await client.send_raw(data=frame)
    # The server reads messages in order: once this marker's error is back, all audio is in.
    # Voice detection runs in its own task (and Silero off the loop), so speech_started may
    # come before or after it.
    await client.send_raw(text="marker")
    seen = {event["type"] for event in await client.receive_until("error", timeout=10)}
    if "speech_started" not in seen:
        await client.receive_until("speech_started", timeout=10)

    await shut_down(client)

    user = await Utterance.objects.aget(session_id=client.session.id, role="user")
    assert {"would", "like"} & set(user.text.split())
    assert user.start_ms is not None and user.end_ms > user.start_ms
