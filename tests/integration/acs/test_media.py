"""A phone call's media: a simulated ACS media client streams ACS JSON to /ws/acs/<id>/.

It sends AudioMetadata, AudioData of espeak speech, DTMF tones and ACS transcriptions, and
receives our AudioData replies and StopAudio, the way ACS would (../shared/ACS.md). A Watcher
follows the session's events as the dashboard does.
"""

from __future__ import annotations

import asyncio
import wave
from typing import Any

import numpy as np
import pytest

from agents_app.models import Agent
from sessions_app.models import Session, Utterance
from tests.integration.acs.conftest import (
    AUDIENCE,
    AcsMediaClient,
    Watcher,
    make_phone_session,
    pcm_of,
)
from tests.speech import frames, silence, speech_pcm, vocal_burst
from tests.unit.test_turn_metrics import assert_in_order

pytestmark = pytest.mark.django_db(transaction=True)

SENTENCE = "hello I would like to check my account balance please"
ROBUST_WORDS = {"would", "like"}  # what pocketsphinx reliably hears of espeak saying SENTENCE


@pytest.fixture
async def call(acs_settings, acs_token, configured_layer):
    """Connect a media client (and a watcher first) to a new phone session."""
    opened: list[Any] = []

    async def open_call(
        agent: str = "echo", sample_rate: int = 16000, greet: bool = False, **fields: Any
    ):
        if not greet:  # most tests start with the caller; test_the_agent_greets_the_caller not
            await Agent.objects.filter(name=agent).aupdate(greeting="")
        session = await make_phone_session(agent, sample_rate=sample_rate, **fields)
        watcher = Watcher(session.id)
        await watcher.connect()
        media = AcsMediaClient(session.id, acs_token())
        opened.extend([media, watcher])
        await media.connect()
        started = await watcher.receive()
        assert (started["type"], started["channel"]) == ("session_started", "acs")
        await media.send_metadata(sample_rate)
        media.session, media.watcher = session, watcher
        return media

    yield open_call
    for client in opened:
        await client.close()


async def send_speech(media: AcsMediaClient, pcm: bytes, sample_rate: int) -> None:
    for frame in frames(pcm, sample_rate):
        await media.send_audio(frame)


async def audio_frames(media: AcsMediaClient, count: int, timeout: float = 15) -> list[bytes]:
    """The next `count` AudioData frames (nothing else may come before them)."""
    received = []
    while len(received) < count:
        frame = await media.receive(timeout)
        assert frame["Kind"] == "AudioData", frame
        assert frame["StopAudio"] is None
        received.append(pcm_of(frame))
    return received


async def until_stop_audio(media: AcsMediaClient, timeout: float = 5) -> int:
    """Read frames up to StopAudio; returns how many AudioData came first."""
    played = 0
    while (frame := await media.receive(timeout))["Kind"] == "AudioData":
        played += 1
    assert frame == {"Kind": "StopAudio", "AudioData": None, "StopAudio": {}}
    return played


# --- refusals ----------------------------------------------------------------------------


async def refused_with(session_id, token: str | None) -> int:
    media = AcsMediaClient(session_id, token)
    await media.connect()
    closed = await media.communicator.receive_output(timeout=3)
    assert closed["type"] == "websocket.close", closed
    return closed["code"]


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda signer, other: None, id="no-token"),
        pytest.param(lambda signer, other: "not-a-jwt", id="garbage"),
        pytest.param(
            lambda signer, other: signer.token(AUDIENCE, issued_ago_s=600, lifetime_s=300),
            id="expired",
        ),
        pytest.param(lambda signer, other: signer.token("another-resource"), id="wrong-audience"),
        pytest.param(lambda signer, other: other.token(AUDIENCE), id="wrong-key"),
    ],
)
async def test_media_socket_not_signed_by_acs_is_closed_with_4401(
    acs_settings, acs_signer, configured_layer, make_token
):
    from tests.fakes.acs_tokens import AcsSigner

    session = await make_phone_session()
    assert await refused_with(session.id, make_token(acs_signer, AcsSigner())) == 4401
    refreshed = await Session.objects.aget(pk=session.id)
    assert (refreshed.status, refreshed.error_count) == (Session.Status.ACTIVE, 0)


