"""GET /metrics: operators only; after a voice turn it holds the engines' timings and errors."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from sessions_app.tokens import issue_token
from tests.conftest import assert_api_error, bearer, make_operator
from tests.integration.test_voice_recognition import SENTENCE, send_audio
from tests.speech import silence, speech_pcm

pytestmark = pytest.mark.django_db(transaction=True)


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition: (name, sorted labels) → value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


async def scrape(client: AsyncClient, **headers: str) -> dict:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return samples(response.content.decode())


async def test_anonymous_clients_are_refused(async_client):
    response = await async_client.get("/metrics")
    assert_api_error(response, 401, "unauthorized")
    assert response["WWW-Authenticate"].startswith("Bearer")


async def test_a_session_token_is_not_an_operator(async_client, stream):
    client = await stream()
    response = await async_client.get("/metrics", headers=bearer(issue_token(client.session.id)))
    assert_api_error(response, 403, "forbidden")


async def test_staff_without_the_view_permission_are_refused(async_client):
    user = await sync_to_async(make_operator)("no-rights", permissions=False)
    await async_client.aforce_login(user)
    assert_api_error(await async_client.get("/metrics"), 403, "forbidden")


async def test_after_a_voice_turn_the_engines_timings_and_errors_are_exposed(
    stream, settings, api_token, async_client
):
    settings.STT_ENGINE = "whisper"
    settings.TTS_ENGINE = "silent"
    before = await scrape(async_client, **bearer(api_token))
    client = await stream()

    await send_audio(client, silence(300) + speech_pcm(SENTENCE) + silence(1000), real_time=True)
    await client.receive_until("transcript_final", timeout=30)
    seen = []
    while not seen or seen[-1].get("type") != "turn_metrics":
        event = await client.receive_any(timeout=30)
        if isinstance(event, dict):
            seen.append(event)
    await client.send_raw(text="{not json")  # a bad message: one invalid_json error
    await client.receive_until("error")
    await asyncio.sleep(0.3)  # the loop-lag monitor has woken at least once

    after = await scrape(async_client, **bearer(api_token))

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("voice_stt_seconds_count", engine="whisper") == 1
    assert grew("voice_stt_seconds_sum", engine="whisper") > 0
    assert grew("voice_tts_seconds_count", engine="silent") >= 1
    assert grew("voice_agent_first_token_seconds_count", strategy="echo") == 1
    assert grew("voice_errors_total", code="invalid_json") == 1
    assert after[("voice_live_sessions", ())] >= 1
    assert after[("voice_event_loop_lag_seconds_count", ())] >= 1
    # The turn's waterfall, one observation a stage, as the turn_metrics event said.
    stages = seen[-1]["metrics"]["stages"]
    assert set(stages) >= {"end_of_turn", "recognition", "agent", "synthesis", "speaking"}
    for stage, ms in stages.items():
        assert grew("voice_turn_stage_seconds_count", stage=stage) == 1, stage
        assert grew("voice_turn_stage_seconds_sum", stage=stage) == pytest.approx(ms / 1000)

    # Declared for the turn-taking pipeline to feed: listed, with their help, already.
    body = (await async_client.get("/metrics", headers=bearer(api_token))).content.decode()
    for declared in (
        "voice_turn_stage_seconds histogram",
        "voice_barge_in_stop_seconds histogram",
        "voice_barge_ins_total counter",
    ):
        assert f"# TYPE {declared}" in body
