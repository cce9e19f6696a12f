"""The recording of one session as two time-aligned channels, kept as they happen.

The clock is the caller's audio stream: sample n of the left channel is the n-th sample the
caller sent (and recognition heard). An agent frame is placed where the caller's player would
play it: right after the agent audio already queued, or at the caller's present if the queue
had run dry. A pause or barge-in makes the client drop what it holds, so agent audio placed
beyond the present is unheard and is wiped (`drop_unheard`). Spans the transcript redacts are
silenced on the left (`silence`), also after they have left memory.

Memory is bounded: audio older than `window_s` can no longer change but by `silence`, and is
handed out interleaved (`hear` returns it) for the owner to spool to disk; late silences are
listed and applied to the spooled file at the end. Pure: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLE_BYTES = 2


@dataclass
class Recorder:
    sample_rate: int
    window_s: float = 10.0
    max_s: float = 4 * 3600
    settled_samples: int = 0  # samples (per channel) already handed out
    late_silences: list[tuple[int, int]] = field(default_factory=list)  # sample spans, settled
    _caller: bytearray = field(default_factory=bytearray)  # from settled_samples on
    _agent: bytearray = field(default_factory=bytearray)  # from settled_samples on
    _agent_end: int = 0  # the end of the agent audio queued at the caller's player (samples)

    @property
    def now(self) -> int:
        """The caller's present, in samples since the stream began."""
        return self.settled_samples + len(self._caller) // SAMPLE_BYTES

    def ms_to_sample(self, ms: float) -> int:
        return max(0, round(ms * self.sample_rate / 1000))

    def hear(self, pcm: bytes) -> bytes:
        """The caller's audio, as it arrived; returns audio that has settled (stereo), if any."""
        room = self.ms_to_sample(self.max_s * 1000) - self.now
        self._caller += pcm[: max(room, 0) * SAMPLE_BYTES]
        keep = self.ms_to_sample(self.window_s * 1000) * SAMPLE_BYTES
        if len(self._caller) < 2 * keep:
            return b""
        return self._settle(len(self._caller) - keep)

    def play(self, frame: bytes) -> None:
        """An agent frame handed to the client: queued after the last, or played now."""
        start = max(self._agent_end, self.now)
        if start + len(frame) // SAMPLE_BYTES > self.ms_to_sample(self.max_s * 1000):
            return
        offset = (start - self.settled_samples) * SAMPLE_BYTES
        if len(self._agent) < offset + len(frame):
            self._agent += bytes(offset + len(frame) - len(self._agent))
        self._agent[offset : offset + len(frame)] = frame
        self._agent_end = start + len(frame) // SAMPLE_BYTES

    def drop_unheard(self) -> None:
        """The client dropped the agent audio it held (pause, barge-in, end): none of what
        was queued beyond the caller's present is heard."""
        if self._agent_end > self.now:
            del self._agent[(self.now - self.settled_samples) * SAMPLE_BYTES :]
        self._agent_end = min(self._agent_end, self.now)

    def silence(self, start_ms: float, end_ms: float) -> None:
        """Silence the caller's audio between two stream times (a redacted digit run)."""
        start, end = self.ms_to_sample(start_ms), self.ms_to_sample(end_ms)
        if end <= start:
            return
        if start < self.settled_samples:
            self.late_silences.append((start, min(end, self.settled_samples)))
        lo = max(start - self.settled_samples, 0) * SAMPLE_BYTES
        hi = min(max(end - self.settled_samples, 0) * SAMPLE_BYTES, len(self._caller))
        if hi > lo:
            self._caller[lo:hi] = bytes(hi - lo)

    def finish(self) -> bytes:
        """The rest of the recording (stereo), agent audio queued past the end included."""
        self.drop_unheard()
        return self._settle(len(self._caller))

    def _settle(self, size: int) -> bytes:
        size -= size % SAMPLE_BYTES
        caller = bytes(self._caller[:size])
        agent = bytes(self._agent[:size]).ljust(size, b"\0")
        del self._caller[:size]
        del self._agent[:size]
        self.settled_samples += size // SAMPLE_BYTES
        return interleave(caller, agent)


def interleave(left: bytes, right: bytes) -> bytes:
    """Two PCM16 mono channels of one length as one stereo stream."""
    stereo = np.empty((len(left) // SAMPLE_BYTES, 2), dtype="<i2")
    stereo[:, 0] = np.frombuffer(left, dtype="<i2")
    stereo[:, 1] = np.frombuffer(right, dtype="<i2")
    return stereo.tobytes()