async def test_media_socket_refusals_for_sessions_it_cannot_carry(
    acs_settings, acs_token, configured_layer
):
    import uuid

    from tests.conftest import make_session

    web = await make_session()
    ended = await make_phone_session(status=Session.Status.ENDED, end_reason="call_disconnected")
    assert await refused_with(uuid.uuid4(), acs_token()) == 4404
    assert await refused_with(web.id, acs_token()) == 4404
    assert await refused_with(ended.id, acs_token()) == 4409


async def test_media_socket_without_telephony_settings_is_refused(settings, configured_layer):
    settings.ACS_CONNECTION_STRING = ""
    session = await make_phone_session()
    assert await refused_with(session.id, "anything") == 4503


async def test_verification_off_accepts_an_unsigned_socket(settings, configured_layer):
    settings.ACS_CONNECTION_STRING = "endpoint=https://127.0.0.1:9/;accesskey=eA=="
    settings.ACS_CALLBACK_BASE_URL = "https://voice.example.test"
    settings.ACS_WEBHOOK_SECRET = "s"
    settings.ACS_VERIFY_JWT = False
    session = await make_phone_session()
    watcher = Watcher(session.id)
    await watcher.connect()
    media = AcsMediaClient(session.id, None)
    await media.connect()
    assert (await watcher.receive())["type"] == "session_started"
    await media.close()
    await watcher.close()


# --- a voice call ------------------------------------------------------------------------


