"""Voice activity detection: engines that score 16 kHz PCM16 frames, and a detector that turns
a stream of any chunk size into speech start/stop events with onset and hangover.

Engines (chosen by VAD_ENGINE through `build_vad`):
- `webrtc`: webrtcvad, ~2 µs a frame, but it takes steady noise (brown, pink; hum when
  lenient) and stretches 100 ms sounds into speech.
- `silero`: the Silero model, which does not fire on noise. Every stream's windows are scored
  by the process's one batcher (agents_app/speech/silero.py), off the event loop, one model
  call for all the streams that have a window ready (bench/vad_batch.py).
- `hybrid` (default): webrtcvad gates, Silero confirms. Silence and quiet lines never reach
  Silero, so they cost almost nothing; noise that passes the gate is still rejected by Silero.

Scoring is async (Silero answers from its thread); the gate and the detector's decisions are
synchronous and pure, so a closed gate never waits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import webrtcvad
from django.conf import settings

from agents_app.errors import ProviderError
from agents_app.speech.silero import Answer, SileroBatcher, initial_state, shared_batcher

SAMPLE_RATE = 16000
SAMPLE_BYTES = 2


class VoiceActivityDetector(Protocol):
    """Scores one frame of 16 kHz PCM16 mono audio; engines keep state between frames, so a
    stream has its own engine and asks about one frame at a time.

    An engine that can often answer without waiting also offers `score_now(frame)`: the
    probability, or None when only `speech_probability` can tell (then called with the same
    frame, next). SpeechDetector uses it where present, to spare quiet audio a task switch.
    An engine that answers from elsewhere (Silero's thread) may also offer
    `score_soon(frame, done)`: `done` gets the probability, or the ProviderError, later in the
    event loop, so a speaking stream's frames need no task to wait for them."""

    frame_samples: int

    async def speech_probability(self, frame: bytes) -> float:
        """Probability 0..1 that `frame` (exactly `frame_samples` samples) holds speech."""
        ...

    def reset(self) -> None:
        """Forget the stream so far; called before a new, unrelated stream."""
        ...


class SpeechGate(Protocol):
    """A cheap, synchronous yes/no in front of a costly engine."""

    frame_samples: int

    def is_voiced(self, frame: bytes) -> bool: ...

    def reset(self) -> None: ...


def _check_frame(frame: bytes, samples: int) -> None:
    if len(frame) != samples * SAMPLE_BYTES:
        raise ValueError(f"a frame must be {samples} samples ({samples * SAMPLE_BYTES} bytes)")


class WebRtcVad:
    """webrtcvad on 30 ms frames: 1.0 or 0.0. Aggressiveness 0 (lenient) to 3 (strict)."""

    frame_samples = 480

    def __init__(self, aggressiveness: int = 3) -> None:
        if aggressiveness not in (0, 1, 2, 3):
            raise ValueError(f"aggressiveness must be 0-3, not {aggressiveness!r}")
        self.aggressiveness = aggressiveness
        self._vad = webrtcvad.Vad(aggressiveness)

    def is_voiced(self, frame: bytes) -> bool:
        _check_frame(frame, self.frame_samples)
        return self._vad.is_speech(frame, SAMPLE_RATE)

    def score_now(self, frame: bytes) -> float:
        return 1.0 if self.is_voiced(frame) else 0.0

    async def speech_probability(self, frame: bytes) -> float:
        return self.score_now(frame)

    def reset(self) -> None:
        # webrtcvad adapts its noise estimate over the stream; a new instance starts clean.
        self._vad = webrtcvad.Vad(self.aggressiveness)


class SileroVad:
    """One stream's Silero on 32 ms (512-sample) frames: its recurrent state is kept here and
    sent with each frame to the batcher (which keeps nothing), so no stream's state reaches
    another's. One frame in flight at a time."""

    frame_samples = 512

    def __init__(self, batcher: SileroBatcher | None = None) -> None:
        self._batcher = batcher or shared_batcher()
        self._in_flight = False
        self._generation = 0  # bumped by reset: an answer for the stream before is not kept
        self.reset()

    async def speech_probability(self, frame: bytes) -> float:
        _check_frame(frame, self.frame_samples)
        if self._in_flight:
            raise RuntimeError("a stream scores one frame at a time")
        self._in_flight, generation = True, self._generation
        try:
            probability, state = await self._batcher.score(frame, self._state)
        finally:
            self._in_flight = False
        if generation == self._generation:
            self._state = state
        return probability

    def score_soon(self, frame: bytes, done: Callable[[float | ProviderError], None]) -> None:
        """`speech_probability` by callback: `done` runs in the event loop once it is known."""
        _check_frame(frame, self.frame_samples)
        if self._in_flight:
            raise RuntimeError("a stream scores one frame at a time")
        self._in_flight, generation = True, self._generation

        def deliver(answer: Answer) -> None:
            self._in_flight = False
            if isinstance(answer, ProviderError):
                done(answer)
                return
            probability, state = answer
            if generation == self._generation:
                self._state = state
            done(probability)

        self._batcher.submit(frame, self._state, deliver)

    def reset(self) -> None:
        self._state = initial_state()
        self._generation += 1


class HybridVad:
    """webrtcvad gates each 512-sample frame (on its first 480 samples); Silero scores only the
    frames the gate lets through, and a closed gate scores 0.0 without asking Silero.

    Silero is recurrent: after the gate has been closed for `reset_after_frames`, it is reset
    so that the next opening starts from a clean state rather than from audio long gone.
    """

    frame_samples = 512

    def __init__(
        self,
        gate: SpeechGate | None = None,
        confirm: VoiceActivityDetector | None = None,
        reset_after_frames: int = 16,
    ) -> None:
        # A lenient gate: missing speech here means Silero never hears it.
        self.gate = gate or WebRtcVad(aggressiveness=1)
        self.confirm = confirm or SileroVad()
        if self.gate.frame_samples > self.frame_samples:
            raise ValueError("the gate's frame must fit in a 512-sample frame")
        if self.confirm.frame_samples != self.frame_samples:
            raise ValueError("the confirming engine must take 512-sample frames")
        self.reset_after_frames = reset_after_frames
        self._gate_bytes = self.gate.frame_samples * SAMPLE_BYTES
        self._closed_frames = 0
        self._opened_by: bytes | None = None  # the frame score_now found the gate open for

    def score_now(self, frame: bytes) -> float | None:
        """0.0 if the gate is closed; None if it opened (Silero must score the frame)."""
        _check_frame(frame, self.frame_samples)
        if not self.gate.is_voiced(frame[: self._gate_bytes]):
            self._closed_frames += 1
            if self._closed_frames == self.reset_after_frames:
                self.confirm.reset()
            return 0.0
        self._closed_frames = 0
        self._opened_by = frame
        return None

    async def speech_probability(self, frame: bytes) -> float:
        if self._opened_by is not frame and self.score_now(frame) is not None:  # once a frame
            return 0.0
        self._opened_by = None
        return await self.confirm.speech_probability(frame)

    def score_soon(self, frame: bytes, done: Callable[[float | ProviderError], None]) -> None:
        """`speech_probability` by callback, where the confirming engine offers it."""
        if self._opened_by is not frame and self.score_now(frame) is not None:
            done(0.0)
            return
        self._opened_by = None
        self.confirm.score_soon(frame, done)  # type: ignore[attr-defined]

    def reset(self) -> None:
        self.gate.reset()
        self.confirm.reset()
        self._closed_frames = 0
        self._opened_by = None


VAD_ENGINES: dict[str, Callable[[SileroBatcher | None], VoiceActivityDetector]] = {
    "webrtc": lambda batcher: WebRtcVad(),
    "silero": lambda batcher: SileroVad(batcher),
    "hybrid": lambda batcher: HybridVad(confirm=SileroVad(batcher)),
}


def build_vad(
    engine: str | None = None, batcher: SileroBatcher | None = None
) -> VoiceActivityDetector:
    """A new engine by name (default: settings.VAD_ENGINE), one per stream: engines keep state.
    Silero engines score through `batcher` (default: the process's)."""
    name = engine if engine is not None else settings.VAD_ENGINE
    try:
        factory = VAD_ENGINES[name]
    except KeyError:
        raise ValueError(
            f"unknown VAD engine {name!r}; choose one of {', '.join(VAD_ENGINES)}"
        ) from None
    return factory(batcher)


@dataclass(frozen=True)
class SpeechStarted:
    """Speech began at `offset_ms` of the stream (the start of its first voiced frame)."""

    offset_ms: int


@dataclass(frozen=True)
class SpeechStopped:
    """Speech ended at `offset_ms` (the end of its last voiced frame), `duration_ms` long."""

    offset_ms: int
    duration_ms: int


@dataclass(frozen=True)
class SpeechSuspected:
    """The first voiced evidence since `offset_ms`: not yet speech, but it may become so."""

    offset_ms: int


@dataclass(frozen=True)
class SpeechDismissed:
    """The voiced run reported as `SpeechSuspected` died before it lasted long enough to be
    speech (a cough, a click, a door): a false alarm, over at `offset_ms`."""

    offset_ms: int


@dataclass(frozen=True)
class SpeechPaused:
    """The caller has been quiet for the detector's `pause_ms` since `offset_ms` (the end of
    their last voiced frame) without the utterance ending yet: they may have finished."""

    offset_ms: int


@dataclass(frozen=True)
class SpeechResumed:
    """Voice came back at `offset_ms` after a pause: the utterance goes on."""

    offset_ms: int


SpeechEvent = (
    SpeechSuspected | SpeechDismissed | SpeechStarted | SpeechStopped | SpeechPaused | SpeechResumed
)


def _ms(samples: int) -> int:
    return samples * 1000 // SAMPLE_RATE


class SpeechDetector:
    """Turns 16 kHz PCM16 chunks of any size into `SpeechStarted` / `SpeechStopped` events.

    Frames scoring at least `threshold` are voiced. Speech starts once a run of voiced frames
    adds up to `min_speech_ms`; the run survives up to `onset_gap_frames` unvoiced frames in a
    row (a brief dip), and is dropped at the next one. Speech stops after `hangover_ms` of
    unvoiced frames in a row. With `pause_ms` (shorter than the hangover), a shorter silence
    inside speech is reported as `SpeechPaused`, and voice after it as `SpeechResumed`, so work
    that depends on the caller having finished can start before the hangover runs out. With
    `onset_ms` (shorter than `min_speech_ms`), a voiced run that long is reported early as
    `SpeechSuspected`, and as `SpeechDismissed` if it dies before it is speech, so a reply can
    fall silent at the first sign of the caller and resume on a false alarm.
    Stream time is counted in samples, so chunking never shifts an offset; offsets are whole
    milliseconds since the stream (or the last `reset`) began. `process` scores each frame
    with the engine and hands its score to `decide`, where every rule lives, with no engine.
    """

    onset_gap_frames = 1
    # A run reported as suspected survives longer dips: speech often starts with a consonant
    # and a pause before its vowel, and dismissing it would resume the reply for a blip.
    suspected_gap_frames = 4

    def __init__(
        self,
        vad: VoiceActivityDetector,
        threshold: float | None = None,
        min_speech_ms: int | None = None,
        hangover_ms: int | None = None,
        pause_ms: int | None = None,
        onset_ms: int | None = None,
    ) -> None:
        self.vad = vad
        self.threshold = settings.VAD_THRESHOLD if threshold is None else threshold
        min_speech_ms = settings.VAD_MIN_SPEECH_MS if min_speech_ms is None else min_speech_ms
        hangover_ms = settings.VAD_HANGOVER_MS if hangover_ms is None else hangover_ms
        if min_speech_ms < 0 or hangover_ms < 0:
            raise ValueError("min_speech_ms and hangover_ms must not be negative")
        self._min_speech = min_speech_ms * SAMPLE_RATE // 1000
        self._hangover = hangover_ms * SAMPLE_RATE // 1000
        if pause_ms is not None and not 0 < pause_ms < hangover_ms:
            raise ValueError("pause_ms must be positive and shorter than hangover_ms")
        self._pause = None if pause_ms is None else pause_ms * SAMPLE_RATE // 1000
        if onset_ms is not None and not 0 < onset_ms < min_speech_ms:
            raise ValueError("onset_ms must be positive and shorter than min_speech_ms")
        self._onset = None if onset_ms is None else onset_ms * SAMPLE_RATE // 1000
        self._frame_bytes = vad.frame_samples * SAMPLE_BYTES
        self._score_now = getattr(vad, "score_now", None)  # looked up once, not per frame
        self._score_soon = getattr(vad, "score_soon", None)
        self._clear()

    def _clear(self) -> None:
        self._pending = bytearray()
        self._position = 0  # samples scored (or flushed) so far
        self._speaking = False
        self._run_start: int | None = None  # first voiced sample of the current run
        self._run_voiced = 0  # voiced samples in the run before speech is confirmed
        self._run_gap = 0  # unvoiced frames in a row inside the run
        self._run_suspected = False  # the run was reported as SpeechSuspected
        self._speech_start = 0  # first voiced sample of the confirmed speech
        self._voiced_end = 0  # end of the last voiced frame
        self._paused = False

    @property
    def speaking(self) -> bool:
        return self._speaking

    @property
    def position_ms(self) -> int:
        """Stream time of the audio scored so far (a partial frame waiting is not counted)."""
        return _ms(self._position)

    async def process(self, pcm: bytes) -> list[SpeechEvent]:
        """Score every whole frame now available; a partial frame waits for the next call."""
        events, unscored = self.process_now(pcm)
        return events + await self.score(unscored)

    def process_now(self, pcm: bytes) -> tuple[list[SpeechEvent], list[bytes]]:
        """`process` as far as it goes without waiting: the events of the frames scored, and
        the frames from the first the engine could not score now, which must go to `score`
        (in order, before the next call) to finish."""
        events: list[SpeechEvent] = []
        frames = self.frames(pcm)
        score_now = self._score_now
        for index, frame in enumerate(frames):
            probability = None if score_now is None else score_now(frame)
            if probability is None:
                return events, frames[index:]
            if (event := self.decide(probability)) is not None:
                events.append(event)
        return events, []

    async def score(self, frames: list[bytes]) -> list[SpeechEvent]:
        """Score `frames` (the rest of `process_now`'s) with the engine, in order."""
        events: list[SpeechEvent] = []
        for frame in frames:
            event = self.decide(await self.vad.speech_probability(frame))
            if event is not None:
                events.append(event)
        return events

    def can_score_soon(self) -> bool:
        """Whether `score_soon` works with this engine."""
        return self._score_soon is not None

    def score_soon(
        self,
        frames: list[bytes],
        done: Callable[[list[SpeechEvent], ProviderError | None], None],
    ) -> None:
        """`score` by callback (see `can_score_soon`): `done` runs in the event loop with the
        frames' events once all are decided, or with those so far and the engine's error."""
        assert self._score_soon is not None, "the engine cannot score by callback"
        _ScoringByCallback(self, frames, done).next(0)

    def frames(self, pcm: bytes) -> list[bytes]:
        """The whole frames `pcm` completes, in order; the rest waits for the next call. Each
        must then be scored and `decide`d, in order, before the next call."""
        self._pending += pcm
        size = self._frame_bytes
        whole = len(self._pending) // size * size
        frames = [bytes(self._pending[i : i + size]) for i in range(0, whole, size)]
        del self._pending[:whole]
        return frames

    def flush(self) -> list[SpeechEvent]:
        """End of stream: close open speech. A partial frame left over counts as time only."""
        self._position += len(self._pending) // SAMPLE_BYTES
        self._pending.clear()
        suspected, self._run_start = self._run_start is not None and self._run_suspected, None
        if not self._speaking:
            return [SpeechDismissed(_ms(self._voiced_end))] if suspected else []
        return [self._stop()]

    def reset(self) -> None:
        """Start a new stream at time zero, engine state included."""
        self.vad.reset()
        self._clear()

    def decide(self, probability: float) -> SpeechEvent | None:
        """The next frame's score: what it changes, if anything (pure: no engine, no clock)."""
        start = self._position
        self._position += self.vad.frame_samples
        voiced = probability >= self.threshold
        if self._speaking:
            quiet = self._position - self._voiced_end
            if voiced:
                self._voiced_end = self._position
                if self._paused:
                    self._paused = False
                    return SpeechResumed(_ms(start))
            elif quiet >= self._hangover:
                return self._stop()
            elif self._pause is not None and not self._paused and quiet >= self._pause:
                self._paused = True
                return SpeechPaused(_ms(self._voiced_end))
            return None
        if voiced:
            if self._run_start is None:
                self._run_start, self._run_voiced, self._run_suspected = start, 0, False
            self._run_voiced += self.vad.frame_samples
            self._run_gap = 0
            self._voiced_end = self._position
            if self._run_voiced >= self._min_speech:
                self._speaking, self._speech_start = True, self._run_start
                self._run_start = None
                return SpeechStarted(_ms(self._speech_start))
            suspected = self._onset is not None and self._run_voiced >= self._onset
            if suspected and not self._run_suspected:
                self._run_suspected = True
                return SpeechSuspected(_ms(self._run_start))
        elif self._run_start is not None:
            self._run_gap += 1
            allowed = self.suspected_gap_frames if self._run_suspected else self.onset_gap_frames
            if self._run_gap > allowed:
                self._run_start = None
                if self._run_suspected:
                    return SpeechDismissed(_ms(self._voiced_end))
        return None

    def end_speech(self) -> list[SpeechEvent]:
        """End the speech now (something wiser than the hangover decided the caller is done):
        `SpeechStopped` at the end of its last voiced frame; nothing if none is going on."""
        return [self._stop()] if self._speaking else []

    def _stop(self) -> SpeechStopped:
        self._speaking = self._paused = False
        end = self._voiced_end
        return SpeechStopped(_ms(end), _ms(end - self._speech_start))


@dataclass(frozen=True)
class VoiceDetection:
    """The process's voice detection: the engine's name, its timings and the Silero batcher
    all streams share; each stream gets its own detector (its own engine state) from it."""

    engine: str
    pause_ms: int
    onset_ms: int
    batcher: SileroBatcher = field(default_factory=shared_batcher)

    @classmethod
    def from_settings(cls) -> VoiceDetection:
        return cls(settings.VAD_ENGINE, settings.VAD_PAUSE_MS, settings.VAD_ONSET_MS)

    def new_detector(self) -> SpeechDetector:
        """A detector for one new stream (threshold, min speech and hangover from settings)."""
        vad = build_vad(self.engine, self.batcher)
        return SpeechDetector(vad, pause_ms=self.pause_ms, onset_ms=self.onset_ms)

    def warm_up(self) -> None:
        """Load the model now if the engine needs it, so the first caller does not wait."""
        if self.engine != "webrtc":
            self.batcher.warm_up()


class _ScoringByCallback:
    """One `SpeechDetector.score_soon`: its frames decided in order, each as its answer comes.

    A plain object, not a closure that hands itself to the engine: such a closure refers to
    itself through its own cell, a reference cycle per chunk scored, which only the cyclic
    collector frees (bench/load.py: every speaking caller's chunks kept the young generation
    full, and each of its collections paused every session for 5-15 ms)."""

    def __init__(
        self,
        detector: SpeechDetector,
        frames: list[bytes],
        done: Callable[[list[SpeechEvent], ProviderError | None], None],
    ) -> None:
        self._detector = detector
        self._frames = frames
        self._done = done
        self._events: list[SpeechEvent] = []

    def next(self, index: int) -> None:
        """Hand frame `index` to the engine; `scored` goes on from its answer."""
        self._detector._score_soon(self._frames[index], partial(self.scored, index))  # type: ignore[misc]

    def scored(self, index: int, answer: float | ProviderError) -> None:
        if isinstance(answer, ProviderError):
            self._done(self._events, answer)
            return
        detector, score_now = self._detector, self._detector._score_now
        probability: float | None = answer
        while True:
            if (event := detector.decide(probability)) is not None:  # type: ignore[arg-type]
                self._events.append(event)
            index += 1
            if index == len(self._frames):
                self._done(self._events, None)
                return
            probability = None if score_now is None else score_now(self._frames[index])
            if probability is None:
                self.next(index)
                return
