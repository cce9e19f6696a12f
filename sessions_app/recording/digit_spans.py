"""Which stretches of a caller's utterance said what its transcript redacts."""

from __future__ import annotations

from agents_app.speech.stt.base import TimedWord
from sessions_app.redaction import digit_runs

# Word alignment is coarse (Whisper's steps are 20 ms, its boundaries measured ~0.25 s off
# espeak's): every silenced span reaches this far past the words it covers.
SILENCE_MARGIN_MS = 400


def redacted_spans(text: str, words: tuple[TimedWord, ...] | None) -> list[tuple[float, float]]:
    """The (start, end) ms, in the words' time, of each redacted digit run of `text`; raises
    LookupError when a run cannot be placed (no timings, or words that do not spell `text`),
    so the caller silences the whole utterance instead."""
    runs = digit_runs(text)
    if not runs:
        return []
    placed = _place(text, words or ())
    spans = []
    for start, end in runs:
        covering = [word for (lo, hi), word in placed if lo < end and hi > start]
        if not covering or not _covers(placed, start, end):
            raise LookupError("a redacted run has no word timings")
        spans.append(
            (
                max(covering[0].start_ms - SILENCE_MARGIN_MS, 0),
                covering[-1].end_ms + SILENCE_MARGIN_MS,
            )
        )
    return spans


def _place(text: str, words: tuple[TimedWord, ...]) -> list[tuple[tuple[int, int], TimedWord]]:
    """Each word with its character span in `text`, found in order."""
    placed, cursor = [], 0
    for word in words:
        at = text.find(word.text, cursor) if word.text else -1
        if at < 0:
            continue
        placed.append(((at, at + len(word.text)), word))
        cursor = at + len(word.text)
    return placed


def _covers(placed: list[tuple[tuple[int, int], TimedWord]], start: int, end: int) -> bool:
    """Whether the digits of text[start:end] all lie inside placed words."""
    inside = [(lo, hi) for (lo, hi), _ in placed if lo < end and hi > start]
    return inside[0][0] <= start and inside[-1][1] >= end
