"""Turn-taking over a real WebSocket with real audio: the reply pauses at the caller's first
sound, resumes on a false alarm or an acknowledgement, is cut by anything else; the caller's
turn ends by the end-of-turn model, waits through a pause, and may be continued.

The agent speaks with the `silent` engine (300 ms a word, silence), so which words a played
time covers is known; the caller's audio is espeak speech streamed at real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Any

import pytest
from prometheus_client import REGISTRY

from sessions_app.models import Utterance
from tests.speech import frames, silence, speech_pcm, vocal_burst
from tests.unit.test_stt_engines import words
from tests.unit.test_turn_metrics import assert_in_order


def barge_ins(outcome: str) -> float:
    """voice_barge_ins_total{outcome} in this process's registry."""
    return REGISTRY.get_sample_value("voice_barge_ins_total", {"outcome": outcome}) or 0.0


pytestmark = pytest.mark.django_db(transaction=True)

SAY = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
REPLY = f"You said: {SAY}"  # the echo agent's answer, 16 words: 4.8 s of silent speech
MS_PER_WORD = 300
WAIT_S = 30


@pytest.fixture
def voices(settings):
    settings.STT_ENGINE = "whisper"
    settings.TTS_ENGINE = "silent"


class Caller:
    """Streams 20 ms frames at real time in its own task: queued audio first, else silence,
    while the test reads what the server sends."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._queue: list[bytes] = []
        self._task = asyncio.create_task(self._run())

    def say(self, pcm: bytes) -> None:
        self._queue.extend(frames(pcm))

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start, sent = loop.time(), 0
        while True:
            frame = self._queue.pop(0) if self._queue else silence(20)
            await self.client.send_raw(data=frame)
            sent += 1
            await asyncio.sleep(max(0.0, start + sent * 0.02 - loop.time()))


async def read_until(client: Any, done: Any, timeout: float = WAIT_S) -> list[Any]:
    """Events and audio frames in arrival order, until `done(item)` holds for one."""
    seen: list[Any] = []
    while True:
        item = await client.receive_any(timeout)
        seen.append(item)
        if isinstance(item, dict) and done(item):
            return seen


def of_type(kind: str):
    return lambda item: item["type"] == kind


def kinds(seen: list[Any]) -> list[str]:
    return ["audio" if isinstance(item, bytes) else item["type"] for item in seen]


def between(seen: list[Any], first: str, last: str) -> list[str]:
    names = kinds(seen)
    start = names.index(first)
    return names[start + 1 : names.index(last, start)]


async def reply_playing(client: Any, frames_heard: int = 25) -> Caller:
    """Ask for the long reply, wait until it has played a while, and start the microphone."""
    await client.send(type="text", text=SAY, final=True)
    await read_until(client, of_type("playback_started"))
    caller = Caller(client)
    heard = 0
    while heard < frames_heard:
        if isinstance(await client.receive_any(WAIT_S), bytes):
            heard += 1
    return caller


async def agent_utterance(client: Any) -> Utterance:
    return await Utterance.objects.aget(session_id=client.session.id, role="agent")


async def test_a_vocal_burst_pauses_the_reply_which_then_completes_whole(stream, voices):
    client = await stream()
    caller = await reply_playing(client)
    resumed = barge_ins("resumed")

    caller.say(vocal_burst())
    seen = await read_until(client, of_type("playback_completed"))
    await caller.close()

    assert barge_ins("resumed") > resumed
    assert "playback_paused" in kinds(seen) and "playback_resumed" in kinds(seen)
    assert between(seen, "playback_paused", "playback_resumed") == [], "no frame while paused"
    assert "barge_in" not in kinds(seen)
    stored = await agent_utterance(client)
    assert stored.text == REPLY and not stored.interrupted
    # Played time counts what could be heard: the whole reply, and the part of the cut word
    # heard again after the resume, never the paused gap.
    whole = len(REPLY.split()) * MS_PER_WORD
    assert whole - 40 <= seen[-1]["played_ms"] <= whole + MS_PER_WORD + 40
    # A false alarm: paused at the burst's onset, resumed, and the reply played to its end.
    metrics = (await read_until(client, of_type("turn_metrics")))[-1]["metrics"]
    assert_in_order(metrics)
    assert metrics["cut_by"] == "" and "playback_end" in metrics["marks"]
    assert {"resumed"} == {barge_in["outcome"] for barge_in in metrics["barge_ins"]}
    assert all("resume" in barge_in["marks"] for barge_in in metrics["barge_ins"])
    assert stored.turn_metrics == metrics


async def test_okay_over_the_reply_is_stored_as_a_backchannel_and_the_reply_goes_on(stream, voices):
    client = await stream()
    caller = await reply_playing(client)
    backchannels = barge_ins("backchannel")

    caller.say(speech_pcm("okay"))
    seen = await read_until(client, of_type("playback_completed"))
    await caller.close()

    assert barge_ins("backchannel") == backchannels + 1
    names = kinds(seen)
    # The reply resumes first; the acknowledgement is stored and shown right after.
    assert names.index("playback_paused") < names.index("playback_resumed")
    assert names.index("playback_resumed") < names.index("transcript_final")
    final = next(
        item for item in seen if isinstance(item, dict) and item["type"] == "transcript_final"
    )
    assert final["backchannel"] is True
    assert final["end_of_turn"]["reason"] == "interjection"
    assert "barge_in" not in names
    assert between(seen, "playback_paused", "playback_resumed").count("audio") == 0
    stored = await agent_utterance(client)
    assert stored.text == REPLY and not stored.interrupted
    said = await Utterance.objects.aget(session_id=client.session.id, role="user", backchannel=True)
    assert "okay" in words(said.text)
    metrics = (await read_until(client, of_type("turn_metrics")))[-1]["metrics"]
    assert_in_order(metrics)
    assert metrics["barge_ins"][-1]["outcome"] == "backchannel"
    assert {"pause", "decision", "silenced"} <= set(metrics["barge_ins"][-1]["stages"])


async def test_stop_over_the_reply_cuts_it_and_is_answered(stream, voices):
    client = await stream()
    caller = await reply_playing(client)
    confirmed = barge_ins("confirmed")

    caller.say(speech_pcm("stop"))
    seen = await read_until(client, of_type("barge_in"))
    cut = (await read_until(client, of_type("turn_metrics")))[-1]
    after = await read_until(
        client, lambda item: item["type"] == "agent_response" and item["final"]
    )
    answered = (await read_until(client, of_type("turn_metrics")))[-1]
    await caller.close()

    # The cut turn: paused at the onset of "stop", confirmed, stopped.
    assert cut["turn"] == seen[-1]["turn"]
    assert_in_order(cut["metrics"])
    (barge_in,) = [b for b in cut["metrics"]["barge_ins"] if b["outcome"] == "confirmed"]
    assert barge_in["source"] == "speech"
    assert set(barge_in["marks"]) == {"onset", "pause", "confirm", "stop"}
    # The spoken turn that answered it: every stage from the last voiced frame to playback.
    assert answered["turn"] == cut["turn"] + 1
    assert_in_order(answered["metrics"])
    assert set(answered["metrics"]["stages"]) == {
        "end_of_turn",
        "recognition",
        "agent",
        "generation",
        "synthesis",
        "send",
        "speaking",
        "response",
    }
    # Ended at its first pause (an interjection), or, once a partial had cut the reply, as
    # any turn is.
    assert answered["metrics"]["end_of_turn"]["reason"] in ("interjection", "words", "silence")

    names = kinds(seen)
    assert names.index("playback_paused") < names.index("barge_in")
    assert between(seen, "playback_paused", "barge_in").count("audio") == 0
    assert seen[-1]["source"] == "speech"
    final = next(
        item for item in after if isinstance(item, dict) and item["type"] == "transcript_final"
    )
    assert "stop" in words(final["text"]) and final["backchannel"] is False
    assert barge_ins("confirmed") == confirmed + 1
    stored = await Utterance.objects.aget(pk=cut["utterance_id"])  # the answer is stored too
    assert stored.interrupted and stored.interrupted_by == "speech"
    assert stored.turn_metrics == cut["metrics"]
    assert REPLY.startswith(stored.heard_text)


def timeline_position(played: list[dict]) -> float:
    """Where in the reply's audio the caller was when it was cut: each run of frames advances
    it by the time played, and each pause rewinds it to the start of the word it cut."""
    position = run_start = played_before = 0.0
    for event in played:
        if event["played_ms"] > played_before:  # a run of frames since the last pause
            position = run_start + event["played_ms"] - played_before
        if event["type"] == "playback_paused":
            run_start = position - position % MS_PER_WORD
            played_before = event["played_ms"]
    return position


async def test_heard_text_through_pauses_and_a_barge_in_is_what_was_played(stream, voices):
    client = await stream()
    caller = await reply_playing(client, frames_heard=40)

    caller.say(vocal_burst())
    await read_until(client, of_type("playback_resumed"))
    for _ in range(30):  # some more of the reply plays
        await client.receive_any(WAIT_S)
    caller.say(speech_pcm("stop"))
    cut = (await read_until(client, of_type("barge_in")))[-1]
    await caller.close()

    playback = [e for e in client.events if e["type"] in ("playback_paused", "barge_in")]
    position = timeline_position(playback)
    expected = {math.ceil((position + delta) / MS_PER_WORD) for delta in (-2, 2)}
    heard = cut["heard_text"]
    assert REPLY.startswith(heard)
    assert len(heard.split()) in expected, (heard, playback)
    stored = await agent_utterance(client)
    assert stored.heard_text == heard


async def test_a_complete_question_ends_the_turn_by_the_model_not_the_silence(stream, settings):
    settings.STT_ENGINE = "whisper"
    settings.TURN_MODEL = "smart_turn"
    settings.VAD_HANGOVER_MS = 1500
    client = await stream()
    caller = Caller(client)

    caller.say(speech_pcm("what's my balance"))
    seen = await read_until(client, of_type("transcript_final"))
    await caller.close()

    final = seen[-1]
    assert final["end_of_turn"]["reason"] in ("model", "words")
    assert final["end_of_turn"]["silence_ms"] < 1500
    stopped = next(
        item for item in seen if isinstance(item, dict) and item["type"] == "speech_stopped"
    )
    assert stopped["duration_ms"] > 0


async def test_a_pause_mid_sentence_does_not_cut_the_caller_off(stream, settings):
    settings.STT_ENGINE = "whisper"
    settings.TURN_MODEL = "smart_turn"
    settings.VAD_HANGOVER_MS = 1500
    client = await stream()
    caller = Caller(client)

    caller.say(
        speech_pcm("I would like to check my") + silence(700) + speech_pcm("account balance")
    )
    seen = await read_until(client, of_type("transcript_final"))
    await caller.close()

    text = words(seen[-1]["text"])
    assert {"check", "balance"} <= text, seen[-1]["text"]
    assert kinds(seen).count("transcript_final") == 1


async def test_a_turn_ended_on_a_hanging_word_is_continued_and_answered_once(stream, settings):
    settings.STT_ENGINE = "whisper"
    settings.TURN_MODEL = "smart_turn"
    settings.VAD_HANGOVER_MS = 1500
    client = await stream()
    caller = Caller(client)

    first, second = "can you send the statement to", "my new address please"
    caller.say(speech_pcm(first) + silence(700) + speech_pcm(second))
    seen = await read_until(client, lambda item: item["type"] == "agent_response" and item["final"])
    await caller.close()

    finals = [
        item for item in seen if isinstance(item, dict) and item["type"] == "transcript_final"
    ]
    assert len({final["utterance_id"] for final in finals}) == 1, "one utterance, however shown"
    assert {"statement", "address"} <= words(finals[-1]["text"]), finals[-1]["text"]
    reply = seen[-1]
    assert reply["turn"] == 1 and "address" in words(reply["text"])
    stored = await Utterance.objects.aget(session_id=client.session.id, role="user")
    assert stored.text == finals[-1]["text"]
