"""Voice activity detection: each engine on espeak speech, silence and noise; the detector's
onset, hangover, offsets and chunking; and the hybrid's saving, counted in Silero calls."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from sessions_app import vad
from sessions_app.vad import (
    HybridVad,
    SileroVad,
    SpeechDetector,
    SpeechDismissed,
    SpeechEvent,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SpeechStopped,
    SpeechSuspected,
    VoiceActivityDetector,
    WebRtcVad,
    build_vad,
)
from tests.speech import noise, silence, speech_pcm

SENTENCE = "Hello, I would like to check my account balance please."
SECOND_SENTENCE = "What is the weather today?"
MIN_SPEECH_MS = 200
HANGOVER_MS = 600
# About three frames: each engine smooths its own onset and release a little.
TOLERANCE_MS = 100

NOISE_CLIPS: dict[str, Callable[[], bytes]] = {
    "brown noise": lambda: silence(500) + noise("brown", 3000) + silence(500),
    "pink noise": lambda: silence(500) + noise("pink", 3000) + silence(500),
    "60 Hz hum": lambda: silence(500) + noise("hum", 3000) + silence(500),
    "150 ms noise burst": lambda: silence(500) + noise("brown", 150) + silence(500),
}


def ms_of(pcm: bytes) -> int:
    return len(pcm) // 32


def detect(vad: VoiceActivityDetector, pcm: bytes, chunk_samples: int = 320) -> list[SpeechEvent]:
    """Every event for `pcm` fed in chunks of `chunk_samples`, the stream then flushed."""
    detector = SpeechDetector(
        vad, threshold=0.5, min_speech_ms=MIN_SPEECH_MS, hangover_ms=HANGOVER_MS
    )
    size = chunk_samples * 2
    events: list[SpeechEvent] = []
    for start in range(0, len(pcm), size):
        events += detector.process(pcm[start : start + size])
    return events + detector.flush()


def starts(events: list[SpeechEvent]) -> list[SpeechStarted]:
    return [event for event in events if isinstance(event, SpeechStarted)]


def scores(vad: VoiceActivityDetector, pcm: bytes) -> list[float]:
    """The engine's probability for each whole frame of `pcm`."""
    size = vad.frame_samples * 2
    return [vad.speech_probability(pcm[i : i + size]) for i in range(0, len(pcm) - size + 1, size)]


def short_speech_pieces() -> bytes:
    """Every 250 ms, a 100 ms piece of the sentence, each between a second of silence."""
    sentence = speech_pcm(SENTENCE)
    clip = silence(1000)
    for start_ms in range(0, ms_of(sentence) - 100, 250):
        clip += sentence[start_ms * 32 : (start_ms + 100) * 32] + silence(1000)
    return clip


def assert_pairs(events: list[SpeechEvent], pairs: int) -> None:
    assert [type(event) for event in events] == [SpeechStarted, SpeechStopped] * pairs


# --- Each engine -----------------------------------------------------------------------------


