"""Where the stretches of a buffer of caller audio lie in the caller's stream.

The recognizer hears an utterance as one buffer, but the buffer may join pieces that were
apart in the stream (a turn continued after a pause starts with the earlier part's audio).
Times the recognizer gives (word timings) are in buffer time; this maps them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StreamMap:
    pieces: list[tuple[float, float]] = field(default_factory=list)  # (buffer ms, stream ms)

    def add(self, buffer_ms: float, stream_ms: float) -> None:
        """The buffer's audio from `buffer_ms` on was heard from `stream_ms` on."""
        self.pieces.append((buffer_ms, stream_ms))

    def stream_ms(self, buffer_ms: float) -> float:
        for start, stream_start in reversed(self.pieces):
            if start <= buffer_ms:
                return stream_start + buffer_ms - start
        return self.pieces[0][1] if self.pieces else buffer_ms

    def trimmed(self, cut_ms: float) -> StreamMap:
        """The map of the same buffer with its first `cut_ms` cut off."""
        kept = [(start - cut_ms, stream) for start, stream in self.pieces if start > cut_ms]
        if not kept or kept[0][0] > 0:
            kept.insert(0, (0.0, self.stream_ms(cut_ms)))
        return StreamMap(kept)

    def followed_by(self, length_ms: float, other: StreamMap) -> StreamMap:
        """This buffer (`length_ms` long) with `other`'s appended."""
        return StreamMap(
            self.pieces + [(start + length_ms, stream) for start, stream in other.pieces]
        )
