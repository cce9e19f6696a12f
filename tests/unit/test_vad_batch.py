"""Silero batched across streams: the same decisions as each stream alone, no state shared
between streams, a batch that waits for more windows only while many streams speak, and a model
file that cannot load refused clearly."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from agents_app.errors import ProviderRejected
from agents_app.speech import silero
from agents_app.speech.model_files import ModelFileError
from agents_app.speech.silero import RATE_PERIOD_S, WINDOW_S, Gathering, SileroBatcher
from sessions_app.vad import SileroVad, SpeechDetector, SpeechEvent, build_vad
from tests.speech import noise, silence, speech_pcm
from tests.unit.test_vad import HANGOVER_MS, MIN_SPEECH_MS, SECOND_SENTENCE, SENTENCE

FRAME_BYTES = 512 * 2


def stream_clip(n: int) -> bytes:
    """Stream `n`'s audio: speech at an offset of its own (never a whole number of frames)."""
    first, second = (SENTENCE, SECOND_SENTENCE) if n % 2 else (SECOND_SENTENCE, SENTENCE)
    return (
        silence(37 * n + 11)
        + speech_pcm(first)
        + silence(HANGOVER_MS + 400 + 100 * n)
        + speech_pcm(second)
        + silence(900)
    )


async def detect(engine: str, batcher: SileroBatcher, pcm: bytes) -> list[SpeechEvent]:
    """Every event for `pcm` fed in 20 ms chunks, as the recognition worker does."""
    detector = SpeechDetector(
        build_vad(engine, batcher),
        threshold=0.5,
        min_speech_ms=MIN_SPEECH_MS,
        hangover_ms=HANGOVER_MS,
    )
    events: list[SpeechEvent] = []
    for start in range(0, len(pcm), 640):
        events += await detector.process(pcm[start : start + 640])
    return events + detector.flush()


async def scores(vad: SileroVad, pcm: bytes) -> list[float]:
    return [
        await vad.speech_probability(pcm[i : i + FRAME_BYTES])
        for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)
    ]


@pytest.mark.parametrize("engine", ["silero", "hybrid"])
async def test_streams_scored_together_decide_as_each_stream_alone(engine, batcher):
    clips = [stream_clip(n) for n in range(12)]
    alone = [await detect(engine, batcher, clip) for clip in clips]
    assert batcher.largest_batch == 1
    batches, windows = batcher.batches, batcher.windows
    together = await asyncio.gather(*(detect(engine, batcher, clip) for clip in clips))
    assert batcher.windows - windows == windows  # the same windows, scored again
    assert batcher.batches - batches < windows / 2, "the streams were mostly scored alone"
    assert together == alone
    for events in alone:
        assert len(events) == 4  # two utterances each: the comparison is not of empty lists


async def test_a_silent_streams_scores_are_its_own_while_another_speaks(batcher):
    quiet = noise("white", 4000, dbfs=-45)  # not zeros: what Silero makes of it hangs on state
    speech = silence(300) + speech_pcm(SENTENCE) + silence(800)
    quiet_alone = await scores(SileroVad(batcher), quiet)
    speech_alone = await scores(SileroVad(batcher), speech)

    quiet_with, speech_with = await asyncio.gather(
        scores(SileroVad(batcher), quiet), scores(SileroVad(batcher), speech)
    )

    assert batcher.largest_batch == 2
    np.testing.assert_allclose(quiet_with, quiet_alone, atol=1e-5)
    np.testing.assert_allclose(speech_with, speech_alone, atol=1e-5)
    # A leak would show: the quiet line scored on from the speaking stream's state differs.
    leaked = SileroVad(batcher)
    await scores(leaked, speech)
    assert np.abs(np.array(await scores(leaked, quiet)) - quiet_alone).max() > 1e-3


async def test_a_reset_clears_only_that_streams_state(batcher):
    speech = speech_pcm(SENTENCE)
    half = len(speech) // 2 // FRAME_BYTES * FRAME_BYTES
    fresh = await scores(SileroVad(batcher), speech[half:])
    going_on = await scores(SileroVad(batcher), speech)

    reset, kept = SileroVad(batcher), SileroVad(batcher)
    first_half = await asyncio.gather(scores(reset, speech[:half]), scores(kept, speech[:half]))
    assert first_half[0] == first_half[1]
    reset.reset()
    after_reset, after_kept = await asyncio.gather(
        scores(reset, speech[half:]), scores(kept, speech[half:])
    )
    np.testing.assert_allclose(after_reset, fresh, atol=1e-5)
    np.testing.assert_allclose(first_half[1] + after_kept, going_on, atol=1e-5)
    assert np.abs(np.array(after_reset) - after_kept).max() > 1e-3