class VadEngineTests:
    """Run once per engine: what every engine must do on speech and silence."""

    engine: str
    # How far an event may sit from where the speech was placed (espeak pads its clips, and
    # its output shifts slightly from run to run).
    tolerance_ms = TOLERANCE_MS

    def make_vad(self) -> VoiceActivityDetector:
        return build_vad(self.engine)

    def test_most_frames_of_a_sentence_are_voiced(self):
        frame_scores = scores(self.make_vad(), speech_pcm(SENTENCE))
        voiced = sum(score >= 0.5 for score in frame_scores)
        assert voiced >= 0.8 * len(frame_scores)

    def test_silence_is_never_voiced(self):
        assert max(scores(self.make_vad(), silence(3000))) < 0.5
        assert detect(self.make_vad(), silence(3000)) == []

    def test_one_utterance_placed_in_silence(self):
        sentence = speech_pcm(SENTENCE)
        events = detect(self.make_vad(), silence(1000) + sentence + silence(1500))
        assert_pairs(events, 1)
        started, stopped = events
        assert abs(started.offset_ms - 1000) <= self.tolerance_ms
        assert abs(stopped.offset_ms - (1000 + ms_of(sentence))) <= self.tolerance_ms
        assert stopped.duration_ms == stopped.offset_ms - started.offset_ms

    def test_a_gap_longer_than_the_hangover_makes_two_utterances(self):
        first, second = speech_pcm(SENTENCE), speech_pcm(SECOND_SENTENCE)
        clip = silence(500) + first + silence(HANGOVER_MS + 900) + second + silence(1000)
        events = detect(self.make_vad(), clip)
        assert_pairs(events, 2)
        second_at = 500 + ms_of(first) + HANGOVER_MS + 900
        assert abs(events[2].offset_ms - second_at) <= self.tolerance_ms

    def test_a_gap_shorter_than_the_hangover_keeps_one_utterance(self):
        first, second = speech_pcm(SENTENCE), speech_pcm(SECOND_SENTENCE)
        clip = silence(500) + first + silence(HANGOVER_MS // 2) + second + silence(1000)
        events = detect(self.make_vad(), clip)
        assert_pairs(events, 1)
        assert abs(events[1].offset_ms - (ms_of(clip) - 1000)) <= self.tolerance_ms

    @pytest.mark.parametrize("chunk_samples", [137, 1_000_000], ids=["137 samples", "one call"])
    def test_any_chunking_gives_the_events_of_20_ms_frames(self, chunk_samples):
        clip = silence(700) + speech_pcm(SENTENCE) + silence(900) + speech_pcm(SECOND_SENTENCE)
        in_frames = detect(self.make_vad(), clip, chunk_samples=320)
        assert len(in_frames) == 4
        assert detect(self.make_vad(), clip, chunk_samples=chunk_samples) == in_frames

    def test_flush_closes_open_speech(self):
        sentence = speech_pcm(SENTENCE)
        detector = SpeechDetector(
            self.make_vad(), threshold=0.5, min_speech_ms=MIN_SPEECH_MS, hangover_ms=HANGOVER_MS
        )
        opened = detector.process(silence(500) + sentence)
        assert [type(event) for event in opened] == [SpeechStarted]
        assert detector.speaking
        [stopped] = detector.flush()
        assert isinstance(stopped, SpeechStopped)
        assert abs(stopped.offset_ms - (500 + ms_of(sentence))) <= self.tolerance_ms
        assert not detector.speaking
        assert detector.flush() == []

    def test_reset_starts_a_new_stream_at_time_zero(self):
        clip = silence(800) + speech_pcm(SECOND_SENTENCE) + silence(1000)
        detector = SpeechDetector(
            self.make_vad(), threshold=0.5, min_speech_ms=MIN_SPEECH_MS, hangover_ms=HANGOVER_MS
        )
        first = detector.process(clip)
        detector.reset()
        assert detector.process(clip) == first
        assert_pairs(first, 1)

    def test_a_frame_of_the_wrong_size_is_refused(self):
        vad = self.make_vad()
        with pytest.raises(ValueError, match="samples"):
            vad.speech_probability(silence(20))


class NoiseRejectionTests:
    """For engines that must not mistake noise or short sounds for speech (Silero, hybrid)."""

    @pytest.mark.parametrize("clip", NOISE_CLIPS)
    def test_noise_never_starts_speech(self, clip):
        assert starts(detect(self.make_vad(), NOISE_CLIPS[clip]())) == []

    def test_sounds_shorter_than_min_speech_start_nothing(self):
        assert detect(self.make_vad(), short_speech_pieces()) == []


class TestWebRtcVad(VadEngineTests):
    engine = "webrtc"
    # webrtc's own hold-over keeps frames voiced a little past the end of speech.
    tolerance_ms = 160

    # At the default aggressiveness 3, steady noise at -30 dBFS fools webrtcvad, except the
    # 60 Hz hum, which only fools it at aggressiveness 0 (see below). Hence the hybrid.
    @pytest.mark.parametrize("clip", ["brown noise", "pink noise", "150 ms noise burst"])
    def test_noise_starts_speech(self, clip):
        assert starts(detect(self.make_vad(), NOISE_CLIPS[clip]()))

    @pytest.mark.parametrize("clip", NOISE_CLIPS)
    def test_at_aggressiveness_0_every_noise_starts_speech(self, clip):
        assert starts(detect(WebRtcVad(aggressiveness=0), NOISE_CLIPS[clip]()))

    def test_its_own_hangover_stretches_some_short_sounds_into_speech(self):
        # Silero and the hybrid start nothing on the same clip (NoiseRejectionTests).
        assert starts(detect(self.make_vad(), short_speech_pieces()))

    def test_aggressiveness_is_0_to_3(self):
        with pytest.raises(ValueError, match="aggressiveness"):
            WebRtcVad(aggressiveness=4)


class TestSileroVad(VadEngineTests, NoiseRejectionTests):
    engine = "silero"

    def test_a_stream_holds_a_model_only_while_it_scores(self, monkeypatch):
        monkeypatch.setattr(vad, "_idle_silero", [])
        frames_ = [speech_pcm(SENTENCE)[i * 1024 : (i + 1) * 1024] for i in range(8)]
        fresh = [SileroVad().speech_probability(frame) for frame in frames_[:1]]
        first, second = SileroVad(), SileroVad()
        for frame in frames_:
            first.speech_probability(frame)  # state from a whole stretch of speech
        model = first._model

        first.reset()  # it forgets the stream: its model goes back, reset, for the next
        heard = second.speech_probability(frames_[0])

        assert first._model is None and second._model is model
        assert heard == pytest.approx(fresh[0]), "a pooled model starts afresh"


class CountingVad:
    """Wraps an engine and counts the frames it was asked about."""

    def __init__(self, inner: VoiceActivityDetector) -> None:
        self.inner = inner
        self.frame_samples = inner.frame_samples
        self.calls = 0
        self.resets = 0

    def speech_probability(self, frame: bytes) -> float:
        self.calls += 1
        return self.inner.speech_probability(frame)

    def reset(self) -> None:
        self.resets += 1
        self.inner.reset()


class TestHybridVad(VadEngineTests, NoiseRejectionTests):
    engine = "hybrid"

    def test_it_asks_silero_far_less_often_than_silero_alone(self):
        long_pauses = (
            silence(3000)
            + speech_pcm(SENTENCE)
            + silence(4000)
            + speech_pcm(SECOND_SENTENCE)
            + silence(3000)
        )
        alone = CountingVad(SileroVad())
        gated = CountingVad(SileroVad())
        alone_events = detect(alone, long_pauses)
        hybrid_events = detect(HybridVad(confirm=gated), long_pauses)
        assert_pairs(alone_events, 2)
        assert_pairs(hybrid_events, 2)
        assert alone.calls == ms_of(long_pauses) // 32
        speech_frames = (ms_of(speech_pcm(SENTENCE)) + ms_of(speech_pcm(SECOND_SENTENCE))) // 32
        assert gated.calls < alone.calls / 2
        assert gated.calls <= speech_frames + 20  # the gate's own release, a few frames each

    def test_a_silent_line_never_reaches_silero(self):
        confirm = CountingVad(SileroVad())
        assert detect(HybridVad(confirm=confirm), silence(5000)) == []
        assert confirm.calls == 0

    def test_a_quiet_line_barely_reaches_silero(self):
        confirm = CountingVad(SileroVad())
        line = noise("white", 5000, dbfs=-60)
        assert detect(HybridVad(confirm=confirm), line) == []
        assert confirm.calls <= 10  # webrtcvad's first frames, while it learns the noise floor
        assert confirm.calls < ms_of(line) // 32 / 10

    def test_silero_rejects_the_noise_the_gate_lets_through(self):
        confirm = CountingVad(SileroVad())
        assert detect(HybridVad(confirm=confirm), NOISE_CLIPS["brown noise"]()) == []
        assert confirm.calls > 50

    def test_silero_is_reset_once_the_gate_has_been_closed_a_while(self):
        confirm = CountingVad(SileroVad())
        hybrid = HybridVad(confirm=confirm, reset_after_frames=16)
        scores(hybrid, speech_pcm(SECOND_SENTENCE) + silence(300))
        assert confirm.resets == 0
        scores(hybrid, silence(3000))
        assert confirm.resets == 1

    def test_engines_must_fit_its_frame(self):
        with pytest.raises(ValueError, match="512"):
            HybridVad(confirm=WebRtcVad())


# --- Registry ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "frame_samples"),
    [("webrtc", WebRtcVad, 480), ("silero", SileroVad, 512), ("hybrid", HybridVad, 512)],
)
def test_build_vad_by_name(name, kind, frame_samples):
    vad = build_vad(name)
    assert isinstance(vad, kind)
    assert vad.frame_samples == frame_samples


