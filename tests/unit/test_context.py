"""The context window: instructions stay, the oldest turns drop, drops are counted."""

from __future__ import annotations

from sessions_app.context import ContextWindow


def test_messages_start_with_instructions():
    window = ContextWindow("Be brief.", turn_budget=5)
    window.add_user("hi")
    window.add_agent("hello")
    assert window.messages() == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]


def test_no_system_message_without_instructions():
    window = ContextWindow("", turn_budget=5)
    window.add_user("hi")
    assert window.messages() == [{"role": "user", "content": "hi"}]


def test_oldest_turns_drop_past_the_budget():
    window = ContextWindow("Rules.", turn_budget=2)
    dropped = []
    for n in range(1, 5):
        dropped.append(window.add_user(f"user {n}"))
        window.add_agent(f"agent {n}")
    assert dropped == [0, 0, 1, 1]
    assert window.dropped_turns == 2
    assert [m["content"] for m in window.messages()] == [
        "Rules.",
        "user 3",
        "agent 3",
        "user 4",
        "agent 4",
    ]


def test_a_turn_without_reply_has_no_assistant_message():
    window = ContextWindow("", turn_budget=3)
    window.add_user("first")
    window.add_user("second")
    assert window.messages() == [
        {"role": "user", "content": "first"},
        {"role": "user", "content": "second"},
    ]


def test_budget_of_zero_still_keeps_the_current_turn():
    window = ContextWindow("Rules.", turn_budget=0)
    window.add_user("now")
    assert window.messages()[-1] == {"role": "user", "content": "now"}
