"""The `openai` agent through the real SDK, against a fake OpenAI server on loopback."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from agents_app.models import Task, ToolInvocation
from agents_app.tools import TOOLS, order_status
from sessions_app.models import Utterance
from tests.fakes.openai_server import ErrorReply, Hang, TextReply, ToolCallReply

pytestmark = pytest.mark.django_db(transaction=True)

INSTRUCTIONS = "You are a helpful voice assistant."


def deltas_of(events: list[dict[str, Any]]) -> list[str]:
    return [e["delta"] for e in events if e["type"] == "agent_response" and not e["final"]]


def final_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    finals = [e for e in events if e["type"] == "agent_response" and e["final"]]
    assert len(finals) == 1, [e["type"] for e in events]
    return finals[0]


def errors_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "error"]


async def say_until_error(client: Any, text: str) -> list[dict[str, Any]]:
    await client.send(type="text", text=text, final=True)
    return await client.receive_until("error", timeout=10)


async def test_streamed_pieces_arrive_as_deltas_and_the_request_is_complete(
    fake_openai, openai_stream
):
    fake_openai.script(TextReply(["Your order ", "is on ", "its way", "."]))
    client = await openai_stream()

    events = await client.reply_to("where is my order?")

    deltas = deltas_of(events)
    assert len(deltas) >= 2
    assert "".join(deltas) == final_of(events)["text"] == "Your order is on its way."
    assert errors_of(events) == []

    [request] = fake_openai.requests
    assert request.headers["Authorization"] == "Bearer test-key"
    body = request.body
    assert body["model"] == "gpt-test"
    assert body["stream"] is True
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][0]["content"].startswith(INSTRUCTIONS)
    assert body["messages"][1:] == [{"role": "user", "content": "where is my order?"}]
    assert body["tools"] == [TOOLS["order_status"].spec(), TOOLS["account_balance"].spec()]

    task = await Task.objects.aget(session=client.session)
    assert task.status == Task.Status.SUCCEEDED
    assert task.output == {"text": "Your order is on its way."}


async def test_a_tool_call_runs_the_tool_and_sends_its_result_back(fake_openai, openai_stream):
    fake_openai.script(
        ToolCallReply("order_status", ['{"order', '_id": "A-', '123"}'], call_id="call_42"),
        TextReply(["It has ", "shipped."]),
    )
    expected = await order_status({"order_id": "A-123"})
    client = await openai_stream()

    events = await client.reply_to("status of order A-123?")

    [tool_event] = [e for e in events if e["type"] == "tool_invocation"]
    assert tool_event["tool"] == "order_status"
    assert tool_event["status"] == "succeeded"
    assert tool_event["arguments"] == {"order_id": "A-123"}
    assert tool_event["result"] == expected and "status" in tool_event["result"]
    assert "".join(deltas_of(events)) == final_of(events)["text"] == "It has shipped."

    invocation = await ToolInvocation.objects.aget(task__session=client.session)
    assert invocation.tool == "order_status"
    assert invocation.arguments == {"order_id": "A-123"}
    assert invocation.status == ToolInvocation.Status.SUCCEEDED
    assert invocation.result == expected

    first, second = fake_openai.requests_to()
    assert second["messages"][: len(first["messages"])] == first["messages"]
    assistant, tool = second["messages"][len(first["messages"]) :]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"] == [
        {
            "id": "call_42",
            "type": "function",
            "function": {"name": "order_status", "arguments": '{"order_id": "A-123"}'},
        }
    ]
    assert tool["role"] == "tool" and tool["tool_call_id"] == "call_42"
    assert json.loads(tool["content"]) == expected


async def test_tool_arguments_with_a_card_number_are_stored_and_shown_redacted(
    fake_openai, openai_stream
):
    fake_openai.script(
        ToolCallReply("order_status", ['{"order_id": "4111 1111 ', '1111 1111"}']),
        TextReply(["Done."]),
    )
    client = await openai_stream()

    events = await client.reply_to("check my order")

    [tool_event] = [e for e in events if e["type"] == "tool_invocation"]
    assert tool_event["arguments"] == {"order_id": "[redacted]"}
    assert tool_event["result"]["order_id"] == "[redacted]"
    invocation = await ToolInvocation.objects.aget(task__session=client.session)
    assert invocation.arguments == {"order_id": "[redacted]"}
    assert "1111" not in json.dumps(invocation.result)


async def test_card_numbers_are_redacted_both_ways(fake_openai, openai_stream):
    fake_openai.script(TextReply(["Your reference is ", "1234 5678 ", "9012 3456", "."]))
    client = await openai_stream()

    events = await client.reply_to("my card is 4111 1111 1111 1111")

    sent = json.dumps(fake_openai.requests_to()[0])
    assert "my card is [redacted]" in sent
    assert "4111" not in sent and "1111" not in sent

    deltas = deltas_of(events)
    for digits in ("1234", "5678", "9012", "3456"):
        assert not any(digits in delta for delta in deltas), deltas
    assert "".join(deltas) == final_of(events)["text"] == "Your reference is [redacted]."

    texts = [u.text async for u in Utterance.objects.filter(session=client.session)]
    assert texts == ["my card is [redacted]", "Your reference is [redacted]."]
    task = await Task.objects.aget(session=client.session)
    assert "1234" not in json.dumps(task.output) and "4111" not in json.dumps(task.input)


async def test_a_rate_limit_is_retried_once_by_our_policy(fake_openai, openai_stream):
    fake_openai.script(ErrorReply(429, "Rate limit reached"), TextReply(["Hello ", "again."]))
    client = await openai_stream()

    events = await client.reply_to("hi")

    assert errors_of(events) == []
    assert final_of(events)["text"] == "Hello again."
    # Two requests: the SDK did not retry on its own, and our policy retried exactly once.
    assert len(fake_openai.requests_to()) == 2


async def test_server_errors_past_the_retries_are_reported_and_the_session_recovers(
    settings, fake_openai, openai_stream
):
    attempts = settings.PROVIDER_RETRY_ATTEMPTS
    fake_openai.script(*[ErrorReply(500, "The server had an error")] * attempts)
    client = await openai_stream()

    events = await say_until_error(client, "hello?")

    assert [e["type"] for e in events] == ["transcript_final", "error"]
    error = events[-1]
    assert (error["code"], error["retryable"], error["source"]) == (
        "agent_unavailable",
        True,
        "agent",
    )
    assert len(fake_openai.requests_to()) == attempts
    task = await Task.objects.aget(session=client.session)
    assert task.status == Task.Status.FAILED
    assert task.error.startswith("agent_unavailable")

    fake_openai.script(TextReply(["I am ", "back."]))
    events = await client.reply_to("are you there?")

    assert errors_of(events) == []
    assert final_of(events)["text"] == "I am back."
    assert len(fake_openai.requests_to()) == attempts + 1
    assert fake_openai.requests_to()[-1]["messages"][-1] == {
        "role": "user",
        "content": "are you there?",
    }
    statuses = [t.status async for t in Task.objects.filter(session=client.session)]
    assert statuses == [Task.Status.FAILED, Task.Status.SUCCEEDED]


@pytest.mark.parametrize("status", [400, 401])
async def test_a_refused_request_is_not_retried(fake_openai, openai_stream, status):
    fake_openai.script(ErrorReply(status, "Refused"), TextReply(["unused"]))
    client = await openai_stream()

    events = await say_until_error(client, "hello?")

    error = events[-1]
    assert (error["code"], error["retryable"], error["source"]) == (
        "agent_rejected",
        False,
        "agent",
    )
    assert str(status) in error["message"]
    assert len(fake_openai.requests_to()) == 1
    task = await Task.objects.aget(session=client.session)
    assert task.status == Task.Status.FAILED


async def test_a_hung_server_times_out(settings, fake_openai, openai_stream):
    settings.OPENAI_TIMEOUT_S = 0.25
    attempts = settings.PROVIDER_RETRY_ATTEMPTS
    fake_openai.script(*[Hang()] * attempts)
    client = await openai_stream()

    events = await say_until_error(client, "hello?")

    error = events[-1]
    assert (error["code"], error["retryable"], error["source"]) == (
        "agent_timeout",
        True,
        "agent",
    )
    assert deltas_of(events) == []
    assert len(fake_openai.requests_to()) == attempts


async def test_a_stall_after_text_has_streamed_is_reported_not_retried(
    settings, fake_openai, openai_stream
):
    settings.OPENAI_TIMEOUT_S = 0.25
    fake_openai.script(TextReply(["Let me ", "check "], stall_s=30), TextReply(["unused"]))
    client = await openai_stream()

    events = await say_until_error(client, "hello?")

    assert "".join(deltas_of(events)) == "Let me check "
    assert events[-1]["code"] == "agent_timeout"
    assert len(fake_openai.requests_to()) == 1
    task = await Task.objects.aget(session=client.session)
    assert task.status == Task.Status.FAILED
    assert task.output == {"text": "Let me check "}


async def test_a_barge_in_stops_the_model_stream_and_the_model_hears_what_was_said(
    fake_openai, openai_stream
):
    fake_openai.script(TextReply(["Let me ", "check "], stall_s=30), TextReply(["Sure."]))
    client = await openai_stream()
    await client.send(type="text", text="hello?", final=True)
    heard = ""
    while heard != "Let me check ":
        event = await client.receive()
        assert event["type"] in {"transcript_final", "agent_response"}, event
        heard += event.get("delta", "")

    await client.send(type="interrupt")
    barge_in = await client.receive()

    assert barge_in["type"] == "barge_in"
    assert (barge_in["heard_text"], barge_in["source"]) == ("Let me check ", "interrupt")
    task = await Task.objects.aget(session=client.session)
    assert task.status == Task.Status.CANCELLED

    events = await client.reply_to("go on")

    assert final_of(events)["text"] == "Sure."
    assert fake_openai.requests_to()[-1]["messages"][1:] == [
        {"role": "user", "content": "hello?"},
        {"role": "assistant", "content": "Let me check "},
        {"role": "user", "content": "go on"},
    ]


async def test_a_server_that_cannot_be_reached_is_unavailable_not_a_timeout(
    settings, fake_openai, openai_stream
):
    """The SDK's aiohttp transport reports a refused connection as a connect timeout; the
    caller is told the agent is unreachable, which is what happened."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens once it is closed
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{port}/v1"
    client = await openai_stream()

    events = await say_until_error(client, "hello?")

    error = events[-1]
    assert (error["code"], error["retryable"], error["source"]) == (
        "agent_unavailable",
        True,
        "agent",
    )
    assert "could not reach OpenAI" in error["message"]