def test_build_vad_defaults_to_the_setting(settings):
    settings.VAD_ENGINE = "webrtc"
    assert isinstance(build_vad(), WebRtcVad)


def test_build_vad_refuses_an_unknown_engine():
    with pytest.raises(ValueError, match="unknown VAD engine 'energy'"):
        build_vad("energy")


# --- The detector's rules, exactly, with a scripted engine -------------------------------------


class PeakVad:
    """10 ms frames scored by their loudest sample: 1000 and above is 1.0, silence is 0.0."""

    frame_samples = 160

    def __init__(self) -> None:
        self.resets = 0

    def speech_probability(self, frame: bytes) -> float:
        return min(1.0, int(np.abs(np.frombuffer(frame, dtype=np.int16)).max()) / 1000)

    def reset(self) -> None:
        self.resets += 1


def tone(ms: int, level: int = 4000) -> bytes:
    return np.full(16 * ms, level, dtype=np.int16).tobytes()


def exact(**overrides: int) -> SpeechDetector:
    options = {"min_speech_ms": 200, "hangover_ms": 300} | overrides
    return SpeechDetector(PeakVad(), threshold=0.5, **options)


def run(detector: SpeechDetector, pcm: bytes, chunk_bytes: int = 320) -> list[SpeechEvent]:
    events: list[SpeechEvent] = []
    for start in range(0, len(pcm), chunk_bytes):
        events += detector.process(pcm[start : start + chunk_bytes])
    return events + detector.flush()