@pytest.mark.parametrize("sample_rate", [16000, 24000])
async def test_caller_is_heard_answered_in_acs_audio_and_can_talk_over_it(
    call, settings, sample_rate
):
    settings.STT_ENGINE = "pocketsphinx"
    settings.TTS_ENGINE = "espeak"
    media = await call(sample_rate=sample_rate)

    pcm = silence(400, sample_rate) + speech_pcm(SENTENCE, sample_rate)
    await send_speech(media, pcm + silence(1000, sample_rate), sample_rate)
    heard = await media.watcher.receive_until("transcript_final", timeout=20)
    assert ROBUST_WORDS & set(heard[-1]["text"].split()), heard[-1]["text"]

    # The echo agent's reply comes back as ACS AudioData: 20 ms of PCM16 at the call's rate.
    replies = await audio_frames(media, 15)
    assert {len(pcm) for pcm in replies} == {sample_rate * 2 // 50}
    assert any(any(pcm) for pcm in replies), "the reply is not silence"

    # The caller talks over it (and keeps talking: no new turn starts).
    await send_speech(media, speech_pcm(SENTENCE, sample_rate)[:sample_rate], sample_rate)
    await until_stop_audio(media)
    assert await media.communicator.receive_nothing(timeout=0.5), "AudioData after StopAudio"

    barge_in = (await media.watcher.receive_until("barge_in"))[-1]
    assert barge_in["source"] == "speech"
    agent = await Utterance.objects.aget(session_id=media.session.id, role="agent")
    assert agent.interrupted and agent.heard_text == barge_in["heard_text"]
    assert len(agent.heard_text) < len(agent.text)

    # The phone turn's waterfall: from the caller's last voiced frame to the cut, in order.
    metrics = (await media.watcher.receive_until("turn_metrics"))[-1]["metrics"]
    assert_in_order(metrics)
    assert {"last_voiced", "end_of_turn", "first_token", "first_audio", "first_frame"} <= set(
        metrics["marks"]
    )
    assert metrics["end_of_turn"]["reason"] in ("model", "words", "silence")
    assert metrics["barge_ins"][-1]["outcome"] == "confirmed"
    assert metrics["barge_ins"][-1]["source"] == "speech"
    assert agent.turn_metrics == metrics


async def test_silent_audio_frames_without_data_keep_the_call_going(call, settings):
    settings.STT_ENGINE = "pocketsphinx"
    media = await call()
    for _ in range(50):
        await media.send({"kind": "AudioData", "audioData": {"silent": True}})
    await send_speech(media, speech_pcm(SENTENCE) + silence(1000), 16000)
    events = await media.watcher.receive_until("transcript_final", timeout=20)
    started = next(e for e in events if e["type"] == "speech_started")
    assert started["offset_ms"] >= 900, "silent frames count as 20 ms of time each"


async def test_the_agent_greets_the_caller_and_the_greeting_can_be_cut(call, settings):
    settings.TTS_ENGINE = "silent"
    media = await call("rules", greet=True)

    await audio_frames(media, 5)  # the greeting is spoken before the caller says anything
    events = await media.watcher.receive_until("playback_started")
    said = [e for e in events if e["type"] == "agent_response"]
    assert said[0]["turn"] == 1 and said[0]["delta"].startswith("Hello! Press 1")

    await media.send_dtmf("2")  # callers who know the menu need not wait for it
    await until_stop_audio(media)
    barge_in = (await media.watcher.receive_until("barge_in"))[-1]
    assert (barge_in["turn"], barge_in["source"]) == (1, "dtmf")
    stored = await Utterance.objects.aget(session_id=media.session.id, role="agent")
    assert stored.text.startswith("Hello! Press 1") and stored.interrupted_by == "dtmf"
    # A greeting has no caller moments; the key press cut it with no pause before.
    metrics = (await media.watcher.receive_until("turn_metrics"))[-1]["metrics"]
    assert_in_order(metrics)
    assert {"last_voiced", "transcript_final"}.isdisjoint(metrics["marks"])
    (cut,) = metrics["barge_ins"]
    assert (cut["outcome"], cut["source"], cut["marks"]["onset"]) == (
        "confirmed",
        "dtmf",
        cut["marks"]["confirm"],
    )


async def test_a_false_alarm_stops_acs_audio_and_the_reply_then_plays_on(call, settings):
    settings.STT_ENGINE = "whisper"
    settings.TTS_ENGINE = "silent"
    media = await call("rules", greet=True)
    await audio_frames(media, 5)

    await send_speech(media, vocal_burst() + silence(400), 16000)
    await until_stop_audio(media)  # what ACS had queued is dropped while the caller may speak

    await audio_frames(media, 5)  # a false alarm: the greeting goes on
    events = await media.watcher.receive_until("playback_resumed")
    assert "playback_paused" in [event["type"] for event in events]
    assert "barge_in" not in [event["type"] for event in events]


# --- keypad --------------------------------------------------------------------------------


async def test_keypad_entries_drive_the_rules_agent(call, settings):
    settings.DTMF_ENTRY_TIMEOUT_MS = 50
    media = await call("rules")

    await media.send_dtmf("2")  # a menu key, submitted after the pause
    events = await media.watcher.receive_until("agent_response")
    assert [e for e in events if e["type"] == "dtmf"] == [events[0]]
    assert events[0]["digits"] == "2"
    reply = await until_final(media.watcher)
    assert reply["text"].startswith("Your balance is")

    for tone in "1#":
        await media.send_dtmf(tone)
    assert (await until_final(media.watcher))["text"] == "Sure. What is the order number?"

    for tone in "12345#":
        await media.send_dtmf(tone)
    reply = await until_final(media.watcher)
    assert reply["text"].startswith("Order 12345 is")
    said = [
        u.text async for u in Utterance.objects.filter(session_id=media.session.id, role="user")
    ]
    assert said == ["2", "1", "12345"]


async def until_final(watcher: Watcher) -> dict[str, Any]:
    while True:
        event = await watcher.receive()
        if event["type"] == "agent_response" and event["final"]:
            return event


async def test_a_card_number_typed_on_the_keypad_is_redacted(call, settings):
    media = await call()
    for tone in "4111111111111111#":
        await media.send_dtmf(tone)
    events = await media.watcher.receive_until("transcript_final")
    dtmf = next(e for e in events if e["type"] == "dtmf")
    assert dtmf["digits"] == "[redacted]"
    assert events[-1]["text"] == "[redacted]"
    stored = await Utterance.objects.aget(session_id=media.session.id, role="user")
    assert stored.text == "[redacted]"


async def test_a_key_press_stops_the_agent_speaking(call, settings, gated_agent):
    settings.TTS_ENGINE = "silent"
    settings.DTMF_ENTRY_TIMEOUT_MS = 60_000  # the entry stays open: only the barge-in counts
    media = await call("gated")
    await media.send_transcription("tell me everything", "Final")
    await audio_frames(media, 5)

    await media.send_dtmf("0")
    await until_stop_audio(media)
    assert await media.communicator.receive_nothing(timeout=0.3), "AudioData after StopAudio"
    barge_in = (await media.watcher.receive_until("barge_in"))[-1]
    assert barge_in["source"] == "dtmf"
    agent = await Utterance.objects.aget(session_id=media.session.id, role="agent")
    assert (agent.interrupted, agent.interrupted_by) == (True, "dtmf")


# --- ACS transcription -----------------------------------------------------------------------


async def test_acs_transcription_replaces_local_recognition(call, settings, gated_agent):
    settings.STT_ENGINE = "pocketsphinx"
    settings.TTS_ENGINE = "silent"
    media = await call("gated")

    await media.send_transcription("what is my", "Intermediate")
    await media.send_transcription("What is my balance?", "final")
    events = await media.watcher.receive_until("transcript_final")
    assert [e["type"] for e in events] == ["transcript_partial", "transcript_final"]
    assert events[-1]["text"] == "What is my balance?"
    stored = await Utterance.objects.aget(session_id=media.session.id, role="user")
    assert (stored.start_ms, stored.end_ms, stored.confidence) == (1200, 2100, 0.87)
    await audio_frames(media, 5)

    # An intermediate result while the agent talks barges in.
    await media.send_transcription("wait", "INTERMEDIATE")
    await until_stop_audio(media)
    assert await media.communicator.receive_nothing(timeout=0.3), "AudioData after StopAudio"
    barge_in = (await media.watcher.receive_until("barge_in"))[-1]
    assert barge_in["source"] == "speech"

    # Audio still streams, but ACS recognises it: no local recognition starts.
    await send_speech(media, speech_pcm(SENTENCE) + silence(1000), 16000)
    await asyncio.sleep(0.5)
    later = []
    while not await media.watcher.communicator.receive_nothing(timeout=0.5):
        later.append(await media.watcher.receive())
    assert not [e for e in later if e["type"] in ("speech_started", "transcript_final")], later


# --- bad frames ----------------------------------------------------------------------------

BAD_FRAMES = [
    pytest.param("not json", "invalid_event", id="not-json"),
    pytest.param('["AudioData"]', "invalid_event", id="array"),
    pytest.param('{"kind": "VideoData", "videoData": {}}', "invalid_event", id="unknown-kind"),
    pytest.param('{"kind": "AudioData"}', "invalid_event", id="no-body"),
    pytest.param(
        '{"kind": "AudioData", "audioData": {"data": "%%%", "silent": false}}',
        "invalid_event",
        id="bad-base64",
    ),
    pytest.param(
        '{"kind": "AudioData", "audioData": {"data": "AAAA", "silent": false}}',
        "invalid_audio",
        id="odd-byte-count",
    ),
    pytest.param('{"kind": "DtmfData", "dtmfData": {"data": "x"}}', "invalid_event", id="tone"),
    pytest.param(
        '{"kind": "AudioMetadata", "audioMetadata": {"encoding": "OPUS", "sampleRate": 16000,'
        ' "channels": 1, "length": 640}}',
        "invalid_audio",
        id="not-pcm",
    ),
    pytest.param(
        '{"kind": "AudioMetadata", "audioMetadata": {"encoding": "PCM", "sampleRate": 44100,'
        ' "channels": 1, "length": 640}}',
        "invalid_audio",
        id="rate",
    ),
    pytest.param(
        '{"kind": "TranscriptionData", "transcriptionData": {"text": "hi",'
        ' "resultStatus": "Maybe"}}',
        "invalid_event",
        id="transcription-status",
    ),
]


@pytest.mark.parametrize(("frame", "code"), BAD_FRAMES)
async def test_a_malformed_frame_is_logged_and_dropped_and_the_call_goes_on(
    call, settings, caplog, frame, code
):
    settings.DTMF_ENTRY_TIMEOUT_MS = 50
    media = await call()
    await media.send_transcription("before", "Final")
    await media.watcher.receive_until("agent_response")

    await media.communicator.send_to(text_data=frame)
    error = (await media.watcher.receive_until("error"))[-1]
    assert (error["code"], error["source"]) == (code, "client")
    assert "dropped a media frame" in error["message"]
    assert "dropped an ACS media frame" in caplog.text

    await media.send_transcription("after", "Final")
    events = await media.watcher.receive_until("transcript_final")
    assert events[-1]["text"] == "after"
    session = await Session.objects.aget(pk=media.session.id)
    assert (session.status, session.error_count) == (Session.Status.ACTIVE, 1)
    assert [u.text async for u in Utterance.objects.filter(session=session, role="user")] == [
        "before",
        "after",
    ]


async def test_a_binary_frame_is_dropped(call):
    media = await call()
    await media.communicator.send_to(bytes_data=b"\0\0" * 320)
    error = await media.watcher.receive()
    assert error["type"] == "error" and error["code"] == "invalid_event"


# --- the session ends ------------------------------------------------------------------------


async def test_operator_end_hangs_up_the_call(call, fake_acs, operator_client):
    media = await call()
    response = await operator_client.post(f"/api/sessions/{media.session.id}/end")
    assert response.status_code == 200

    closed = await media.communicator.receive_output(timeout=3)
    assert closed["type"] == "websocket.close"
    hang_up = await asyncio.to_thread(fake_acs.wait_for, lambda r: r.path.endswith(":terminate"))
    assert media.session.call_connection_id in hang_up.path
    ended = (await media.watcher.receive_until("session_ended"))[-1]
    assert ended["reason"] == "operator_ended"
    closed = await media.watcher.communicator.receive_output(timeout=3)
    assert closed["type"] == "websocket.close", "the watch socket closes after session_ended"
    # The REST API and the consumer both hang up phone calls; the call is hung up once.
    assert len(fake_acs.requests_to(":terminate")) == 1
    session = await Session.objects.aget(pk=media.session.id)
    assert session.call_state == Session.CallState.DISCONNECTED


async def test_operator_end_hangs_up_a_call_whose_media_never_connected(
    acs_settings, configured_layer, fake_acs, operator_client
):
    from tests.conftest import make_session

    phone = await make_phone_session()
    web = await make_session()
    for session in (phone, web):
        response = await operator_client.post(f"/api/sessions/{session.id}/end")
        assert response.status_code == 200
    (hang_up,) = fake_acs.requests_to(":terminate")
    assert phone.call_connection_id in hang_up.path
    stored = await Session.objects.aget(pk=phone.id)
    assert (stored.status, stored.call_state) == (Session.Status.ENDED, "disconnected")


@pytest.mark.parametrize(("ended", "code"), [(None, 4404), (True, 4409)])
async def test_watching_needs_a_live_session(configured_layer, ended, code):
    import uuid

    session_id = uuid.uuid4()
    if ended:
        session_id = (await make_phone_session(status=Session.Status.ENDED)).id
    watcher = Watcher(session_id)
    await watcher.connect()
    closed = await watcher.communicator.receive_output(timeout=3)
    assert (closed["type"], closed["code"]) == ("websocket.close", code)


async def test_operator_interrupt_sends_stop_audio(call, settings, gated_agent, operator_client):
    settings.TTS_ENGINE = "silent"
    media = await call("gated")
    await media.send_transcription("tell me everything", "Final")
    await audio_frames(media, 5)

    response = await operator_client.post(f"/api/sessions/{media.session.id}/interrupt")
    assert response.status_code == 202
    await until_stop_audio(media)
    barge_in = (await media.watcher.receive_until("barge_in"))[-1]
    assert barge_in["source"] == "operator"


async def test_media_socket_closed_by_acs_ends_the_session(call, fake_acs):
    media = await call()
    await media.communicator.disconnect()
    ended = (await media.watcher.receive_until("session_ended"))[-1]
    assert ended["reason"] == "media_disconnected"
    session = await Session.objects.aget(pk=media.session.id)
    assert (session.status, session.end_reason) == (Session.Status.ENDED, "media_disconnected")
    assert not fake_acs.requests_to(":terminate"), "the call was not ours to hang up"


# --- recordings ------------------------------------------------------------------------------

DTMF_HZ = {"4": (770, 1209), "1": (697, 1209), "5": (770, 1336), "#": (941, 1477)}


def key_tone(key: str, ms: int = 80, sample_rate: int = 16000) -> bytes:
    """The dual tone a phone plays for a key."""
    t = np.arange(sample_rate * ms // 1000) / sample_rate
    low, high = DTMF_HZ[key]
    tone = 0.3 * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t)) * 32767
    return tone.astype(np.int16).tobytes()


