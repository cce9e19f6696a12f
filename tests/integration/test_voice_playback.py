"""Agent speech: replies are spoken in paced frames, and every barge-in trigger silences them.

The `silent` engine speaks silence at a fixed 300 ms a word, so timings are known; espeak
proves the frames carry the real synthesised audio, and piper that its 22.05 kHz voice plays.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest

from agents_app.models import Task
from agents_app.speech.audio import resample
from agents_app.speech.stt.jobs import Priority
from agents_app.speech.stt.whisper import shared_engine
from agents_app.speech.tts.espeak import synthesize_blocking
from sessions_app.models import Session, Utterance
from tests.conftest import latest_task
from tests.speech import frames, speech_pcm
from tests.unit.test_turn_metrics import assert_in_order

pytestmark = pytest.mark.django_db(transaction=True)

FRAME_BYTES = 640  # 20 ms at 16 kHz
LONG_SAY = "please tell me a very long story about the sea and the ships"
REPLY = f"You said: {LONG_SAY}"


@pytest.fixture
def silent_voice(settings):
    settings.TTS_ENGINE = "silent"


def envelope(samples: np.ndarray) -> np.ndarray:
    """Loudness per 20 ms frame, over the first second."""
    frames_ = samples[: 320 * 50].reshape(-1, 320)
    return np.sqrt((frames_**2).mean(axis=1))


async def collect_until(client, event_type: str, timeout: float = 10) -> list[Any]:
    """Events and audio frames, in arrival order, up to the first event of `event_type`."""
    seen = []
    while True:
        item = await client.receive_any(timeout)
        seen.append(item)
        if isinstance(item, dict) and item["type"] == event_type:
            return seen


async def start_speaking(client, text: str = LONG_SAY, frames_heard: int = 10) -> None:
    """Say `text`, then wait until the agent's reply has been playing for a few frames."""
    await client.send(type="text", text=text, final=True)
    await collect_until(client, "playback_started")
    received = 0
    while received < frames_heard:
        if isinstance(await client.receive_any(), bytes):
            received += 1


async def assert_cut(client, barge_in: dict, source: str, metrics: dict | None = None) -> None:
    """The barge-in reports what was heard, the turn's metrics follow it (`metrics`, if the
    test read them already), and no audio frame."""
    assert barge_in["type"] == "barge_in" and barge_in["source"] == source
    assert 0 < barge_in["played_ms"] < 300 * len(REPLY.split())
    assert barge_in["heard_text"] and REPLY.startswith(barge_in["heard_text"])
    assert len(barge_in["heard_text"]) < len(REPLY)
    metrics = metrics or await client.receive_turn_metrics()
    assert_in_order(metrics)
    assert metrics["cut_by"] == source and metrics["barge_ins"][-1]["outcome"] == "confirmed"
    assert {"first_frame", "first_audio"} <= set(metrics["marks"])
    assert await client.communicator.receive_nothing(timeout=0.3), "audio after barge_in"
    agent = await Utterance.objects.aget(session_id=client.session.id, role="agent")
    assert (agent.interrupted, agent.heard_text) == (True, barge_in["heard_text"])
    assert agent.interrupted_by == source
    assert agent.text == REPLY


def assert_played_whole(seen: list[Any], reply: str, rate_wpm: int) -> None:
    """The frames up to `playback_completed` are espeak's `reply`, whole and in order, and
    `played_ms` says all of it was played."""
    audio = [item for item in seen if isinstance(item, bytes)]
    assert all(len(frame) == FRAME_BYTES for frame in audio[:-1])
    clip = synthesize_blocking(reply, voice="en-us", rate_wpm=rate_wpm)
    expected = resample(clip.pcm, clip.sample_rate, 16000)
    # espeak's output can drift by a sample between runs: compare length and loudness envelope.
    spoken = np.frombuffer(b"".join(audio), dtype=np.int16).astype(float)
    reference = np.frombuffer(expected, dtype=np.int16).astype(float)
    assert abs(len(spoken) - len(reference)) <= 320
    assert np.corrcoef(envelope(spoken), envelope(reference))[0, 1] > 0.95
    started = next(
        item for item in seen if isinstance(item, dict) and item["type"] == "playback_started"
    )
    completed = seen[-1]
    assert started["sample_rate"] == 16000
    assert completed["type"] == "playback_completed"
    assert completed["played_ms"] == round(len(spoken) / 16)


async def test_reply_is_spoken_in_frames_matching_the_synthesised_audio(stream, settings):
    settings.TTS_ENGINE = "espeak"
    client = await stream()

    await client.send(type="text", text="hello there", final=True)
    seen = await collect_until(client, "playback_completed")

    types = [item["type"] if isinstance(item, dict) else "audio" for item in seen]
    first_audio = types.index("audio")
    assert types[first_audio - 1] == "playback_started" or "playback_started" in types[:first_audio]
    assert types.index("transcript_final") < types.index("playback_started") < first_audio
    assert "audio" not in types[types.index("playback_completed") :]
    assert_played_whole(seen, "You said: hello there", settings.TTS_RATE_WPM)
    agent = await Utterance.objects.aget(session_id=client.session.id, role="agent")
    assert (agent.text, agent.interrupted) == ("You said: hello there", False)