def test_speech_starts_where_its_voiced_run_began_and_is_reported_when_confirmed():
    detector = exact()
    clip = silence(500) + tone(300) + silence(1000)
    emitted_at = {}
    for n, start in enumerate(range(0, len(clip), 320)):
        for event in detector.process(clip[start : start + 320]):
            emitted_at[event] = (n + 1) * 10  # ms of audio fed so far
    assert emitted_at == {
        SpeechStarted(offset_ms=500): 500 + 200,
        SpeechStopped(offset_ms=800, duration_ms=300): 800 + 300,
    }


def test_a_sound_shorter_than_min_speech_starts_nothing():
    assert run(exact(), silence(100) + tone(190) + silence(1000)) == []
    assert starts(run(exact(), silence(100) + tone(200) + silence(1000))) == [SpeechStarted(100)]


def test_min_speech_counts_voiced_frames_and_bridges_a_single_unvoiced_frame():
    clip = silence(100) + tone(100) + silence(10) + tone(100) + silence(1000)
    assert run(exact(), clip) == [SpeechStarted(100), SpeechStopped(310, 210)]
    # Voiced for 150 ms in all, a dip between: not yet speech.
    assert run(exact(), silence(100) + tone(100) + silence(10) + tone(50) + silence(500)) == []


def test_two_unvoiced_frames_in_a_row_restart_the_onset():
    assert run(exact(), tone(100) + silence(20) + tone(100) + silence(500)) == []
    clip = tone(100) + silence(20) + tone(200) + silence(500)
    assert run(exact(), clip) == [SpeechStarted(120), SpeechStopped(320, 200)]


def test_speech_stops_after_exactly_the_hangover():
    one = run(exact(), tone(300) + silence(290) + tone(300) + silence(400))
    assert one == [SpeechStarted(0), SpeechStopped(890, 890)]
    two = run(exact(), tone(300) + silence(300) + tone(300) + silence(400))
    assert two == [
        SpeechStarted(0),
        SpeechStopped(300, 300),
        SpeechStarted(600),
        SpeechStopped(900, 300),
    ]


def test_the_threshold_is_inclusive():
    assert starts(run(exact(), tone(300, level=500) + silence(400))) == [SpeechStarted(0)]
    assert run(exact(), tone(300, level=499) + silence(400)) == []


