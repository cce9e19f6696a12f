"""Bad input gets a clear error event, the connection stays usable, and nothing stored changes."""

from __future__ import annotations

import pytest

from sessions_app.models import Session, Utterance

pytestmark = pytest.mark.django_db(transaction=True)

BAD_FRAMES = [
    pytest.param("{not json", "invalid_json", id="malformed-json"),
    pytest.param("[1, 2]", "invalid_event", id="not-an-object"),
    pytest.param('{"text": "hi"}', "invalid_event", id="missing-type"),
    pytest.param('{"type": 7}', "invalid_event", id="type-not-a-string"),
    pytest.param('{"type": "dance"}', "unknown_event_type", id="unknown-type"),
    pytest.param('{"type": "text", "text": 5}', "invalid_event", id="text-not-a-string"),
    pytest.param('{"type": "text"}', "invalid_event", id="text-missing"),
    pytest.param('{"type": "text", "text": "hi", "final": "yes"}', "invalid_event", id="final-str"),
    pytest.param('{"type": "text", "text": "   "}', "invalid_event", id="empty-final-text"),
    pytest.param('{"type": "config", "sample_rate": 11025}', "invalid_event", id="bad-rate"),
    pytest.param('{"type": "config", "sample_rate": true}', "invalid_event", id="rate-bool"),
    pytest.param('{"type": "config", "sample_rate": 16000.0}', "invalid_event", id="rate-float"),
    pytest.param("[" * 5000 + "]" * 5000, "invalid_json", id="nested-too-deep"),
    pytest.param('{"type": "text", "text": ' + "9" * 4400 + "}", "invalid_json", id="long-number"),
]


async def assert_still_usable(client) -> None:
    events = await client.reply_to("still there?")
    assert events[-1]["text"] == "You said: still there?"


@pytest.mark.parametrize("frame,code", BAD_FRAMES)
async def test_bad_frame_gets_error_and_connection_survives(stream, frame, code):
    client = await stream()
    await client.reply_to("first")

    await client.send_raw(text=frame)

    error = await client.receive()
    assert (error["type"], error["code"], error["source"]) == ("error", code, "client")
    assert error["retryable"] is False
    assert error["message"]
    await assert_still_usable(client)
    texts = [u.text async for u in Utterance.objects.filter(session_id=client.session.id)]
    assert texts == ["first", "You said: first", "still there?", "You said: still there?"]
    session = await Session.objects.aget(pk=client.session.id)
    assert session.error_count == 1


async def test_oversized_text_frame(stream, settings):
    client = await stream()
    too_long = "a" * settings.WS_MAX_TEXT_BYTES
    await client.send_raw(text='{"type": "text", "text": "' + too_long + '"}')
    error = await client.receive()
    assert error["code"] == "payload_too_large"
    await assert_still_usable(client)


async def test_overlong_utterance(stream, settings):
    settings.MAX_UTTERANCE_CHARS = 10
    client = await stream()
    await client.send(type="text", text="a" * 11)
    error = await client.receive()
    assert error["code"] == "payload_too_large"
    assert await Utterance.objects.filter(session_id=client.session.id).acount() == 0


@pytest.mark.parametrize(
    "frame,code",
    [
        pytest.param(b"\x00" * 641, "invalid_audio", id="odd-byte-count"),
        pytest.param(b"\x00\x00" * 16001, "payload_too_large", id="longer-than-a-second"),
    ],
)
async def test_bad_audio_frame_gets_error_and_connection_survives(stream, frame, code):
    client = await stream()
    await client.send_raw(data=frame)
    error = await client.receive()
    assert (error["type"], error["code"], error["source"]) == ("error", code, "client")
    await client.send_raw(data=b"\x00\x00" * 320)  # a good frame is still taken
    await assert_still_usable(client)


async def test_sample_rate_cannot_change_once_audio_flows(stream):
    client = await stream()
    await client.send_raw(data=b"\x00\x00" * 320)
    await client.send(type="config", sample_rate=8000)
    error = await client.receive()
    assert error["code"] == "invalid_event"
    assert "before the first audio frame" in error["message"]
    session = await Session.objects.aget(pk=client.session.id)
    assert session.sample_rate == 16000


async def test_config_sets_the_sample_rate(stream):
    client = await stream()
    await client.send(type="config", sample_rate=8000)
    await assert_still_usable(client)
    session = await Session.objects.aget(pk=client.session.id)
    assert session.sample_rate == 8000
