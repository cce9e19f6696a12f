"""The recorder: two channels on the caller's clock, unheard agent audio wiped, silences kept
even once audio has left memory; the saved WAV; digit runs placed by word timings."""

from __future__ import annotations

import asyncio
import uuid
import wave

import numpy as np
import pytest
from django.core.files.storage import default_storage

from agents_app.speech.stt.base import TimedWord
from sessions_app.pipeline.stream_map import StreamMap
from sessions_app.recording.digit_spans import SILENCE_MARGIN_MS, redacted_spans
from sessions_app.recording.recorder import Recorder
from sessions_app.recording.session_recording import SessionRecording

RATE = 1000  # one sample per ms: positions read as times


def tone(ms: int, value: int) -> bytes:
    return np.full(ms, value, dtype="<i2").tobytes()


def channels(stereo: bytes) -> tuple[np.ndarray, np.ndarray]:
    samples = np.frombuffer(stereo, dtype="<i2").reshape(-1, 2)
    return samples[:, 0], samples[:, 1]


def test_agent_frames_play_where_the_caller_is_or_after_the_queue():
    recorder = Recorder(RATE, window_s=100)
    recorder.hear(tone(100, 1))
    recorder.play(tone(20, 7))  # the player's queue is empty: plays now, at 100 ms
    recorder.play(tone(20, 8))  # queued after it, at 120 ms
    recorder.hear(tone(200, 1))
    recorder.play(tone(20, 9))  # the queue ran dry at 140 ms: plays now, at 300 ms
    caller, agent = channels(recorder.finish())
    assert len(caller) == len(agent) == 300
    assert (caller == 1).all()
    assert (agent[:100] == 0).all()
    assert (agent[100:120] == 7).all() and (agent[120:140] == 8).all()
    assert (agent[140:300] == 0).all(), "the frame at 300 ms is past the end of the call"


def test_a_pause_wipes_the_agent_audio_the_client_dropped():
    recorder = Recorder(RATE, window_s=100)
    recorder.hear(tone(100, 1))
    for _ in range(5):  # 100 ms sent ahead of the caller's present
        recorder.play(tone(20, 5))
    recorder.hear(tone(30, 1))
    recorder.drop_unheard()  # paused at 130 ms: 70 ms never played
    recorder.hear(tone(70, 1))
    recorder.play(tone(20, 6))  # resumed at 200 ms
    recorder.hear(tone(50, 1))
    _, agent = channels(recorder.finish())
    assert (agent[100:130] == 5).all()
    assert (agent[130:200] == 0).all(), "dropped audio is not on the recording"
    assert (agent[200:220] == 6).all() and (agent[220:] == 0).all()


def test_silences_cover_the_span_even_after_it_settled():
    recorder = Recorder(RATE, window_s=0.1)  # 100 ms in memory
    settled = b"".join(recorder.hear(tone(50, 3)) for _ in range(10))
    assert recorder.settled_samples > 0 and len(settled) == recorder.settled_samples * 4
    recorder.silence(100, 450)
    assert recorder.late_silences == [(100, recorder.settled_samples)]
    caller, _ = channels(settled + recorder.finish())
    assert len(caller) == 500
    assert (caller[:100] == 3).all() and (caller[450:] == 3).all()
    assert (caller[recorder.settled_samples : 450] == 0).all(), "the part still in memory"


def test_memory_holds_only_the_window():
    recorder = Recorder(RATE, window_s=1)
    for _ in range(100):
        recorder.hear(tone(100, 1))
        recorder.play(tone(100, 2))
    assert recorder.now == 10_000
    assert recorder.settled_samples >= 8_000


def test_a_recording_stops_at_its_longest():
    recorder = Recorder(RATE, window_s=100, max_s=0.25)
    for _ in range(5):
        recorder.play(tone(100, 2))
        recorder.hear(tone(100, 1))
    caller, agent = channels(recorder.finish())
    assert len(caller) == 250
    assert (agent[:200] == 2).all() and (agent[200:] == 0).all(), "no frame crosses the end"


