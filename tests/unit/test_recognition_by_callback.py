"""A speaking caller's frames scored by callback (Silero's answer finishes the frame in the
event loop, no task waits for it): the same decisions and the same audio for the recognizer
as the task's path, in order, with nothing lost when the session ends mid-score."""

from __future__ import annotations

import asyncio
import gc

import pytest

from agents_app.errors import ProviderUnavailable
from agents_app.speech.silero import initial_state
from agents_app.speech.stt.base import Transcript
from sessions_app.pipeline.recognition import RecognitionWorker
from sessions_app.vad import SpeechDetector, SpeechEvent, VoiceDetection, build_vad
from tests.speech import frames, noise, silence, speech_pcm
from tests.unit.test_recognition_silences import FakeRecognizer

SENTENCE = "hello there how are you today"
WINDOW = 512 * 2


def caller_stream() -> bytes:
    return silence(700) + speech_pcm(SENTENCE) + silence(400) + noise("pink", 300) + silence(900)


async def events_awaited(detector: SpeechDetector, chunks: list[bytes]) -> list[SpeechEvent]:
    events: list[SpeechEvent] = []
    for chunk in chunks:
        events += await detector.process(chunk)
    return events


async def events_by_callback(detector: SpeechDetector, chunks: list[bytes]) -> list[SpeechEvent]:
    events: list[SpeechEvent] = []
    for chunk in chunks:
        now, unscored = detector.process_now(chunk)
        events += now
        if unscored:
            answer: asyncio.Future[tuple[list, object]] = asyncio.get_running_loop().create_future()
            detector.score_soon(unscored, lambda *result, answer=answer: answer.set_result(result))
            later, error = await answer
            assert error is None
            events += later
    return events


@pytest.mark.parametrize("chunk_ms", [20, 110])  # 110 ms: several windows a chunk, each gated
async def test_scoring_by_callback_decides_as_awaiting_the_engine(batcher, chunk_ms):
    stream = caller_stream()
    detector = lambda: SpeechDetector(  # noqa: E731
        build_vad("hybrid", batcher), threshold=0.5, min_speech_ms=250, hangover_ms=600
    )
    awaited = await events_awaited(detector(), frames(stream, ms=chunk_ms))
    by_callback = await events_by_callback(detector(), frames(stream, ms=chunk_ms))
    assert [type(event).__name__ for event in awaited] == ["SpeechStarted", "SpeechStopped"]
    assert by_callback == awaited


async def test_an_answer_that_cannot_be_delivered_keeps_no_other_from_its_stream(batcher):
    window = speech_pcm(SENTENCE)[:WINDOW]
    delivered = asyncio.Event()

    def broken(answer: object) -> None:
        raise RuntimeError("a listener's bug")

    batcher.submit(window, initial_state(), broken)
    batcher.submit(window, initial_state(), lambda answer: delivered.set())
    await asyncio.wait_for(delivered.wait(), 10)


class Recognizer(FakeRecognizer):
    """Keeps the audio it is given; `buffers_only`: offers `accept_now`, as OpenAI's does."""

    def __init__(self, buffers_only: bool) -> None:
        super().__init__(timings=None)
        if buffers_only:
            self.accept_now = self.heard.extend

    async def finish_utterance(self) -> Transcript:
        return Transcript(text="hello")


class Listener:
    """Keeps what the worker tells it, in order; ends each utterance at the hangover."""

    def __init__(self) -> None:
        self.told: list[tuple[str, object]] = []
        self.final = asyncio.Event()

    def __getattr__(self, name: str):
        async def note(*args: object) -> None:
            if name != "on_audio_time":  # a clock nobody runs (wants_audio_time)
                self.told.append((name, args))

        return note

    def wants_audio_time(self) -> bool:
        return False

    async def on_final(self, transcript: Transcript, start_ms: int, end_ms: int) -> None:
        self.told.append(("on_final", (transcript.text, start_ms, end_ms)))
        self.final.set()


def worker_for(listener: Listener, recognizer: Recognizer, detector: SpeechDetector):
    return RecognitionWorker(
        listener, detector, recognizer, sample_rate=16000, max_queued_ms=60_000
    )


async def hear_in_real_order(recognizer: Recognizer) -> tuple[list, bytes]:
    listener = Listener()
    worker = worker_for(listener, recognizer, VoiceDetection.from_settings().new_detector())
    for frame in frames(caller_stream()):
        assert worker.feed(frame)
        await asyncio.sleep(0)  # let answers come between frames, as on a live line
    await asyncio.wait_for(listener.final.wait(), 30)
    await worker.close()
    return listener.told, bytes(recognizer.heard)


async def test_speech_heard_outside_the_task_reaches_the_recognizer_as_through_it():
    told_by_task, heard_by_task = await hear_in_real_order(Recognizer(buffers_only=False))
    told, heard = await hear_in_real_order(Recognizer(buffers_only=True))
    names = [name for name, _ in told_by_task]
    assert names[-1] == "on_final"
    assert {"on_speech_started", "on_speech_paused", "on_speech_stopped"} <= set(names)
    assert told == told_by_task
    assert len(heard_by_task) > 32000  # the sentence and its pre-roll: not an empty compare
    assert heard == heard_by_task


