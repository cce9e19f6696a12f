"""Operator control over REST reaches the session's consumer through the channel-layer group.

One mixin of tests, run once per channel layer: in-memory, and real Redis.
"""

from __future__ import annotations

import pytest
from django.test import AsyncClient

from sessions_app.models import Session
from tests.integration.test_barge_in_text import HEARD, start_gated_reply

pytestmark = pytest.mark.django_db(transaction=True)


class OperatorControlTests:
    async def test_rest_interrupt_stops_the_reply(self, stream, gated_agent, operator_client):
        client = await stream(agent="gated")
        await start_gated_reply(client)

        response = await operator_client.post(f"/api/sessions/{client.session.id}/interrupt")

        assert response.status_code == 202
        barge_in = await client.receive()
        assert barge_in["type"] == "barge_in"
        assert (barge_in["source"], barge_in["heard_text"]) == ("operator", HEARD)
        assert (await client.receive_turn_metrics())["cut_by"] == "operator"
        assert await client.communicator.receive_nothing(timeout=0.2)

    async def test_rest_end_ends_the_live_session(self, stream, gated_agent, operator_client):
        client = await stream(agent="gated")
        await start_gated_reply(client)

        response = await operator_client.post(f"/api/sessions/{client.session.id}/end")

        assert response.status_code == 200
        assert (await client.receive_turn_metrics())["cut_by"] == "session_end"
        ended = await client.receive()
        assert (ended["type"], ended["reason"]) == ("session_ended", "operator_ended")
        closed = await client.communicator.receive_output(timeout=1)
        assert closed == {"type": "websocket.close", "code": 1000}
        session = await Session.objects.aget(pk=client.session.id)
        assert (session.status, session.end_reason) == ("ended", "operator_ended")

    async def test_cancel_for_another_session_does_not_stop_this_one(
        self, stream, gated_agent, operator_client
    ):
        client = await stream(agent="gated")
        other = await stream()
        await start_gated_reply(client)

        await operator_client.post(f"/api/sessions/{other.session.id}/interrupt")

        assert await client.communicator.receive_nothing(timeout=0.3)


class TestInMemoryLayer(OperatorControlTests):
    @pytest.fixture
    def stream(self, in_memory_layer, stream_factory):
        return stream_factory


@pytest.mark.redis
class TestRedisLayer(OperatorControlTests):
    @pytest.fixture
    def stream(self, redis_layer, stream_factory):
        return stream_factory


class TestAdminActions:
    """The admin's actions reach live sessions the same way: through the channel layer."""

    async def test_admin_interrupt_and_end_reach_the_live_session(
        self, stream, gated_agent, admin_user
    ):
        client = await stream(agent="gated")
        await start_gated_reply(client)
        admin = AsyncClient()
        await admin.aforce_login(admin_user)
        changelist = "/admin/sessions_app/session/"
        selected = {"_selected_action": [str(client.session.id)]}

        response = await admin.post(changelist, {"action": "interrupt_sessions", **selected})
        assert response.status_code == 302
        barge_in = await client.receive()
        assert (barge_in["type"], barge_in["source"]) == ("barge_in", "operator")
        assert (await client.receive_turn_metrics())["cut_by"] == "operator"

        await admin.post(changelist, {"action": "end_sessions", **selected})
        ended = await client.receive()
        assert (ended["type"], ended["reason"]) == ("session_ended", "operator_ended")
        session = await Session.objects.aget(pk=client.session.id)
        assert session.status == "ended"
