"""The admin shows sessions with their transcript and tasks, read-only."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from agents_app.models import Agent, Task, ToolInvocation
from sessions_app.models import CallEvent, Session, Utterance

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorded_session() -> Session:
    session = Session.objects.create(agent=Agent.objects.get(name="rules"))
    user = Utterance.objects.create(session=session, role="user", seq=1, text="order 12345?")
    Utterance.objects.create(
        session=session,
        role="agent",
        seq=2,
        text="Order 12345 is shipped.",
        interrupted=True,
        heard_text="Order 12345",
    )
    task = Task.objects.create(session=session, utterance=user, status="succeeded")
    ToolInvocation.objects.create(
        task=task, tool="order_status", arguments={"order_id": "12345"}, status="succeeded"
    )
    return session


@pytest.mark.parametrize(
    "model",
    [
        "sessions_app_session",
        "sessions_app_utterance",
        "agents_app_agent",
        "agents_app_task",
        "agents_app_toolinvocation",
    ],
)
def test_changelists_render(admin_client, recorded_session, model):
    response = admin_client.get(reverse(f"admin:{model}_changelist"))
    assert response.status_code == 200


def test_session_page_shows_transcript_and_tasks(admin_client, recorded_session):
    url = reverse("admin:sessions_app_session_change", args=[recorded_session.pk])
    page = admin_client.get(url).content.decode()
    assert "order 12345?" in page
    assert "Order 12345 is shipped." in page
    assert "Order 12345" in page
    assert "succeeded" in page
    # The transcript is a record: its inline offers no inputs for utterance text.
    assert 'name="utterances-0-text"' not in page


def test_task_page_shows_tool_invocations(admin_client, recorded_session):
    task = Task.objects.get(session=recorded_session)
    page = admin_client.get(reverse("admin:agents_app_task_change", args=[task.pk])).content
    assert b"order_status" in page


def test_sessions_filter_by_status(admin_client, recorded_session):
    Session.objects.create(agent=recorded_session.agent, status="ended")
    response = admin_client.get(reverse("admin:sessions_app_session_changelist") + "?status=ended")
    assert response.context["cl"].result_count == 1


def test_phone_session_shows_caller_call_ids_and_call_events(admin_client):
    session = Session.objects.create(
        agent=Agent.objects.get(name="echo"),
        channel=Session.Channel.ACS,
        caller_id="4:+14255550123",
        call_connection_id="421f0700-e3b0-4a6e-b7c1-8d0b2f3c0a11",
        correlation_id="d6f3ab1c-1e2f-4c5d-9a8b-7c6d5e4f3a2b",
        call_state=Session.CallState.MEDIA_FAILED,
    )
    CallEvent.objects.create(session=session, kind="CallConnected")
    CallEvent.objects.create(
        session=session,
        kind="MediaStreamingFailed",
        result_code=400,
        result_subcode=8581,
        result_message="Transport url is not reachable.",
    )

    listing = admin_client.get(
        reverse("admin:sessions_app_session_changelist"), {"channel__exact": "acs"}
    ).content.decode()
    assert "4:+14255550123" in listing and "Media streaming failed" in listing

    found = admin_client.get(
        reverse("admin:sessions_app_session_changelist"), {"q": "421f0700"}
    ).content.decode()
    assert str(session.pk) in found

    page = admin_client.get(
        reverse("admin:sessions_app_session_change", args=[session.pk])
    ).content.decode()
    for shown in ("421f0700-e3b0-4a6e-b7c1-8d0b2f3c0a11", "MediaStreamingFailed", "8581"):
        assert shown in page
    assert "Transport url is not reachable." in page
    assert 'name="call_events-0-kind"' not in page  # a record, not a form


def change_url(session: Session) -> str:
    return reverse("admin:sessions_app_session_change", args=[session.pk])


def test_an_ended_session_is_shown_not_edited(admin_client, recorded_session):
    Session.objects.filter(pk=recorded_session.pk).update(status="ended", end_reason="client_ended")
    page = admin_client.get(change_url(recorded_session)).content.decode()
    for field in ("status", "channel", "agent", "end_reason", "turn_budget"):
        assert f'name="{field}"' not in page, field
    assert 'name="_save"' not in page

    response = admin_client.post(
        change_url(recorded_session),
        {"status": "active", "channel": "acs", "end_reason": "", "turn_budget": 5},
    )
    assert response.status_code == 403
    recorded_session.refresh_from_db()
    assert (recorded_session.status, recorded_session.channel) == ("ended", "web")
    assert recorded_session.turn_budget != 5


def test_a_live_session_keeps_its_status_channel_and_agent(admin_client, recorded_session):
    page = admin_client.get(change_url(recorded_session)).content.decode()
    for field in ("status", "channel", "agent"):
        assert f'name="{field}"' not in page, field


def test_an_ended_session_never_becomes_active_again(recorded_session):
    Session.objects.filter(pk=recorded_session.pk).update(status="failed")
    recorded_session.refresh_from_db()
    recorded_session.status = Session.Status.ACTIVE
    with pytest.raises(ValidationError):
        recorded_session.save()
    assert Session.objects.get(pk=recorded_session.pk).status == "failed"


def test_confidence_shows_two_decimals(admin_client, recorded_session):
    Utterance.objects.filter(session=recorded_session, seq=1).update(confidence=0.8765432101234567)
    page = admin_client.get(change_url(recorded_session)).content.decode()
    assert "0.88" in page and "0.8765" not in page
    listing = admin_client.get(reverse("admin:sessions_app_utterance_changelist")).content.decode()
    assert "0.88" in listing and "0.8765" not in listing


def test_session_list_counts_agent_turns_and_the_cut_ones(admin_client, recorded_session):
    Session.objects.filter(pk=recorded_session.pk).update(turn_count=4, interrupted_turn_count=2)
    listing = admin_client.get(reverse("admin:sessions_app_session_changelist")).content.decode()
    assert "turns (cut)" in listing.lower()
    assert "4 (2)" in listing


def test_agent_turns_show_their_timings_and_the_session_its_p50_and_max(admin_client):
    session = Session.objects.create(agent=Agent.objects.get(name="rules"))
    for seq, agent_ms in [(1, 100), (2, 300), (3, 200)]:
        Utterance.objects.create(
            session=session,
            role="agent",
            seq=seq,
            text="Hello.",
            turn_metrics={
                "cut_by": "",
                "end_of_turn": None,
                "marks": {"transcript_final": 0, "first_token": agent_ms},
                "stages": {"agent": agent_ms, "response": agent_ms},
                "barge_ins": [
                    {
                        "outcome": "resumed",
                        "source": None,
                        "marks": {"onset": 0, "pause": 40, "resume": 400},
                        "stages": {"pause": 40, "decision": 360, "silenced": 40},
                    }
                ]
                if seq == 3
                else [],
            },
        )

    page = admin_client.get(change_url(session)).content.decode()

    assert "agent 100 · response 100 ms" in page
    assert "barge-in resumed: pause 40, decision 360, silenced 40 ms" in page
    assert "agent 200 / 300 · response 200 / 300 ms over 3 turns" in page
    assert admin_client.get(reverse("admin:sessions_app_session_add")).status_code == 200
