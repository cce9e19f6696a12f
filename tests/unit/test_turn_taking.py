"""The turn-taking object on its own: stream times in, commands out, no sockets or models."""

from __future__ import annotations

import pytest

from sessions_app.pipeline.turn_taking import (
    AnswerHeld,
    CheckTurnEnd,
    ContinueUtterance,
    CutReply,
    EndOfTurn,
    EndUtterance,
    PauseReply,
    ResumeReply,
    TurnTaker,
    TurnTakingConfig,
    Verdict,
    words_of,
)

CONFIG = TurnTakingConfig(
    backchannels=tuple(
        tuple(words_of(phrase)) for phrase in ["mhm", "uh huh", "okay", "yeah", "right", "i see"]
    ),
    backchannel_max_ms=800,
    max_silence_ms=1500,
    pause_ms=200,
    continuation_ms=1000,
    max_utterance_ms=15_000,
    model_threshold=0.5,
    min_interjection_confidence=0.45,
)


@pytest.fixture
def taker() -> TurnTaker:
    return TurnTaker(CONFIG)


@pytest.fixture
def replying(taker: TurnTaker) -> TurnTaker:
    """The agent is speaking; the caller has said nothing yet."""
    taker.reply_started()
    return taker


def interject(taker: TurnTaker, text: str, start: int = 1000, length: int = 300):
    """The caller says `text` over the reply: onset, confirmation, pause, and its final."""
    assert taker.speech_suspected(start) == [PauseReply()]
    assert taker.speech_started(start) == []
    assert taker.audio(start + length) == []
    assert taker.speech_paused(start + length) == [
        EndUtterance(EndOfTurn("interjection", silence_ms=200))
    ]
    return taker.final(text, start + length + 200)


# --- the agent's reply and the caller's voice ------------------------------------------------


def test_a_false_alarm_pauses_the_reply_then_resumes_it(replying: TurnTaker):
    assert replying.speech_suspected(1000) == [PauseReply()]
    assert replying.speech_dismissed(1100) == [ResumeReply()]
    # Playing again: the next sign of the caller pauses it again.
    assert replying.speech_suspected(3000) == [PauseReply()]


def test_evidence_while_the_agent_is_silent_pauses_nothing(taker: TurnTaker):
    assert taker.speech_suspected(1000) == []
    assert taker.speech_dismissed(1100) == []


@pytest.mark.parametrize("said", ["okay", "Mhm.", "Uh huh.", "yeah, right", "Mm-hmm.", "I see."])
def test_an_acknowledgement_over_the_reply_resumes_it(replying: TurnTaker, said: str):
    heard = interject(replying, said)

    assert heard.verdict is Verdict.BACKCHANNEL
    assert heard.commands == [ResumeReply()]
    assert not heard.answer
    assert heard.end == EndOfTurn("interjection", silence_ms=200)


@pytest.mark.parametrize("said", ["Stop.", "Wait.", "No.", "Hold on.", "okay stop"])
def test_anything_else_over_the_reply_cuts_it_and_is_answered(replying: TurnTaker, said: str):
    heard = interject(replying, said)

    assert heard.verdict is Verdict.TURN
    assert heard.commands == [CutReply("speech")]
    assert heard.answer


def test_a_cough_confirmed_as_speech_but_with_no_words_resumes_the_reply(replying: TurnTaker):
    heard = interject(replying, "")

    assert heard.verdict is Verdict.NOISE
    assert heard.commands == [ResumeReply()]


def test_a_partial_that_is_no_acknowledgement_cuts_at_once(replying: TurnTaker):
    replying.speech_suspected(1000)
    replying.speech_started(1000)

    assert replying.partial("okay") == []
    assert replying.partial("okay so I") == [CutReply("speech")]
    # The rest is an ordinary turn: it ends by the model, not at its first pause.
    assert replying.speech_paused(2500) == [CheckTurnEnd(2500)]


def test_speech_longer_than_a_backchannel_cuts_the_reply(replying: TurnTaker):
    replying.speech_suspected(1000)
    replying.speech_started(1000)

    # 800 ms voiced and the 200 ms pause that would have followed: still no pause.
    assert replying.audio(2000) == []
    assert replying.audio(2020) == [CutReply("speech")]
    assert replying.audio(2040) == []


