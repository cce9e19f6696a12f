"""Word marks for engines that do not report word events: estimated, or aligned from phonemes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from difflib import SequenceMatcher

from agents_app.speech.tts.base import WordMark

_WORD = re.compile(r"\S+")


def text_words(text: str) -> list[re.Match[str]]:
    """The text's words as every engine marks them: whitespace-separated, with punctuation."""
    return list(_WORD.finditer(text))


def estimated_word_marks(text: str, duration_ms: float) -> list[WordMark]:
    """Word starts spread over the clip in proportion to each word's length in characters.

    Speaking time roughly follows spelling, so after a barge-in the heard text is off by a word
    at most in ordinary sentences; words are whitespace-separated and keep their punctuation.
    """
    words = text_words(text)
    total = sum(len(word.group()) for word in words)
    marks, spoken = [], 0
    for word in words:
        marks.append(WordMark(word.start(), word.end(), int(duration_ms * spoken / total)))
        spoken += len(word.group())
    return marks


def aligned_word_marks(
    text: str,
    word_phonemes: Sequence[Sequence[str]],
    spoken: Sequence[tuple[str, int]],
    sample_rate: int,
) -> list[WordMark]:
    """Word marks from the phonemes that were spoken, each with the sample where it starts.

    `word_phonemes` holds each word of `text` phonemised on its own. The spoken phonemes come
    from the whole text, where words do not map one to one ("$12.50" is five spoken words,
    "Well... okay" one), so each word's own phonemes are found in the spoken ones by sequence
    alignment; a word none of whose phonemes were found (a dash, or one said differently in
    context) starts right after the previous word's last matched phoneme.
    """
    words = text_words(text)
    owner = [index for index, phonemes in enumerate(word_phonemes) for _ in phonemes]
    said = [phoneme for phonemes in word_phonemes for phoneme in phonemes]
    heard = [phoneme for phoneme, _sample in spoken]
    first: dict[int, int] = {}  # word index -> spoken index of its first matched phoneme
    last: dict[int, int] = {}
    matcher = SequenceMatcher(None, said, heard, autojunk=False)
    for said_at, heard_at, size in matcher.get_matching_blocks():
        for offset in range(size):
            word = owner[said_at + offset]
            first.setdefault(word, heard_at + offset)
            last[word] = heard_at + offset
    marks, cursor, start = [], 0, 0
    for index, word in enumerate(words):
        at = first.get(index, cursor)
        if at < len(spoken):
            start = max(start, spoken[at][1])
        if index in last:
            cursor = last[index] + 1
        marks.append(WordMark(word.start(), word.end(), start * 1000 // sample_rate))
    return marks
