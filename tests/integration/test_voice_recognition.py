"""Caller speech over the WebSocket: voice detection, recognition, and the turn it starts."""

from __future__ import annotations

import asyncio

import pytest

from sessions_app.models import Utterance
from tests.speech import frames, noise, silence, speech_pcm
from tests.unit.test_stt_engines import words

pytestmark = pytest.mark.django_db(transaction=True)

SENTENCE = "hello I would like to check my account balance please"
# What whisper reliably hears of espeak saying SENTENCE (see tests/unit/test_whisper.py).
ROBUST_WORDS = {"would", "like", "check", "account"}


@pytest.fixture
def listening(settings):
    settings.STT_ENGINE = "whisper"  # the default engine


async def send_audio(client, pcm: bytes, sample_rate: int = 16000, real_time: bool = False) -> None:
    for frame in frames(pcm, sample_rate):
        await client.send_raw(data=frame)
        if real_time:
            await asyncio.sleep(0.02)


async def events_until(client, event_type: str, timeout: float = 15) -> list[dict]:
    return await client.receive_until(event_type, timeout=timeout)


async def test_speech_is_detected_recognised_stored_and_answered(stream, listening):
    client = await stream()

    await send_audio(client, silence(500) + speech_pcm(SENTENCE) + silence(1000), real_time=True)
    heard = await events_until(client, "transcript_final")
    reply = await events_until(client, "agent_response")

    types = [event["type"] for event in heard]
    assert types[0] == "speech_started"
    assert types.index("speech_stopped") < types.index("transcript_final")
    assert "transcript_partial" in types
    started = heard[0]
    assert 400 <= started["offset_ms"] <= 700, (
        "onset is where the speech begins, not where confirmed"
    )
    final = heard[-1]
    assert ROBUST_WORDS & words(final["text"]), final["text"]
    assert reply[-1]["delta"]  # the agent answers the recognised words

    stored = await Utterance.objects.aget(session_id=client.session.id, role="user")
    assert stored.text == final["text"]
    assert stored.start_ms == started["offset_ms"]
    stopped = next(event for event in heard if event["type"] == "speech_stopped")
    assert stored.end_ms == stopped["offset_ms"]
    assert stored.confidence is not None and 0 <= stored.confidence <= 1


async def test_silence_and_noise_start_nothing(stream, listening):
    client = await stream()
    await send_audio(client, silence(600) + noise("brown", 1500) + silence(800))
    assert await client.communicator.receive_nothing(timeout=1.0)


@pytest.mark.parametrize("sample_rate", [8000, 24000, 48000])
async def test_other_sample_rates_are_resampled(stream, listening, sample_rate):
    client = await stream()
    await client.send(type="config", sample_rate=sample_rate)

    pcm = silence(400, sample_rate) + speech_pcm(SENTENCE, sample_rate) + silence(1000, sample_rate)
    await send_audio(client, pcm, sample_rate)
    heard = await events_until(client, "transcript_final")

    assert heard[0]["type"] == "speech_started"
    assert heard[-1]["text"]


async def test_frames_of_any_size_up_to_a_second(stream, listening):
    client = await stream()
    pcm = silence(300) + speech_pcm(SENTENCE) + silence(1000)
    for start in range(0, len(pcm), 32000):  # 1 s frames, the largest allowed
        await client.send_raw(data=pcm[start : start + 32000])
    heard = await events_until(client, "transcript_final")
    assert ROBUST_WORDS & words(heard[-1]["text"])


async def test_voice_without_recognizer_still_detects_speech(stream, settings):
    settings.STT_ENGINE = "none"
    client = await stream()
    await send_audio(client, silence(300) + speech_pcm("stop please") + silence(1000))
    heard = await events_until(client, "speech_stopped")
    assert [event["type"] for event in heard] == ["speech_started", "speech_stopped"]
    assert await client.communicator.receive_nothing(timeout=0.3)


async def test_a_recognizer_failure_is_reported_and_listening_goes_on(
    stream, listening, monkeypatch
):
    from agents_app.speech.stt.whisper import WhisperRecognizer

    real_finish = WhisperRecognizer.finish_utterance
    calls = []

    async def fail_once(self):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("decoder exploded")
        return await real_finish(self)

    monkeypatch.setattr(WhisperRecognizer, "finish_utterance", fail_once)
    client = await stream()

    await send_audio(client, silence(300) + speech_pcm(SENTENCE) + silence(1000))
    failed = await events_until(client, "error")
    assert failed[-1]["code"] == "stt_unavailable" and failed[-1]["source"] == "stt"

    await send_audio(client, speech_pcm(SENTENCE) + silence(1000))
    heard = await events_until(client, "transcript_final")
    assert ROBUST_WORDS & words(heard[-1]["text"])


async def test_asking_the_rules_agent_for_the_balance_by_voice_with_the_default_engines(
    stream, settings
):
    import voiceproject.settings as defaults

    for name in ("STT_ENGINE", "TTS_ENGINE", "VAD_ENGINE", "TURN_MODEL", "VAD_HANGOVER_MS"):
        setattr(settings, name, getattr(defaults, name))
    client = await stream(agent="rules")

    await send_audio(client, silence(300) + speech_pcm("what's my balance") + silence(1000))
    heard = await events_until(client, "transcript_final", timeout=30)
    turn = []
    while not turn or turn[-1]["type"] != "playback_completed":
        message = await client.receive_any(timeout=30)
        if isinstance(message, dict):
            turn.append(message)

    assert "balance" in words(heard[-1]["text"]), heard[-1]["text"]
    reply = next(event for event in turn if event["type"] == "agent_response" and event["final"])
    assert "Your balance is" in reply["text"]
    assert client.audio, "the reply was spoken"