def test_a_long_acknowledgement_is_no_backchannel_but_a_long_pause_before_its_end_is_fine(
    replying: TurnTaker,
):
    replying.speech_suspected(1000)
    replying.speech_started(1000)
    assert replying.audio(1950) == []  # 660 ms voiced, then quiet: not cut for length
    assert replying.speech_paused(1660) == [EndUtterance(EndOfTurn("interjection", 200))]
    assert replying.final("Mm-hm.", 1860).verdict is Verdict.BACKCHANNEL

    replying.speech_suspected(3000)
    replying.speech_started(3000)
    replying.speech_paused(3900)  # voiced 900 ms: longer than a backchannel
    heard = replying.final("Okay.", 4100)
    assert heard.verdict is Verdict.TURN and heard.commands == [CutReply("speech")]


def test_an_interjection_whose_words_are_lost_cuts_the_reply(replying: TurnTaker):
    replying.speech_suspected(1000)
    replying.speech_started(1000)
    replying.speech_paused(1300)

    assert replying.recognition_failed() == [CutReply("speech")]
    assert replying.speech_suspected(3000) == [], "nothing plays any more"


def test_a_turn_whose_words_are_lost_starts_nothing(taker: TurnTaker):
    taker.speech_started(1000)
    taker.speech_paused(2000)

    assert taker.recognition_failed() == []
    assert taker.silence_limit() == [], "the utterance is over"


def test_lost_words_after_a_false_alarm_resume_the_reply(replying: TurnTaker):
    replying.speech_suspected(1000)

    assert replying.recognition_failed() == [ResumeReply()]


def test_a_reply_cut_elsewhere_is_no_longer_paused_or_resumed(replying: TurnTaker):
    replying.speech_suspected(1000)
    replying.reply_ended()  # e.g. an operator's interrupt

    assert replying.speech_dismissed(1100) == []


# --- the end of the caller's turn ---------------------------------------------------------------


def speak(taker: TurnTaker, start: int = 0, until: int = 2000) -> None:
    assert taker.speech_started(start) == []
    assert taker.speech_paused(until) == [CheckTurnEnd(until)]


def test_the_model_ends_the_turn_at_a_pause(taker: TurnTaker):
    speak(taker)

    commands = taker.turn_check(2250, 2000, probability=0.9, words="What's my balance?")

    assert commands == [EndUtterance(EndOfTurn("model", silence_ms=250, probability=0.9))]
    heard = taker.final("What's my balance?", 2260)
    assert heard.verdict is Verdict.TURN and heard.answer
    assert heard.end == EndOfTurn("model", silence_ms=250, probability=0.9)


def test_complete_words_end_the_turn_when_the_model_hesitates(taker: TurnTaker):
    speak(taker)

    commands = taker.turn_check(2250, 2000, probability=0.2, words="I lost my card.")

    assert commands == [EndUtterance(EndOfTurn("words", silence_ms=250, probability=0.2))]


def test_unfinished_says_wait_then_the_longest_silence_ends_the_turn(taker: TurnTaker):
    speak(taker)

    assert taker.turn_check(2250, 2000, probability=0.1, words=None) == []
    assert taker.silence_limit() == [EndUtterance(EndOfTurn("silence", silence_ms=1500))]
    heard = taker.final("I would like to check", 3500)
    assert heard.verdict is Verdict.TURN and heard.answer


@pytest.mark.parametrize(
    "words", ["I want to order a pizza and", "My number is um.", "It's for", "Send it to?"]
)
def test_a_hanging_last_word_waits_whatever_the_model_says(taker: TurnTaker, words: str):
    speak(taker)

    assert taker.turn_check(2250, 2000, probability=0.95, words=words) == []


def test_a_check_after_the_caller_spoke_again_is_ignored(taker: TurnTaker):
    speak(taker)
    taker.speech_resumed(2100)

    assert taker.turn_check(2300, 2000, probability=0.99, words="Yes.") == []


def test_the_longest_utterance_ends_the_turn(taker: TurnTaker):
    taker.speech_started(0)

    assert taker.audio(14_980) == []
    assert taker.audio(15_000) == [EndUtterance(EndOfTurn("max_length", silence_ms=0))]


