"""Property-based tests of redaction: any grouping of a long number goes, ordinary text stays,
and a stream cut anywhere never lets a piece of a long number through."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from sessions_app.redaction import REDACTED, StreamingRedactor, redact_digits, redact_value

MIN_DIGITS = 12
EXAMPLES = settings(max_examples=100, deadline=None)

# ASCII, Arabic-Indic, Extended Arabic-Indic, Devanagari, fullwidth.
DIGIT_BLOCKS = ["0123456789", "٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹", "०१२३४५६७८९", "０１２３４５６７８９"]
SEPARATORS = [
    " ", "  ", "\u00a0", "\u2009", "\u202f", "\u2007", "\u3000", "\u200b", ".", "-", " - ",
    "\u2013", "\u2014", " \u2013 ", "\u2212", "\u2011", ". ",
]  # fmt: skip

digits_of_one_script = st.sampled_from(DIGIT_BLOCKS).flatmap(
    lambda block: st.lists(st.sampled_from(block), min_size=MIN_DIGITS, max_size=24)
)


@st.composite
def grouped_numbers(draw) -> str:
    """A long number written in groups, with any of the separators people use."""
    digits = draw(digits_of_one_script)
    out = []
    for i, digit in enumerate(digits):
        if i and draw(st.booleans()):
            out.append(draw(st.sampled_from(SEPARATORS)))
        out.append(digit)
    return "".join(out)


words = st.text(alphabet="abcdefghij klmnop,;:!?()", max_size=30)


def digit_count(text: str) -> int:
    return sum(ch.isdecimal() for ch in text)


@EXAMPLES
@given(before=words, number=grouped_numbers(), after=words)
def test_a_grouped_long_number_never_survives(before, number, after):
    redacted = redact_digits(f"{before} {number} {after}")
    assert REDACTED in redacted
    assert digit_count(redacted) == 0


@st.composite
def ordinary_numbers(draw) -> str:
    """Dates, times, comma-grouped amounts and phone-like short numbers."""
    y, m, d = draw(st.integers(1900, 2099)), draw(st.integers(1, 12)), draw(st.integers(1, 28))
    hh, mm = draw(st.integers(0, 23)), draw(st.integers(0, 59))
    amount = draw(st.integers(0, 10**15))
    cents = draw(st.integers(0, 99))
    short = draw(st.integers(0, 10**11 - 1))
    return draw(
        st.sampled_from(
            [
                f"{y}-{m:02}-{d:02}",
                f"{d:02}.{m:02}.{y}",
                f"{d}/{m}/{y}",
                f"{hh:02}:{mm:02}",
                f"{amount:,}.{cents:02}",
                f"{short}",
                f"+{short}",
            ]
        )
    )


@EXAMPLES
@given(
    items=st.lists(ordinary_numbers(), min_size=1, max_size=5),
    joiner=st.sampled_from([", ", " and ", "; ", " then "]),
)
def test_dates_times_amounts_and_short_numbers_are_kept(items, joiner):
    text = f"Noted: {joiner.join(items)}."
    assert redact_digits(text) == text


@EXAMPLES
@given(
    before=words,
    number=grouped_numbers(),
    after=words,
    cuts=st.lists(st.integers(0, 200), max_size=6),
)
def test_a_stream_cut_anywhere_never_releases_a_piece_of_a_long_number(before, number, after, cuts):
    text = f"{before} {number} {after}"
    bounds = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    redactor = StreamingRedactor()
    released = [redactor.feed(text[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
    released.append(redactor.flush())
    assert all(digit_count(piece) < MIN_DIGITS for piece in released)
    assert "".join(released) == redact_digits(text)
    assert digit_count("".join(released)) == 0


@EXAMPLES
@given(number=grouped_numbers(), key=st.text(alphabet="abcxyz_", max_size=5))
def test_tool_arguments_are_redacted_at_any_depth(number, key):
    value = {"args": [{key: number}], "note": f"card {number}"}
    redacted = redact_value(value)
    assert not re.search(r"\d", repr(redacted))
