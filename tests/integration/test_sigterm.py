"""SIGTERM to a real daphne: its live sessions end with reason `server_shutdown`, and what
was said is stored."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import aiohttp

from tests.conftest import bearer
from tests.integration.test_two_processes import open_session
from tests.servers import migrate, running_daphne, running_daphne_process, server_env

LONG_SAY = "please tell me a very long story about the sea and the ships"


async def test_sigterm_ends_live_sessions_and_keeps_what_was_said(tmp_path):
    env = server_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", TTS_ENGINE="silent", STT_ENGINE="none"
    )
    migrate(env)
    with running_daphne_process(env, tmp_path / "doomed.log") as doomed:
        async with aiohttp.ClientSession() as http:
            created, stream = await open_session(http, doomed.url)
            await stream.send(type="text", text=LONG_SAY, final=True)
            await stream.until("playback_started")
            for _ in range(15):  # let some of the reply be heard
                assert isinstance(await stream.next(), bytes)

            os.kill(doomed.pid, signal.SIGTERM)
            ended = await stream.until("session_ended")
            assert ended[-1]["reason"] == "server_shutdown"
            assert await stream.next() is None  # then the socket closes
            assert stream.socket.close_code == 4001  # daphne cannot send 1001
        assert await asyncio.to_thread(_exits, doomed.pid), "daphne did not exit on SIGTERM"

    with running_daphne(env, tmp_path / "after.log") as after:
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{after}/api/sessions/{created['id']}", headers=bearer(created["token"])
            ) as response,
        ):
            stored = await response.json()
    assert (stored["status"], stored["end_reason"]) == ("ended", "server_shutdown")
    user, agent = stored["utterances"]
    assert user["text"] == LONG_SAY
    assert agent["interrupted"] and agent["heard_text"]


def _exits(pid: int, within_s: float = 10) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] != 0:
                return True
        except ChildProcessError:
            return True
        time.sleep(0.1)
    return False
