"""Redaction of long digit runs (card and account numbers) before text goes anywhere.

A run is REDACT_MIN_DIGITS or more digits (any script's: Arabic-Indic and fullwidth digits
count), possibly grouped the way people write and read card numbers: by up to three
separators between two digits, each a space of any kind (no-break, thin, ideographic,
zero-width...), a dot, or a hyphen or dash of any kind ("4111 1111 1111 1111",
"4111 - 1111 - 1111 - 1111", "4111.1111.1111.1111", "4111–1111–1111–1111"). Line breaks,
commas, colons and slashes do not group, so dates (2024-11-15, 15.11.2024), times (12:30),
amounts grouped by commas (1,234,567.89) and 10–11 digit phone numbers stay below the
threshold. An amount written with 12 or more digits and no commas ("1234567890123.45") is
redacted: it cannot be told from an account number.

A number grouped in thousands by commas with no decimals is a run too when it holds enough
digits: that is how a recognizer writes a card number read as numbers (Whisper hears "four
thousand one hundred eleven, one thousand one hundred eleven..." as
"4,111,111,111,111,111,111,111"). With decimals ("1,000,000,000.00") it is an amount and stays.
"""

from __future__ import annotations

import re
from functools import lru_cache

from django.conf import settings

REDACTED = "[redacted]"

_SPACES = " \t\u00a0\u1680\u2000-\u200b\u202f\u205f\u2060\u3000\ufeff"
_DOTS = ".\u00b7\u2024\u2027\u30fb\uff0e"
_DASHES = "\\-\u2010-\u2015\u2212\ufe58\ufe63\uff0d"
_SEPARATOR = f"[{_SPACES}{_DOTS}{_DASHES}]{{0,3}}"
# At the end of a stream's text a comma may still turn out to group thousands.
_OPEN_SEPARATOR = f"(?:[{_SPACES}{_DOTS}{_DASHES}]{{0,3}}|,)"


@lru_cache(maxsize=8)
def _digit_run(min_digits: int) -> re.Pattern[str]:
    return re.compile(rf"(?<!\d)\d(?:{_SEPARATOR}\d){{{min_digits - 1},}}(?!\d)")


# Thousands grouped by commas, not followed by more digits or by decimals.
_THOUSANDS = re.compile(r"(?<![\d,.])\d{1,3}(?:,\d{3})+(?!\d|[,.]\d)")


def _spans(text: str, min_digits: int) -> list[tuple[int, int]]:
    spans = [match.span() for match in _digit_run(min_digits).finditer(text)]
    spans += [
        match.span()
        for match in _THOUSANDS.finditer(text)
        if sum(char.isdigit() for char in match.group()) >= min_digits
    ]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


# A possibly unfinished digit run at the very end of a stream's text.
_OPEN_RUN_AT_END = re.compile(rf"\d(?:{_OPEN_SEPARATOR}\d)*{_OPEN_SEPARATOR}$")


def redact_digits(text: str, min_digits: int | None = None) -> str:
    """Replace each run of at least `min_digits` digits with a fixed marker."""
    pieces, at = [], 0
    for start, end in digit_runs(text, min_digits):
        pieces += [text[at:start], REDACTED]
        at = end
    return "".join(pieces) + text[at:]


def digit_runs(text: str, min_digits: int | None = None) -> list[tuple[int, int]]:
    """Where `redact_digits` would redact: the (start, end) character spans of the runs."""
    return _spans(text, min_digits or settings.REDACT_MIN_DIGITS)


def redact_value(value: object) -> object:
    """Redact every string inside a JSON-like value (tool arguments and results)."""
    if isinstance(value, str):
        return redact_digits(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_value(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        as_text = str(value)
        redacted = redact_digits(as_text)
        return value if redacted == as_text else redacted
    return value


def redact_partial(text: str) -> str:
    """Redact a transcript that may still grow: a trailing digit run is withheld until final.

    Otherwise a card number read aloud would leak through partials a few digits at a time.
    """
    return StreamingRedactor().feed(text)


class StreamingRedactor:
    """Redacts text that arrives in pieces, holding back a digit run until it is complete.

    A card number can be split across two deltas of a streamed reply; releasing only text
    that cannot be the start of a run means no piece of a long number ever leaves unredacted.
    """

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, piece: str) -> str:
        text = self._pending + piece
        match = _OPEN_RUN_AT_END.search(text)
        cut = match.start() if match else len(text)
        self._pending = text[cut:]
        return redact_digits(text[:cut])

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return redact_digits(text)