async def test_a_reply_plays_whole_while_recognition_is_saturated(stream, settings):
    """Every recognition thread is stuck in a decode and the decode queue is full, while the
    caller's microphone streams: the reply's audio never waits on recognition, so it plays
    whole and in order, and `played_ms` says so."""
    settings.TTS_ENGINE = "espeak"
    settings.STT_ENGINE = "whisper"
    settings.STT_WORKERS, settings.STT_QUEUE_LIMIT = 2, 4
    pool = shared_engine().pool
    release, decoding = threading.Event(), threading.Semaphore(0)

    def decode_forever() -> None:
        decoding.release()
        release.wait()

    async def microphone() -> None:  # an open microphone: silence, in real time
        while True:
            await client.send_raw(data=bytes(FRAME_BYTES))
            await asyncio.sleep(0.02)

    stuck = [pool.submit(Priority.FINAL, decode_forever) for _ in range(2)]
    listening = None
    try:
        for _ in stuck:  # both threads are decoding: the four next wait in the queue
            assert await asyncio.to_thread(decoding.acquire, timeout=10)
        stuck += [pool.submit(Priority.FINAL, decode_forever) for _ in range(4)]
        client = await stream()
        listening = asyncio.create_task(microphone())
        await client.send(type="text", text="hello there", final=True)
        seen = await collect_until(client, "playback_completed")
    finally:
        if listening is not None:
            listening.cancel()
        release.set()
        await asyncio.gather(*stuck)
    assert not any(isinstance(item, dict) and item["type"] == "error" for item in seen)
    assert_played_whole(seen, "You said: hello there", settings.TTS_RATE_WPM)


async def test_piper_speech_is_played_at_the_session_rate_and_cut_at_a_word(stream, settings):
    settings.TTS_ENGINE = "piper"
    client = await stream()
    await start_speaking(client)

    await client.send(type="interrupt")

    # Frames sent before the interrupt was read may still arrive first.
    await assert_cut(client, (await collect_until(client, "barge_in"))[-1], "interrupt")
    started = next(e for e in client.events if e["type"] == "playback_started")
    assert started["sample_rate"] == 16000
    spoken = np.frombuffer(b"".join(client.audio), dtype=np.int16).astype(float)
    assert np.sqrt((spoken**2).mean()) > 300  # a voice, not silence


async def test_first_sentence_plays_before_the_reply_is_complete(stream, gated_agent, silent_voice):
    client = await stream(agent="gated")
    await client.send(type="text", text="go on", final=True)

    # The gated agent stalls after its first sentence; that sentence is already playing.
    seen = await collect_until(client, "playback_started")
    assert not any(
        isinstance(e, dict) and e["type"] == "agent_response" and e["final"] for e in seen
    )
    assert isinstance(await client.receive_any(), bytes)


async def test_interrupt_event_stops_playback(stream, silent_voice):
    client = await stream()
    await start_speaking(client)
    await client.send(type="interrupt")
    # Frames sent before the interrupt was read may still arrive first.
    await assert_cut(client, (await collect_until(client, "barge_in"))[-1], "interrupt")


async def test_non_final_text_stops_playback(stream, silent_voice):
    client = await stream()
    await start_speaking(client)
    await client.send(type="text", text="wait", final=False)
    barge_in = (await collect_until(client, "barge_in"))[-1]
    metrics = await client.receive_turn_metrics()
    assert (await client.receive())["type"] == "transcript_partial"
    await assert_cut(client, barge_in, "text", metrics)


async def test_operator_endpoint_stops_playback(stream, silent_voice, operator_client):
    client = await stream()
    await start_speaking(client)
    response = await operator_client.post(f"/api/sessions/{client.session.id}/interrupt")
    assert response.status_code == 202
    # Frames keep coming until the cancel reaches the session through the channel layer.
    await assert_cut(client, (await collect_until(client, "barge_in"))[-1], "operator")


async def test_caller_speech_stops_playback(stream, silent_voice):
    client = await stream()
    await start_speaking(client)

    for frame in frames(speech_pcm("stop, stop, please stop")):
        await client.send_raw(data=frame)
    seen = await collect_until(client, "barge_in")

    started = [e for e in seen if isinstance(e, dict) and e["type"] == "speech_started"]
    assert len(started) == 1
    await assert_cut(client, seen[-1], "speech")


async def test_next_turn_context_holds_only_what_was_heard(stream, silent_voice):
    client = await stream()
    await start_speaking(client)
    await client.send(type="interrupt")
    heard = (await collect_until(client, "barge_in"))[-1]["heard_text"]

    await client.send(type="text", text="and then", final=True)
    await collect_until(client, "playback_completed")

    task = await latest_task(client.session.id)
    assert task.input["messages"] == [
        {"role": "user", "content": LONG_SAY},
        {"role": "assistant", "content": heard},
        {"role": "user", "content": "and then"},
    ]
    session = await Session.objects.aget(pk=client.session.id)
    # Two agent turns, one cut by the barge-in: its reply was generated whole, but the
    # caller did not let it play, so its Task was cancelled, not succeeded.
    counters = (session.barge_in_count, session.turn_count, session.interrupted_turn_count)
    assert counters == (1, 2, 1)
    tasks = [t async for t in Task.objects.filter(session=session).order_by("created_at")]
    assert [t.status for t in tasks] == ["cancelled", "succeeded"]
    assert tasks[0].error == "interrupted by interrupt"