async def test_the_keypad_tones_of_a_redacted_entry_are_silent_in_the_recording(
    call, settings, tmp_path
):
    settings.RECORD_SESSIONS = True
    settings.MEDIA_ROOT = tmp_path
    media = await call()
    sent = bytearray()

    async def audio(pcm: bytes) -> None:
        sent.extend(pcm)
        await send_speech(media, pcm, 16000)

    await audio(silence(600))
    keys_from = len(sent) // 2
    for key in "4111511151115111":
        await audio(key_tone(key))
        await media.send_dtmf(key)  # ACS reports a key once its tone is heard
        await audio(silence(100))
    await audio(key_tone("#"))
    await media.send_dtmf("#")
    keys_to = len(sent) // 2
    await media.watcher.receive_until("transcript_final")
    await audio(silence(600))
    after = len(sent) // 2
    await audio(key_tone("5", ms=400))  # a menu choice later: no card number, kept
    await media.close()
    await media.watcher.receive_until("session_ended", timeout=15)  # saved before it is said

    session = await Session.objects.aget(pk=media.session.id)
    with session.recording.open("rb") as stored, wave.open(stored) as wav:
        left = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")[0::2]
    caller = np.frombuffer(bytes(sent), dtype="<i2")
    assert len(left) == len(caller)
    assert not left[keys_from:keys_to].any(), "no tone of the card number is audible"
    assert np.array_equal(left[: keys_from - 16000 * 3 // 10 - 1], caller[: keys_from - 4801])
    assert np.array_equal(left[after:], caller[after:]), "a later key is kept"


async def test_a_card_number_acs_transcribed_is_silent_in_the_recording(call, settings, tmp_path):
    settings.RECORD_SESSIONS = True
    settings.MEDIA_ROOT = tmp_path
    media = await call()
    caller = key_tone("5", ms=3000)  # a steady sound: every sample shows if it was kept
    await send_speech(media, caller[: 16000 * 2 * 2], 16000)  # 2 s: past the utterance's end
    # ACS heard the number 1.2 s into the call, for 0.6 s (offset and duration in ticks).
    await media.send_transcription(
        "my card is 4111 1111 1111 1111", "Final", offset=12_000_000, duration=6_000_000
    )
    await media.watcher.receive_until("transcript_final")
    await send_speech(media, caller[16000 * 2 * 2 :], 16000)  # recorded, not recognised
    await media.close()
    await media.watcher.receive_until("session_ended", timeout=15)

    session = await Session.objects.aget(pk=media.session.id)
    with session.recording.open("rb") as stored, wave.open(stored) as wav:
        left = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")[0::2]
    sent = np.frombuffer(caller, dtype="<i2")
    assert len(left) == len(sent), "audio after ACS took over recognition is recorded too"
    assert not left[16 * 1200 : 16 * 1800].any()
    assert np.array_equal(left[: 16 * 700], sent[: 16 * 700])
    assert np.array_equal(left[16 * 2300 :], sent[16 * 2300 :])