@pytest.mark.parametrize("chunk_bytes", [2 * 137, 333, 2, 7 * 320 + 2])
def test_chunk_size_never_shifts_an_event(chunk_bytes):
    clip = silence(123) + tone(457) + silence(321) + tone(250) + silence(700) + tone(90)
    expected = [
        SpeechStarted(120),
        SpeechStopped(580, 460),
        SpeechStarted(900),
        SpeechStopped(1160, 260),
    ]
    assert run(exact(), clip, chunk_bytes=320) == expected
    assert run(exact(), clip, chunk_bytes=chunk_bytes) == expected


def test_flush_counts_a_partial_frame_as_time_and_closes_speech():
    detector = exact()
    assert detector.process(tone(300) + silence(5)) == [SpeechStarted(0)]
    assert detector.position_ms == 300  # the 5 ms partial frame waits
    assert detector.flush() == [SpeechStopped(300, 300)]
    assert detector.position_ms == 305
    assert not detector.speaking
    assert detector.process(silence(5) + tone(200)) == [SpeechStarted(305)]


def test_flush_drops_an_unconfirmed_run():
    detector = exact()
    assert detector.process(tone(150)) == []
    assert detector.flush() == []
    assert detector.process(tone(100)) == []


def test_reset_restarts_time_and_the_engine():
    detector = exact()
    detector.process(silence(500) + tone(300))
    detector.reset()
    assert detector.vad.resets == 1
    assert not detector.speaking
    assert detector.position_ms == 0
    assert run(detector, tone(300) + silence(400)) == [SpeechStarted(0), SpeechStopped(300, 300)]


def test_defaults_come_from_settings(settings):
    settings.VAD_THRESHOLD = 0.9
    settings.VAD_MIN_SPEECH_MS = 50
    settings.VAD_HANGOVER_MS = 100
    detector = SpeechDetector(PeakVad())
    clip = tone(60, level=800) + silence(200) + tone(60) + silence(200)
    assert run(detector, clip) == [SpeechStarted(260), SpeechStopped(320, 60)]


def test_negative_durations_are_refused():
    with pytest.raises(ValueError):
        SpeechDetector(PeakVad(), min_speech_ms=-1)


def test_a_pause_inside_speech_is_reported_and_so_is_speech_after_it():
    clip = tone(300) + silence(250) + tone(200) + silence(400)
    assert run(exact(pause_ms=200), clip) == [
        SpeechStarted(0),
        SpeechPaused(300),
        SpeechResumed(550),
        SpeechPaused(750),
        SpeechStopped(750, 750),
    ]


def test_a_silence_shorter_than_the_pause_reports_nothing_and_without_pause_ms_none_is():
    clip = tone(300) + silence(190) + tone(200) + silence(400)
    assert run(exact(pause_ms=200), clip) == [
        SpeechStarted(0),
        SpeechPaused(690),
        SpeechStopped(690, 690),
    ]
    assert run(exact(), clip) == [SpeechStarted(0), SpeechStopped(690, 690)]


def test_a_pause_must_come_before_the_hangover():
    with pytest.raises(ValueError):
        exact(pause_ms=300)


def test_first_voiced_evidence_is_reported_before_it_is_speech():
    clip = silence(100) + tone(300) + silence(400)
    assert run(exact(onset_ms=60), clip) == [
        SpeechSuspected(100),
        SpeechStarted(100),
        SpeechStopped(400, 300),
    ]


def test_evidence_that_dies_before_it_is_speech_is_dismissed():
    clip = silence(100) + tone(120) + silence(400) + tone(50) + silence(100)
    assert run(exact(onset_ms=60), clip) == [SpeechSuspected(100), SpeechDismissed(220)]
    assert run(exact(), clip) == []


def test_end_speech_stops_at_the_last_voiced_frame_and_is_idle_otherwise():
    detector = exact()
    assert detector.process(tone(300) + silence(100)) == [SpeechStarted(0)]
    assert detector.end_speech() == [SpeechStopped(300, 300)]
    assert detector.end_speech() == []
    assert run(detector, silence(100) + tone(250) + silence(400)) == [
        SpeechStarted(500),
        SpeechStopped(750, 250),
    ]


def test_the_onset_must_come_before_min_speech():
    with pytest.raises(ValueError):
        exact(onset_ms=200)