async def test_a_reset_while_a_frame_is_scored_is_not_undone_by_its_answer(batcher):
    speech = speech_pcm(SENTENCE)
    frames = [speech[i : i + FRAME_BYTES] for i in range(0, 20 * FRAME_BYTES, FRAME_BYTES)]
    vad = SileroVad(batcher)
    for frame in frames[:10]:
        await vad.speech_probability(frame)
    in_flight = asyncio.create_task(vad.speech_probability(frames[10]))
    await asyncio.sleep(0)  # submitted
    vad.reset()
    await in_flight
    after = [await vad.speech_probability(frame) for frame in frames[11:]]
    assert after == await scores(SileroVad(batcher), b"".join(frames[11:]))


async def test_a_stream_scores_one_frame_at_a_time(batcher):
    vad = SileroVad(batcher)
    frame = speech_pcm(SENTENCE)[:FRAME_BYTES]
    first = asyncio.create_task(vad.speech_probability(frame))
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="one frame at a time"):
        await vad.speech_probability(frame)
    assert 0.0 <= await first <= 1.0


async def test_a_model_file_that_does_not_verify_is_refused(monkeypatch):
    def tampered() -> bytes:
        raise ModelFileError("the Silero VAD model at x has sha256 0000…")

    monkeypatch.setattr(silero, "load_model_bytes", tampered)
    batcher = SileroBatcher()
    try:
        with pytest.raises(ProviderRejected, match="sha256") as refused:
            await SileroVad(batcher).speech_probability(silence(32))
        assert refused.value.code == "stt_rejected"
    finally:
        batcher.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def score_batches(gathering: Gathering, clock: FakeClock, streams: int, seconds: float) -> None:
    """`streams` streams speaking for `seconds`: a batch of all their windows every 32 ms."""
    for _ in range(round(seconds / WINDOW_S)):
        clock.now += WINDOW_S
        gathering.scored(streams)


def test_a_batch_waits_for_more_windows_only_while_many_streams_speak():
    clock = FakeClock()
    gathering = Gathering(wait_s=0.004, busy_streams=16, clock=clock)
    assert gathering.wait_s() == 0.0  # nothing heard yet
    score_batches(gathering, clock, streams=15, seconds=1.0)
    assert gathering.wait_s() == 0.0
    score_batches(gathering, clock, streams=40, seconds=2 * RATE_PERIOD_S)
    assert gathering.wait_s() == 0.004
    score_batches(gathering, clock, streams=3, seconds=2 * RATE_PERIOD_S)
    assert gathering.wait_s() == 0.0  # most of them stopped


def test_a_lone_window_after_a_busy_spell_does_not_wait():
    """The estimate is of the last spell: after a pause in which nothing was scored, the first
    window (a caller barging in on a quiet server) is scored at once."""
    clock = FakeClock()
    gathering = Gathering(wait_s=0.004, busy_streams=16, clock=clock)
    score_batches(gathering, clock, streams=40, seconds=1.0)
    assert gathering.wait_s() == 0.004
    clock.now += 3 * RATE_PERIOD_S
    assert gathering.wait_s() == 0.0
    gathering.scored(1)  # that window: one in the whole spell since, so still quiet
    assert gathering.wait_s() == 0.0


class AlwaysGather(Gathering):
    def wait_s(self) -> float:
        return 0.5


async def test_windows_that_arrive_apart_in_a_gather_are_scored_together_each_its_own(
    model, batcher
):
    """Two streams' windows 50 ms apart (a batch alone takes a few ms) make one batch while the
    batcher gathers, and each stream still gets its own answer."""
    speech = speech_pcm(SENTENCE)
    first, second = speech[16000 : 16000 + FRAME_BYTES], noise("pink", 32)
    alone = [
        await SileroVad(batcher).speech_probability(first),
        await SileroVad(batcher).speech_probability(second),
    ]
    gathering = SileroBatcher(model, AlwaysGather())
    try:
        early = asyncio.create_task(SileroVad(gathering).speech_probability(first))
        await asyncio.sleep(0.05)
        late = await SileroVad(gathering).speech_probability(second)
        assert gathering.batches == 1 and gathering.largest_batch == 2
        assert [await early, late] == pytest.approx(alone, abs=1e-5)
    finally:
        gathering.close()
