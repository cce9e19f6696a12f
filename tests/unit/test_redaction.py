"""Redaction of long digit runs: what must go, and what must stay."""

from __future__ import annotations

import pytest

from sessions_app.redaction import (
    REDACTED,
    StreamingRedactor,
    redact_digits,
    redact_partial,
    redact_value,
)


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111 1111-1111 1111",
        "378282246310005",  # 15-digit Amex
        "123456789012",  # exactly the minimum
        "DE89370400440532013000",  # digits inside an IBAN
        "4,111,111,111,111,111,111,111",  # Whisper's writing of a card number read as numbers
    ],
)
def test_long_digit_runs_are_redacted(text):
    redacted = redact_digits(f"number {text} ok")
    assert redacted.startswith("number ") and redacted.endswith(" ok")
    assert REDACTED in redacted
    assert sum(ch.isdigit() for ch in redacted) < 12


@pytest.mark.parametrize(
    "text",
    [
        "Meet me on 2024-11-24 at 10:30.",
        "It costs $1,234,567.89 in total.",
        "Call 555-123-4567 or +1 555 123 4567.",  # 10 and 11 digits
        "My number is 07700 900123.",  # 11 digits, UK style
        "Order 12345, room 101, 3 items.",
        "12345678901",  # 11 digits
        "The years 1999 and 2024.",
        "v1.2.3 build 456789",
        "Pick 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 or 12.",  # a list's commas do not group
        "Rooms 1,2,3,4,5,6,7,8,9,10,11,12",
    ],
)
def test_ordinary_numbers_are_kept(text):
    assert redact_digits(text) == text


def test_two_runs_are_redacted_separately():
    text = "cards 4111111111111111 and 5500 0000 0000 0004."
    assert redact_digits(text) == f"cards {REDACTED} and {REDACTED}."


def test_minimum_is_configurable(settings):
    settings.REDACT_MIN_DIGITS = 8
    assert redact_digits("pin 1234 5678") == f"pin {REDACTED}"
    assert redact_digits("pin 1234 567") == "pin 1234 567"


@pytest.mark.parametrize(
    "text",
    [
        "4111\u00a01111\u00a01111\u00a01111",  # no-break space
        "4111\u20091111\u20091111\u20091111",  # thin space
        "4111\u202f1111\u202f1111\u202f1111",  # narrow no-break space
        "4111\u200b1111\u200b1111\u200b1111",  # zero-width space
        "4111  1111  1111  1111",
        "4111.1111.1111.1111",
        "4111 - 1111 - 1111 - 1111",
        "4111\u20131111\u20131111\u20131111",  # en dash
        "4111 \u2014 1111 \u2014 1111 \u2014 1111",  # em dash
        "\u0664\u0661\u0661\u0661" * 4,  # Arabic-Indic digits
        "\uff14\uff11\uff11\uff11" * 4,  # fullwidth digits
        "1234567890123.45",  # a 13-digit amount without commas: indistinguishable
    ],
)
def test_digit_runs_grouped_any_way_are_redacted(text):
    assert redact_digits(f"card {text}, thanks") == f"card {REDACTED}, thanks"


@pytest.mark.parametrize(
    "text",
    [
        "Due 15.11.2024, at 12:30.",
        "Between 2024-11-15 and 2024-11-16.",
        "Total 1,234,567,890,123.45 due",  # grouped by commas: an amount, kept
        "Lines:\n123456\n789012",  # a line break does not group
        "at 12:30:45.123456",
    ],
)
def test_dates_times_and_grouped_amounts_are_kept(text):
    assert redact_digits(text) == text


def test_redact_value_walks_json():
    value = {"card": "4111 1111 1111 1111", "items": [123456789012345, 42, True], "n": None}
    assert redact_value(value) == {"card": REDACTED, "items": [REDACTED, 42, True], "n": None}


def test_partial_withholds_a_digit_run_still_being_spoken():
    assert redact_partial("my card is 4111 1111") == "my card is "
    assert redact_partial("my card is 4111 1111 1111 1111 ok") == f"my card is {REDACTED} ok"


def test_streaming_redactor_never_releases_a_split_number():
    redactor = StreamingRedactor()
    pieces = ["Your card ", "4111 11", "11 1111 ", "1111 is on", " file."]
    out = "".join(redactor.feed(piece) for piece in pieces) + redactor.flush()
    assert out == f"Your card {REDACTED} is on file."


def test_streaming_redactor_holds_a_number_split_after_its_thousands_comma():
    redactor = StreamingRedactor()
    pieces = ["card 4,", "111,1", "11,111,111,111", " done"]
    released = [redactor.feed(piece) for piece in pieces] + [redactor.flush()]
    assert "".join(released) == f"card {REDACTED} done"
    assert not any(char.isdigit() for piece in released for char in piece)


def test_streaming_redactor_releases_short_numbers_on_flush():
    redactor = StreamingRedactor()
    assert redactor.feed("Order 123") == "Order "
    assert redactor.flush() == "123"