def test_a_final_that_hangs_is_held_then_answered_after_the_longest_silence(taker: TurnTaker):
    speak(taker)
    taker.turn_check(2250, 2000, probability=0.9, words="Check my balance.")  # the words changed

    heard = taker.final("Check my balance and", 2300)

    assert heard.verdict is Verdict.HELD and not heard.answer
    assert taker.audio(3700) == []
    assert taker.audio(3800) == [AnswerHeld()]


def test_speech_after_a_held_turn_continues_it(taker: TurnTaker):
    speak(taker)
    taker.turn_check(2250, 2000, probability=0.9, words="Check my balance.")
    taker.final("Check my balance and", 2300)

    assert taker.speech_started(2900) == [ContinueUtterance()]
    assert taker.speech_paused(4000) == [CheckTurnEnd(4000)]
    taker.turn_check(4250, 4000, probability=0.9, words="my savings.")
    heard = taker.final("my savings.", 4300)

    assert heard.verdict is Verdict.CONTINUATION and heard.answer
    assert taker.audio(9000) == []  # the held turn was answered with its continuation


# --- continuing a turn the agent has started to answer ------------------------------------------


def test_going_on_right_after_the_turn_drops_the_reply_and_continues_it(taker: TurnTaker):
    speak(taker)
    taker.turn_check(2250, 2000, probability=0.9, words="I'd like a table.")
    taker.final("I'd like a table.", 2300)
    taker.reply_started()

    assert taker.speech_suspected(2900) == [PauseReply()]
    assert taker.speech_started(2900) == [CutReply("continuation"), ContinueUtterance()]
    assert taker.speech_paused(3800) == [CheckTurnEnd(3800)]
    taker.turn_check(4000, 3800, probability=0.9, words="For two, tonight.")
    heard = taker.final("For two, tonight.", 4050)

    assert heard.verdict is Verdict.CONTINUATION and heard.answer


def test_speech_well_after_the_turn_is_an_interjection_not_a_continuation(taker: TurnTaker):
    speak(taker)
    taker.turn_check(2250, 2000, probability=0.9, words="Tell me a story.")
    taker.final("Tell me a story.", 2300)
    taker.reply_started()

    taker.speech_suspected(3400)
    assert taker.speech_started(3400) == []
    assert taker.speech_paused(3700) == [EndUtterance(EndOfTurn("interjection", 200))]


def test_a_check_for_an_earlier_pause_is_ignored(taker: TurnTaker):
    speak(taker)
    taker.speech_resumed(2100)
    assert taker.speech_paused(2600) == [CheckTurnEnd(2600)]

    assert taker.turn_check(2700, 2000, probability=0.99, words=None) == []
    assert taker.turn_check(2800, 2600, probability=0.99, words=None) == [
        EndUtterance(EndOfTurn("model", silence_ms=200, probability=0.99))
    ]


def test_a_confident_model_ends_the_turn_before_the_words_are_decoded(taker: TurnTaker):
    speak(taker)

    assert taker.turn_check(2060, 2000, probability=0.3, words=None) == []
    assert taker.turn_check(2300, 2000, probability=0.3, words="What's my balance?") == [
        EndUtterance(EndOfTurn("words", silence_ms=300, probability=0.3))
    ]


@pytest.mark.parametrize(
    ("said", "confidence", "resumes"),
    [
        ("Can I make him?", 0.31, True),  # espeak's "mhm", as Whisper spells it
        ("Uh-uh", 0.28, True),
        ("Stop!", 0.65, False),
        ("Wait.", 0.49, False),
        ("Stop!", None, False),  # a recognizer that gives no confidence: words decide
    ],
)
def test_a_short_murmur_the_recognizer_doubts_resumes_the_reply(
    replying: TurnTaker, said: str, confidence: float | None, resumes: bool
):
    replying.speech_suspected(1000)
    replying.speech_started(1000)
    replying.speech_paused(1400)

    heard = replying.final(said, 1600, confidence)

    assert (heard.commands == [ResumeReply()]) is resumes
    assert (heard.verdict is Verdict.BACKCHANNEL) is resumes
