"""One live session's recording: its Recorder, the spool file, and the save when it ends.

Settled audio is spooled to a temporary WAV file off the event loop as the call goes on, so
a long call holds only the recorder's window in memory. At the end the late silences are
written into the spool and the file is saved through Django's storage API (default_storage:
the file system under MEDIA_ROOT unless STORAGES says otherwise) as recordings/<id>.wav.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import uuid
import wave
from collections.abc import Callable
from typing import IO

import numpy as np
from django.core.files import File
from django.core.files.storage import default_storage

from sessions_app.recording.recorder import Recorder

logger = logging.getLogger(__name__)

CHANNELS = 2
FRAME_BYTES = 4  # one sample per channel, PCM16
WAV_HEADER_BYTES = 44  # the wave module's header for PCM


def recording_name(session_id: uuid.UUID) -> str:
    return f"recordings/{session_id}.wav"


class SessionRecording:
    """Records one session; `sample_rate` is read at the first audio (a phone call may
    negotiate its rate after the session opened)."""

    def __init__(
        self,
        session_id: uuid.UUID,
        sample_rate: Callable[[], int],
        *,
        window_s: float,
        max_s: float,
    ) -> None:
        self.session_id = session_id
        self._sample_rate = sample_rate
        self._window_s = window_s
        self._max_s = max_s
        self._recorder: Recorder | None = None
        self._spool: IO[bytes] | None = None
        self._wav: wave.Wave_write | None = None
        self._writing = asyncio.Lock()  # spool writes in order, and the save after them
        self._finished = False  # saved (or being saved): late audio is not recorded

    @property
    def recorder(self) -> Recorder:
        if self._recorder is None:
            self._recorder = Recorder(self._sample_rate(), self._window_s, self._max_s)
        return self._recorder

    def rate_changed(self) -> None:
        """The session's rate was set before the caller's first audio: record at the new
        one (agent audio of the old rate, a greeting's start, is not kept)."""
        if self._recorder is not None and self._recorder.now == 0:
            self._recorder = None

    def position_ms(self) -> float:
        """The caller's present, in ms of their stream."""
        return self.recorder.now * 1000 / self.recorder.sample_rate

    async def hear(self, pcm: bytes) -> None:
        if self._finished:
            return
        settled = self.recorder.hear(pcm)
        if not settled:
            return
        try:
            async with self._writing:
                await asyncio.to_thread(self._write, settled)
        except OSError:  # a full disk costs the recording, never the call
            logger.exception("session %s: recording stopped", self.session_id)
            self._finished = True
            if self._spool is not None:
                await asyncio.to_thread(self._spool.close)

    def play(self, frame: bytes) -> None:
        if not self._finished:
            self.recorder.play(frame)

    def drop_unheard(self) -> None:
        self.recorder.drop_unheard()

    def silence(self, start_ms: float, end_ms: float) -> None:
        self.recorder.silence(start_ms, end_ms)

    async def save(self) -> str | None:
        """Finish and store the recording; its storage name, or None if nothing was heard."""
        if self._recorder is None or self._finished:
            return None
        self._finished = True
        rest = self._recorder.finish()
        async with self._writing:
            return await asyncio.to_thread(self._save, rest)

    # --- in a thread ----------------------------------------------------------------------

    def _write(self, stereo: bytes) -> None:
        if self._wav is None:
            # Both live for the whole call: `_save` closes them.
            self._spool = tempfile.TemporaryFile(prefix="recording-")  # noqa: SIM115
            self._wav = wave.open(self._spool, "wb")  # noqa: SIM115
            self._wav.setnchannels(CHANNELS)
            self._wav.setsampwidth(FRAME_BYTES // CHANNELS)
            self._wav.setframerate(self.recorder.sample_rate)
        self._wav.writeframesraw(stereo)

    def _save(self, rest: bytes) -> str | None:
        self._write(rest)
        assert self._wav is not None and self._spool is not None
        self._wav.close()  # writes the header's sizes; the spool stays open
        try:
            if self.recorder.settled_samples == 0:
                return None
            for start, end in self.recorder.late_silences:
                self._silence_spooled(start, end)
            self._spool.seek(0)
            name = default_storage.save(recording_name(self.session_id), File(self._spool))
            logger.info("session %s: recording saved as %s", self.session_id, name)
            return name
        finally:
            self._spool.close()

    def _silence_spooled(self, start: int, end: int) -> None:
        """Zero the caller's channel of samples [start, end) already in the spool."""
        assert self._spool is not None
        self._spool.seek(WAV_HEADER_BYTES + start * FRAME_BYTES)
        frames = np.frombuffer(self._spool.read((end - start) * FRAME_BYTES), dtype="<i2").copy()
        frames[0::CHANNELS] = 0
        self._spool.seek(WAV_HEADER_BYTES + start * FRAME_BYTES)
        self._spool.write(frames.tobytes())
