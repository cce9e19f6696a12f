"""Strings made storable: lone surrogates and NULs go, everything else stays."""

from __future__ import annotations

import json

import pytest

from sessions_app.text import clean_text


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ('"\\ud800"', "\ufffd"),
        ('"a\\udfffb"', "a\ufffdb"),
        ('"\\ud83d\\ude00 ok"', "\U0001f600 ok"),  # an escaped pair is one valid character
        ('"nul\\u0000here"', "nul\ufffdhere"),
        ('"ÄÖ ١٢ 日本"', "ÄÖ ١٢ 日本"),
    ],
)
def test_clean_text(raw, clean):
    cleaned = clean_text(json.loads(raw))
    assert cleaned == clean
    cleaned.encode("utf-8")  # storable
