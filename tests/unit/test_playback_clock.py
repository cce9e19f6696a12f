"""The process's playback clock, driven by hand with a fake time: many replies at once keep
every frame in order with no gap, whoever joins, leaves, pauses or stalls."""

from __future__ import annotations

import asyncio

import numpy as np

from agents_app.speech.tts.base import SpeechClip, WordMark
from sessions_app.pipeline.playback import PlaybackWorker
from sessions_app.pipeline.playback_clock import PlaybackClock

RATE = 16000
FRAME_MS = 20
LEAD_MS = 80
FRAME_BYTES = RATE * FRAME_MS // 1000 * 2
WORD_MS = 200  # the fake voice starts a word every 200 ms


class FakeTime:
    def __init__(self) -> None:
        self.ticks = 0

    def __call__(self) -> float:
        return 1000.0 + self.ticks * FRAME_MS / 1000


class Synthesizer:
    """Speaks a sentence as `ms` of audio whose samples count up: any frame out of order,
    repeated or missing shows in what was sent."""

    def __init__(self, ms: int, first_sample: int = 0) -> None:
        self._samples = RATE * ms // 1000
        self._first = first_sample

    async def synthesize(self, text: str) -> SpeechClip:
        samples = (np.arange(self._samples) + self._first) % 30000
        words = [WordMark(0, len(text), at) for at in range(0, self._samples // 16, WORD_MS)]
        return SpeechClip(text, samples.astype(np.int16).tobytes(), RATE, words)

    async def aclose(self) -> None:
        pass


class Session:
    """One session's send path: the frames it was handed, in order."""

    def __init__(self, clock: PlaybackClock, ms: int, first_sample: int = 0) -> None:
        self.frames: list[bytes] = []
        self.events: list[str] = []
        self.stalled = False
        self._never = asyncio.Event()
        self.synthesizer = Synthesizer(ms, first_sample)
        self.worker = PlaybackWorker(
            self.synthesizer,
            turn=1,
            sample_rate=RATE,
            send_audio=self.send_audio,
            send_event=self.send_event,
            report=self.send_event,
            frame_ms=FRAME_MS,
            lead_ms=LEAD_MS,
            clock=clock,
        )
        self.worker.speak("hello there")
        self.worker.finish()

    async def send_audio(self, frame: bytes) -> None:
        self.frames.append(frame)
        if self.stalled:
            await self._never.wait()  # a client that stopped reading, under a server that waits

    async def send_event(self, event) -> None:
        self.events.append(event["type"])

    @property
    def sent_ms(self) -> float:
        return sum(len(f) for f in self.frames) / 2 / RATE * 1000

    def audio(self) -> bytes:
        return b"".join(self.frames)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def run_ticks(clock: PlaybackClock, time: FakeTime, count: int, each=None) -> None:
    for _ in range(count):
        time.ticks += 1
        clock.tick()
        await settle()
        if each is not None:
            each()


def expected_audio(ms: int, first_sample: int = 0) -> bytes:
    samples = (np.arange(RATE * ms // 1000) + first_sample) % 30000
    return samples.astype(np.int16).tobytes()


def clock_and_time() -> tuple[PlaybackClock, FakeTime]:
    time = FakeTime()
    return PlaybackClock(time=time, ticking=False), time


async def test_many_sessions_get_every_frame_in_order_one_a_tick_a_lead_ahead():
    clock, time = clock_and_time()
    sessions = [Session(clock, ms=1000, first_sample=i * 7) for i in range(60)]
    await settle()
    assert len(clock) == 60
    started = time()  # the first frames went out at once, a lead's worth

    def no_gap_and_no_more_than_the_lead() -> None:
        elapsed_ms = (time() - started) * 1000
        for session in sessions:
            if session.sent_ms < 1000:  # still playing: the client's buffer holds a lead
                ahead_ms = session.sent_ms - elapsed_ms
                assert LEAD_MS - 0.1 <= ahead_ms <= LEAD_MS + FRAME_MS + 0.1

    no_gap_and_no_more_than_the_lead()
    await run_ticks(clock, time, 60, each=no_gap_and_no_more_than_the_lead)
    for i, session in enumerate(sessions):
        assert session.audio() == expected_audio(1000, i * 7)
        assert all(len(frame) == FRAME_BYTES for frame in session.frames)
        assert session.events == ["playback_started"]
        assert session.worker.played_ms == 1000
    assert len(clock) == 0  # every playback ended and left the clock


async def test_sessions_join_and_leave_mid_run_without_disturbing_the_others():
    clock, time = clock_and_time()
    early = [Session(clock, ms=1000, first_sample=i) for i in range(10)]
    await settle()
    await run_ticks(clock, time, 10)
    late = [Session(clock, ms=600, first_sample=100 + i) for i in range(5)]
    await settle()
    assert len(clock) == 15
    leaving = early[:3]
    for session in leaving:
        session.worker.stop()
    await settle()
    assert len(clock) == 12
    sent_at_stop = [len(session.frames) for session in leaving]
    await run_ticks(clock, time, 60)

    assert [len(session.frames) for session in leaving] == sent_at_stop
    for session in leaving:  # what was sent is the start of the audio, in order
        assert expected_audio(1000, early.index(session)).startswith(session.audio())
    for i, session in enumerate(early[3:], start=3):
        assert session.audio() == expected_audio(1000, i)
    for i, session in enumerate(late):
        assert session.audio() == expected_audio(600, 100 + i)
    assert len(clock) == 0


async def test_a_paused_session_sends_nothing_then_resumes_at_the_word_it_cut():
    clock, time = clock_and_time()
    paused, other = Session(clock, ms=1000), Session(clock, ms=1000, first_sample=5)
    await settle()
    await run_ticks(clock, time, 15)  # 300 ms heard: inside the word that began at 200 ms
    played = await paused.worker.pause()
    assert played == 300
    sent = len(paused.frames)
    await run_ticks(clock, time, 20)
    assert len(paused.frames) == sent  # nothing while paused
    assert other.sent_ms == 35 * FRAME_MS + LEAD_MS + FRAME_MS  # the other kept its pace
    assert paused.worker.resume() == 300
    await settle()
    await run_ticks(clock, time, 60)

    resumed = b"".join(paused.frames[sent:])
    whole = expected_audio(1000)
    assert resumed == whole[200 * RATE // 1000 * 2 :]  # from the start of the cut word
    assert paused.worker.played_ms == 1000 - 200 + 300  # 300 before the pause, 800 after
    assert other.audio() == expected_audio(1000, 5)


async def test_a_session_whose_send_stalls_does_not_delay_the_others():
    clock, time = clock_and_time()
    stalled = Session(clock, ms=1000)
    stalled.stalled = True
    others = [Session(clock, ms=1000, first_sample=i + 1) for i in range(20)]
    await settle()
    started = time()

    def on_time() -> None:
        elapsed_ms = (time() - started) * 1000
        for session in others:
            if session.sent_ms < 1000:
                assert session.sent_ms - elapsed_ms >= LEAD_MS - 0.1

    await run_ticks(clock, time, 60, each=on_time)
    assert len(stalled.frames) == 1  # its first send never returned
    for i, session in enumerate(others):
        assert session.audio() == expected_audio(1000, i + 1)
    stalled.worker.stop()
    await settle()
    assert len(clock) == 0


async def test_the_ticking_clock_idles_without_playbacks_and_is_stopped_by_its_owner():
    clock = PlaybackClock(interval_s=0.001)
    session = Session(clock, ms=100)
    await asyncio.wait_for(session.worker.wait_played(), 5)
    assert session.audio() == expected_audio(100)
    assert len(clock) == 0
    clock.stop()