class HeldAnswers:
    """A confirming engine whose answers the test gives (a frame of zeros is quiet at once)."""

    frame_samples = 512

    def __init__(self) -> None:
        self.waiting: list = []

    def score_now(self, frame: bytes) -> float | None:
        return 0.0 if not any(frame) else None

    def score_soon(self, frame: bytes, done) -> None:
        self.waiting.append(done)

    async def speech_probability(self, frame: bytes) -> float:
        raise AssertionError("every voiced frame goes by callback here")

    def reset(self) -> None: ...

    def answer(self, result: float | Exception) -> None:
        self.waiting.pop(0)(result)


def voiced(ms: int) -> bytes:
    return b"\x10\x00" * (16 * ms)


async def speaking_worker(recognizer: Recognizer):
    """A worker whose caller has been speaking for a while, every frame answered."""
    engine, listener = HeldAnswers(), Listener()
    detector = SpeechDetector(engine, threshold=0.5, min_speech_ms=64, hangover_ms=640)
    worker = worker_for(listener, recognizer, detector)
    await asyncio.sleep(0)  # the task starts and waits
    for frame in frames(voiced(200)):
        worker.feed(frame)
        while engine.waiting:
            engine.answer(0.9)
        await asyncio.sleep(0.01)
    assert ("on_speech_started", (0,)) in listener.told
    return worker, engine, listener


async def test_an_answer_that_changes_nothing_finishes_its_frame_at_once():
    recognizer = Recognizer(buffers_only=True)
    worker, engine, _ = await speaking_worker(recognizer)
    before = len(recognizer.heard)
    chunk = voiced(32)  # one window
    worker.feed(chunk)
    assert len(engine.waiting) == 1 and len(recognizer.heard) == before  # scored, not heard
    worker.feed(chunk)  # behind it: waits for it
    engine.answer(0.9)  # no event: the frame is finished here, without the task
    assert len(recognizer.heard) == before + len(chunk)
    assert len(engine.waiting) == 1  # and the next frame, held, is being scored
    engine.answer(0.9)
    assert len(recognizer.heard) == before + 2 * len(chunk)
    await worker.close()


async def test_frames_behind_a_scored_one_wait_for_it_and_none_is_lost_at_close():
    recognizer = Recognizer(buffers_only=True)
    worker, engine, _ = await speaking_worker(recognizer)
    before = len(recognizer.heard)
    worker.feed(voiced(32))
    for _ in range(5):
        worker.feed(voiced(20))
    await asyncio.sleep(0.01)
    assert len(recognizer.heard) == before  # nothing jumped the frame being scored
    unfinished = await worker.close()  # mid-score: all of it still reaches the recognizer
    assert len(recognizer.heard) == before + 2 * (32 + 5 * 20) * 16
    assert unfinished is not None and unfinished.transcript.text == "hello"


async def test_an_engine_that_fails_by_callback_is_reported_and_listening_goes_on():
    recognizer = Recognizer(buffers_only=True)
    worker, engine, listener = await speaking_worker(recognizer)
    worker.feed(voiced(32))
    engine.answer(ProviderUnavailable("silero failed: boom", role="stt"))
    for _ in range(100):
        if any(name == "on_recognition_error" for name, _ in listener.told):
            break
        await asyncio.sleep(0.01)
    (error,) = [args[0] for name, args in listener.told if name == "on_recognition_error"]
    assert error.code == "stt_unavailable"
    await asyncio.sleep(0.01)  # the task is back waiting for audio
    worker.feed(voiced(32))  # still listening: the next frame goes to the engine
    await asyncio.sleep(0.01)
    assert len(engine.waiting) == 1
    await worker.close()


class AnswersAtOnce:
    """An engine that scores by callback and answers before `score_soon` returns."""

    frame_samples = 512

    def score_now(self, frame: bytes) -> float | None:
        return None  # every frame goes to the engine

    def score_soon(self, frame: bytes, done) -> None:
        done(0.9)

    async def speech_probability(self, frame: bytes) -> float:
        return 0.9

    def reset(self) -> None:
        pass


def test_scoring_by_callback_leaves_no_garbage_for_the_cyclic_collector():
    """Chunks scored by callback are freed by reference counting: a cycle per chunk kept the
    collector's young generation full under load, and each collection paused every session."""
    detector = SpeechDetector(AnswersAtOnce(), threshold=0.5, min_speech_ms=64, hangover_ms=300)
    answers = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            _, unscored = detector.process_now(bytes(WINDOW * 3))
            detector.score_soon(unscored, lambda events, error: answers.append((events, error)))
        unreachable = gc.collect()
    finally:
        gc.enable()
    assert len(answers) == 20 and answers[0][0], "the frames were scored and decided"
    assert unreachable == 0
