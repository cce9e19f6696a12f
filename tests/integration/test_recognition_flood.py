"""Recognition saturated by other sessions never holds up a barge-in.

Many sessions' finals wait behind a slow recognizer in the process's shared pool (the pool
refuses the ones it has no room for, with `stt_overloaded`); meanwhile another session talks
over its agent's reply. Voice detection, turn-taking and playback do not wait for recognition,
so that session's reply pauses at once, is cut, and plays no frame after the pause. Everything
is counted from events, never timed.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from agents_app.speech.stt import whisper
from agents_app.speech.stt.base import Transcript
from agents_app.speech.stt.jobs import Priority
from agents_app.speech.stt.whisper import DecoderOptions, WhisperEngine
from tests.integration.test_turn_taking_voice import (
    WAIT_S,
    Caller,
    kinds,
    of_type,
    read_until,
    reply_playing,
)
from tests.speech import speech_pcm

pytestmark = pytest.mark.django_db(transaction=True)

FLOOD = 5  # sessions whose finals arrive at once
QUEUE = 3  # room in the pool behind the decode it holds: FLOOD - QUEUE finals are refused
# Longer without a pause than a backchannel may be (BACKCHANNEL_MAX_MS + VAD_PAUSE_MS): the
# reply is cut by how long the caller talks, without waiting for their words.
TALK_OVER = "no no listen to me I want to talk to somebody about my account right now"
# Short: its words would decide, but the full pool refuses its final, and that cuts the reply.
STOP = "stop"


class HeldDecoder:
    """A recognizer that takes as long as the test wants: every decode waits for `release`."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.busy = threading.Event()

    def transcribe(self, pcm: bytes) -> Transcript:
        self.busy.set()
        self.release.wait(WAIT_S)
        return Transcript(text="check my balance", confidence=0.9)


@pytest.fixture
def held_recognition(settings, monkeypatch):
    settings.STT_ENGINE = "whisper"
    settings.TTS_ENGINE = "silent"
    settings.STT_SPECULATIVE_FINAL = False  # finals only: the flood is what fills the pool
    settings.STT_PARTIAL_INTERVAL_MS = 60_000
    decoder = HeldDecoder()
    engine = WhisperEngine(
        "held", workers=1, max_queued=QUEUE, options=DecoderOptions(), decoder=decoder
    )
    monkeypatch.setattr(whisper, "shared_engine", lambda: engine)
    yield engine, decoder
    decoder.release.set()


@pytest.mark.parametrize("talk_over", [TALK_OVER, STOP], ids=["long", "short"])
async def test_a_flood_of_finals_never_delays_another_sessions_barge_in(
    stream, held_recognition, talk_over
):
    engine, decoder = held_recognition
    held = engine.submit(Priority.FINAL, speech_pcm("yes"))  # decoding, for as long as we like
    assert await asyncio.to_thread(decoder.busy.wait, WAIT_S)
    flooding = [await stream() for _ in range(FLOOD)]
    callers = [Caller(client) for client in flooding]
    for caller in callers:
        caller.say(speech_pcm("check my balance"))
    outcomes: dict[object, dict] = {}  # each flooding session: its final, or its refusal
    for client, caller in zip(flooding, callers, strict=True):
        await read_until(client, of_type("speech_stopped"))
        await caller.close()  # said and done: its final is decoding, waiting, or refused
    while engine.pool.queued() + len(outcomes) < FLOOD:
        for client in flooding:
            if client not in outcomes and not client.communicator.output_queue.empty():
                outcomes[client] = await client.receive(WAIT_S)  # only a refusal comes now
        await asyncio.sleep(0.05)
    assert engine.pool.queued() == QUEUE, "recognition is saturated: the pool is full of finals"

    talker = await stream()
    caller = await reply_playing(talker)
    caller.say(speech_pcm(talk_over))
    seen = await read_until(talker, of_type("barge_in"))

    names = kinds(seen)
    assert "playback_paused" in names
    assert names[names.index("playback_paused") :].count("audio") == 0, "no frame after pause"
    assert seen[-1]["source"] == "speech"
    assert engine.pool.queued() == QUEUE, "the barge-in came while every final still waited"
    if talk_over == STOP:
        assert (await talker.receive_turn_metrics(WAIT_S))["cut_by"] == "speech"  # the cut turn's
        refusal = await talker.receive(WAIT_S)
        assert (refusal["type"], refusal["code"]) == ("error", "stt_overloaded")

    decoder.release.set()
    for client in flooding:
        if client not in outcomes:
            done = await read_until(client, lambda e: e["type"] in ("transcript_final", "error"))
            outcomes[client] = done[-1]
    await caller.close()
    await held
    refused = [e for e in outcomes.values() if e["type"] == "error"]
    heard = [e for e in outcomes.values() if e["type"] == "transcript_final"]
    assert len(refused) + len(heard) == FLOOD, "no utterance is lost silently"
    assert len(refused) == FLOOD - QUEUE, "the finals the pool had no room for were refused"
    assert all(e["code"] == "stt_overloaded" and e["retryable"] for e in refused), refused
    assert all(e["text"] == "check my balance" for e in heard)