async def test_the_saved_wav_is_stereo_with_late_silences_applied(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    recording = SessionRecording(uuid.uuid4(), lambda: 8000, window_s=0.5, max_s=60)
    for _ in range(100):  # 2 s at 8 kHz, 20 ms frames
        recording.play(tone(160, -1000))  # sent a frame ahead, as playback does
        await recording.hear(tone(160, 1000))
    recording.silence(200, 700)  # settled by now: patched in the spooled file
    name = await recording.save()
    assert name == f"recordings/{recording.session_id}.wav"
    with default_storage.open(name) as stored, wave.open(stored) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
        caller, agent = channels(wav.readframes(wav.getnframes()))
    assert len(caller) == 16000
    assert (caller[1600:5600] == 0).all()
    assert (caller[:1600] == 1000).all() and (caller[5600:] == 1000).all()
    assert (agent == -1000).all()


async def test_audio_after_the_save_is_not_recorded(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    recording = SessionRecording(uuid.uuid4(), lambda: 8000, window_s=0.01, max_s=60)
    await recording.hear(tone(160, 1))
    assert await recording.save() is not None
    await recording.hear(tone(8000, 1))  # a frame still in flight when the session ended
    recording.play(tone(160, 2))
    assert await recording.save() is None


async def test_a_spool_that_cannot_be_written_stops_the_recording_not_the_call(
    settings, tmp_path, monkeypatch
):
    settings.MEDIA_ROOT = tmp_path
    recording = SessionRecording(uuid.uuid4(), lambda: 8000, window_s=0.01, max_s=60)

    def disk_full(stereo: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(recording, "_write", disk_full)
    await recording.hear(tone(800, 1))  # settles audio: the write fails
    await recording.hear(tone(800, 1))
    assert await recording.save() is None
    assert not (tmp_path / "recordings").exists()


async def test_the_rate_set_before_the_callers_audio_is_the_recordings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    rate = [16000]
    recording = SessionRecording(uuid.uuid4(), lambda: rate[0], window_s=1, max_s=60)
    recording.play(tone(320, 5))  # a greeting starts before ACS's AudioMetadata
    rate[0] = 24000
    recording.rate_changed()
    await recording.hear(tone(480, 1))
    with default_storage.open(await recording.save()) as stored, wave.open(stored) as wav:
        assert (wav.getframerate(), wav.getnframes()) == (24000, 480)


async def test_nothing_heard_saves_nothing(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    assert await SessionRecording(uuid.uuid4(), lambda: 16000, window_s=1, max_s=60).save() is None
    await asyncio.sleep(0)


def test_a_digit_run_is_placed_by_its_words_with_a_margin():
    words = (
        TimedWord("card", 0, 400),
        TimedWord("4111", 500, 1200),
        TimedWord("1111", 1200, 1900),
        TimedWord("1111", 1900, 2600),
        TimedWord("1111.", 2600, 3300),
        TimedWord("thanks", 3400, 3800),
    )
    spans = redacted_spans("card 4111 1111 1111 1111. thanks", words)
    assert spans == [(500 - SILENCE_MARGIN_MS, 3300 + SILENCE_MARGIN_MS)]
    assert redacted_spans("call 555 1234", words) == []


def test_a_digit_run_without_timings_cannot_be_placed():
    with pytest.raises(LookupError):
        redacted_spans("4111 1111 1111 1111", None)
    with pytest.raises(LookupError):  # words that do not spell the run
        redacted_spans("4111 1111 1111 1111", (TimedWord("four", 0, 100),))


def test_the_stream_map_follows_joined_and_trimmed_buffers():
    earlier = StreamMap([(0.0, 1000.0)])  # a 2 s utterance heard from 1 s
    joined = earlier.followed_by(2000, StreamMap([(0.0, 5000.0)]))
    assert joined.stream_ms(500) == 1500 and joined.stream_ms(2500) == 5500
    trimmed = joined.trimmed(1500)
    assert trimmed.stream_ms(0) == 2500 and trimmed.stream_ms(1000) == 5500
