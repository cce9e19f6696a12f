"""Nothing left behind, one socket per session, and the per-session bounds: a consumer that
fails ends its session, the sweep ends what a dead process or an unused token left active,
and a flood of audio is dropped without slowing another session."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.utils import timezone

from sessions_app import liveness, shutdown
from sessions_app.models import Session
from sessions_app.pipeline.turns import Conversation
from sessions_app.tokens import issue_token
from tests.conftest import StreamClient, make_session

pytestmark = pytest.mark.django_db(transaction=True)

FRAME = b"\0\0" * 320  # 20 ms of silence at 16 kHz


async def test_a_failing_consumer_ends_its_session_and_leaves_the_registry(stream, monkeypatch):
    client = await stream()

    async def fail(self, text, **kwargs):
        raise RuntimeError("a bug in the conversation")

    monkeypatch.setattr(Conversation, "hear_text", fail)
    await client.send(type="text", text="hello", final=True)

    closed = await client.communicator.receive_output(timeout=5)
    while closed["type"] != "websocket.close":  # session_ended may come first
        closed = await client.communicator.receive_output(timeout=5)
    assert closed["code"] == 4500
    session = await Session.objects.aget(pk=client.session.id)
    assert (session.status, session.end_reason) == ("ended", "connection_lost")
    assert client.session.id not in shutdown.live_session_ids()


async def test_a_second_socket_is_refused_and_the_first_keeps_the_session(stream):
    first = await stream()
    second = StreamClient(first.session.id, issue_token(first.session.id))
    await second.connect()
    refusal = await second.receive()
    assert refusal["code"] == "already_connected"
    closed = await second.communicator.receive_output(timeout=3)
    assert (closed["type"], closed["code"]) == ("websocket.close", 4409)

    seen = await first.reply_to("still mine")
    assert seen[0]["text"] == "still mine"


async def test_an_ended_session_cannot_be_reopened_by_its_old_token(stream):
    client = await stream()
    await client.send(type="end")
    await client.receive_until("session_ended")
    again = StreamClient(client.session.id, issue_token(client.session.id))
    await again.connect()
    assert (await again.receive())["code"] == "session_ended"


async def stale_session(process_id: str, beat_ago_s: float) -> Session:
    now = timezone.now()
    session = await make_session()
    await Session.objects.filter(pk=session.pk).aupdate(
        connected_at=now - timedelta(seconds=beat_ago_s + 1),
        process_id=process_id,
        heartbeat_at=now - timedelta(seconds=beat_ago_s),
    )
    return session


async def test_the_sweep_ends_the_sessions_of_a_process_that_stopped_beating(settings):
    settings.LIVENESS_INTERVAL_S = 10
    settings.LIVENESS_MISSED_BEATS = 3
    dead = await stale_session("elsewhere:4242:deadbeef", beat_ago_s=31)
    alive = await stale_session("elsewhere:4343:cafecafe", beat_ago_s=5)

    assert await liveness.sweep() == 1

    dead = await Session.objects.aget(pk=dead.pk)
    assert (dead.status, dead.end_reason) == ("ended", "server_lost")
    assert (await Session.objects.aget(pk=alive.pk)).status == "active"
    assert await liveness.sweep() == 0  # ending twice changes nothing


async def test_the_sweep_ends_sessions_never_connected_within_the_token_lifetime(settings):
    settings.SESSION_TOKEN_MAX_AGE_S = 60
    unused = await make_session()
    fresh = await make_session()
    await Session.objects.filter(pk=unused.pk).aupdate(
        created_at=timezone.now() - timedelta(seconds=61)
    )

    assert await liveness.sweep() == 1

    unused = await Session.objects.aget(pk=unused.pk)
    assert (unused.status, unused.end_reason) == ("ended", "never_connected")
    assert (await Session.objects.aget(pk=fresh.pk)).status == "active"


async def test_the_process_sweeper_keeps_its_own_sessions_beating_and_ends_a_dead_ones(
    stream, settings
):
    settings.LIVENESS_INTERVAL_S = 0.05
    settings.LIVENESS_MISSED_BEATS = 20  # 1 s: a loaded machine never makes ours look dead
    dead = await stale_session("elsewhere:4242:deadbeef", beat_ago_s=60)
    ours = await stream()  # tracking it starts this process's sweeper
    try:
        for _ in range(200):
            if (await Session.objects.aget(pk=dead.pk)).status == "ended":
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # several more rounds: ours must stay live through them
        ours_now = await Session.objects.aget(pk=ours.session.id)
        assert (ours_now.status, ours_now.process_id) == ("active", liveness.PROCESS_ID)
        assert (await Session.objects.aget(pk=dead.pk)).end_reason == "server_lost"
    finally:
        shutdown.sweeper.stop()


async def test_an_audio_flood_is_dropped_while_another_session_keeps_real_time(stream, settings):
    settings.AUDIO_AHEAD_BUDGET_MS = 2000
    flooder, steady = await stream(), await stream()

    for _ in range(500):  # 10 s of audio at once
        await flooder.send_raw(data=FRAME)
    for _ in range(50):  # 1 s of audio, as a microphone sends it
        await steady.send_raw(data=FRAME)
        await asyncio.sleep(0.02)
    for client in (flooder, steady):
        await client.send(type="text", text="marker", final=False)

    flooded = await flooder.receive_until("transcript_partial", timeout=10)
    overruns = [e for e in flooded if e["type"] == "error" and e["code"] == "audio_overrun"]
    # 400 frames dropped; the caller is told about once a second, not once a frame.
    assert 1 <= len(overruns) <= 5
    assert overruns[0]["source"] == "client" and not overruns[0]["retryable"]
    steady_seen = await steady.receive_until("transcript_partial", timeout=10)
    assert [e["type"] for e in steady_seen] == ["transcript_partial"]
    session = await Session.objects.aget(pk=flooder.session.id)
    assert session.error_count == len(overruns)


async def test_a_full_process_refuses_new_sessions(stream, settings, async_client):
    settings.MAX_LIVE_SESSIONS = 1
    await stream()
    response = await async_client.post("/api/sessions", {}, content_type="application/json")
    assert response.status_code == 503
    assert response.json()["code"] == "at_capacity"
    session = await make_session()
    refused = StreamClient(session.id, issue_token(session.id))
    await refused.connect()
    assert (await refused.receive())["code"] == "at_capacity"
    closed = await refused.communicator.receive_output(timeout=3)
    assert closed["code"] == 4503
