"""The sentence splitter: a reply, streamed in pieces, cut into what is synthesised at once."""

from __future__ import annotations

import pytest

from sessions_app.pipeline.playback import SentenceSplitter


def split(deltas: list[str], early_first_clause: bool = True) -> list[str]:
    splitter = SentenceSplitter(early_first_clause=early_first_clause)
    pieces = [piece for delta in deltas for piece in splitter.feed(delta)]
    return pieces + splitter.flush()


def streamed(text: str, size: int = 3) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def test_sentences_come_out_whole_as_each_completes():
    reply = "Your order shipped. It arrives Friday! Anything else?"

    assert split(streamed(reply), early_first_clause=False) == [
        "Your order shipped.",
        "It arrives Friday!",
        "Anything else?",
    ]


def test_the_first_clause_comes_out_before_its_sentence_is_complete():
    splitter = SentenceSplitter()

    assert splitter.feed("Of course, I can") == ["Of course,"]
    assert splitter.feed(" help, gladly. Then, we") == ["I can help, gladly."]
    assert splitter.flush() == ["Then, we"]


@pytest.mark.parametrize(
    ("reply", "pieces"),
    [
        # A lone word is too short to say alone: the cut waits for the next comma.
        ("Okay, sure, I will do that.", ["Okay, sure,", "I will do that."]),
        ("Sure; I am on it now.", ["Sure; I am on it now."]),
        ("I'm sorry; that failed.", ["I'm sorry;", "that failed."]),
        # A colon introduces what follows; numbers' commas are not clause ends.
        ("You said: hello, friend", ["You said: hello,", "friend"]),
        ("About 1,000,000 people came, really.", ["About 1,000,000 people came,", "really."]),
        ("No commas here at all.", ["No commas here at all."]),
    ],
)
def test_only_a_first_clause_of_two_words_or_more_is_cut(reply, pieces):
    assert split(streamed(reply)) == pieces
    assert " ".join(pieces) == reply


def test_only_the_first_sentence_gives_a_clause():
    reply = "Done. Next, we check your balance, then the fees."

    assert split([reply]) == ["Done.", "Next, we check your balance, then the fees."]
