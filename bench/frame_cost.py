"""Frame cost: the application's own CPU per caller audio frame, with no socket in the way.

bench/load.py measures a whole server, where the kernel, the WebSocket server and the load
client share the cores and one run's CPU figure differs from the next by a tenth: too coarse
to tell a change of a few microseconds a frame. Here N sessions run in this process through
the routed ASGI application (the consumer, the conversation, voice detection: everything a
frame meets after the WebSocket server has parsed it), fed by an in-memory queue per session
as an ASGI server feeds it, and a frame's cost is the process's CPU (every thread: Silero's
batcher too) for a round of one frame per session, averaged over many rounds. For scale, it
also prints what the same rounds cost against an ASGI application that only receives.

Frames are *quiet* (digital silence: the webrtc gate closes, nothing else runs) or *speech*
(espeak saying a sentence, looped: the gate opens and Silero scores every window, the
utterance is kept for a recognizer; STT_ENGINE=none, so nothing is recognised). Sessions are
fed as fast as they take frames (the real-time budget is lifted), each round waiting until
every session has taken its frame. --profile prints cProfile's top functions for a run.

With --sockets it measures instead what a real server spends: uvicorn (as bench/load.py runs
it) with N callers streaming silence in real time over loopback, once running an application
that only receives and once running this one: the difference is the application's share.

    python bench/frame_cost.py [--sessions 100] [--rounds 500] [--profile quiet|speech]
    python bench/frame_cost.py --sockets [--sessions 200] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import harness
from load import cpu_seconds, run_client

from tests.servers import (
    REPO_ROOT,
    START_TIMEOUT_S,
    UVICORN_OPTIONS,
    free_port,
    migrate,
    running_daphne_process,
    server_env,
)

ORIGIN = b"http://localhost"
FRAME_S = harness.FRAME_MS / 1000
SETTLE_S = 3.0  # every caller streaming before the CPU is read


class Feed:
    """One session's ASGI connection: `receive` hands it what was queued in `inbox`; what it
    sends is dropped (once it has accepted)."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[dict] = asyncio.Queue()
        self.taken = 0
        self.accepted = asyncio.Event()
        self.taken_all: asyncio.Event | None = None  # set once `wanted` frames were taken
        self.wanted = 0

    async def receive(self) -> dict:
        message = await self.inbox.get()
        if message["type"] == "websocket.receive":
            self.taken += 1
            if self.taken_all is not None and self.taken >= self.wanted:
                self.taken_all.set()
        return message

    async def send(self, message: dict) -> None:
        if message["type"] == "websocket.accept":
            self.accepted.set()


def scope(session_id: str, token: str) -> dict:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "http_version": "1.1",
        "path": f"/ws/sessions/{session_id}/",
        "raw_path": f"/ws/sessions/{session_id}/".encode(),
        "query_string": f"token={token}".encode(),
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"origin", ORIGIN)],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "subprotocols": [],
        "state": {},
    }


async def receive_only(scope: dict, receive, send) -> None:
    """The floor: an ASGI application that accepts and then only takes messages."""
    if scope["type"] != "websocket":
        return  # no lifespan: the server goes on without it
    await receive()
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def open_sessions(application, count: int) -> tuple[list[Feed], list[asyncio.Task]]:
    from agents_app.models import Agent
    from sessions_app.models import Session
    from sessions_app.tokens import issue_token

    agent = await Agent.objects.aget(name="echo")
    feeds, tasks = [], []
    for _ in range(count):
        session = await Session.objects.acreate(agent=agent)
        feed = Feed()
        feed.inbox.put_nowait({"type": "websocket.connect"})
        app_scope = scope(str(session.id), issue_token(session.id))
        tasks.append(asyncio.create_task(application(app_scope, feed.receive, feed.send)))
        await asyncio.wait_for(feed.accepted.wait(), 30)
        feeds.append(feed)
    return feeds, tasks


async def rounds(feeds: list[Feed], frames: list[bytes], count: int) -> float:
    """CPU seconds (process) for `count` rounds of one frame per session."""
    started = time.process_time()
    for index in range(count):
        frame = frames[index % len(frames)]
        for feed in feeds:
            feed.wanted = feed.taken + 1
            feed.taken_all = asyncio.Event()
            feed.inbox.put_nowait({"type": "websocket.receive", "bytes": frame})
        for feed in feeds:
            await feed.taken_all.wait()
    await asyncio.sleep(0.05)  # what the last frames started (a Silero answer) finishes
    return time.process_time() - started


async def measure(args: argparse.Namespace) -> None:
    from voiceproject.asgi import application

    quiet = [bytes(harness.FRAME_BYTES)]
    speech = harness.speech_frames("what is my account balance please, I would like to know")
    rows = []
    for label, app in (("receive only", receive_only), ("application", application)):
        for kind, frames in (("quiet", quiet), ("speech", speech)):
            if app is receive_only and kind == "speech":
                continue
            feeds, tasks = await open_sessions(app, args.sessions)
            await rounds(feeds, frames, 50)  # warm: detectors built, Silero loaded
            profiler = cProfile.Profile() if args.profile == kind and app is application else None
            if profiler:
                profiler.enable()
            cpu = await rounds(feeds, frames, args.rounds)
            if profiler:
                profiler.disable()
            frames_fed = args.sessions * args.rounds
            rows.append([label, kind, args.sessions, frames_fed, f"{cpu / frames_fed * 1e6:.1f}"])
            for feed in feeds:
                feed.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
            await asyncio.wait(tasks, timeout=30)
            if profiler:
                pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
    harness.print_table(["application", "frames", "sessions", "frames fed", "CPU µs / frame"], rows)
    print(
        "\nCPU: this process, every thread, per frame fed (the WebSocket server's parsing and\n"
        "the socket are not in it: bench/load.py measures those)."
    )


# --- over sockets: the same frames through uvicorn, in real time ---------------------------------


async def stream_silence(ws, phase: float, until: float) -> None:
    """20 ms of digital silence every 20 ms, on a grid of its own phase, until `until`."""
    frame = bytes(harness.FRAME_BYTES)
    start = time.monotonic() + phase
    index = 0
    while (due := start + index * FRAME_S) < until:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        await ws.send_bytes(frame)
        index += 1


async def drain(ws) -> None:
    """Read what the server sends (its keepalive pings need our pongs)."""
    async for _ in ws:
        pass


async def measure_over_sockets(url: str, pid: int, args: argparse.Namespace, sessions: bool):
    """Server CPU per frame while `args.sessions` callers stream silence in real time."""
    connector = aiohttp.TCPConnector(limit=0)  # every caller holds a connection
    async with aiohttp.ClientSession(connector=connector) as http:
        if sessions:
            sockets = [await harness.open_stream(http, url) for _ in range(args.sessions)]
        else:
            sockets = [await http.ws_connect(url) for _ in range(args.sessions)]
        until = time.monotonic() + SETTLE_S + args.seconds
        tasks = [
            asyncio.create_task(stream_silence(ws, (i * 0.381966) % 1.0 * FRAME_S, until))
            for i, ws in enumerate(sockets)
        ]
        readers = [asyncio.create_task(drain(ws)) for ws in sockets]
        await asyncio.sleep(SETTLE_S)
        cpu, wall = cpu_seconds(pid), time.monotonic()
        await asyncio.gather(*tasks)
        cpu, wall = cpu_seconds(pid) - cpu, time.monotonic() - wall
        for ws in sockets:
            await ws.close()
        await asyncio.wait(readers, timeout=10)
    return cpu / wall, cpu / (wall * args.sessions / FRAME_S)


@contextlib.contextmanager
def receive_only_server() -> Iterator[tuple[str, int]]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "frame_cost:receive_only", "--app-dir", "bench"]
    command += ["--host", "127.0.0.1", "--port", str(port), *UVICORN_OPTIONS]
    server = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
    try:
        wait_until_listening(port, server)
        yield f"ws://127.0.0.1:{port}/", server.pid
    finally:
        server.terminate()
        server.wait()


def wait_until_listening(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the receive-only server exited with {server.returncode}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        time.sleep(0.1)
    raise RuntimeError(f"the receive-only server did not listen in {START_TIMEOUT_S} s")


def over_sockets(args: argparse.Namespace, env: dict[str, str], log: Path) -> None:
    rows = []
    with receive_only_server() as (url, pid):
        share, per_frame = run_client(measure_over_sockets(url, pid, args, sessions=False))
        rows.append(["receive only", args.sessions, f"{share:.0%}", f"{per_frame * 1e6:.1f}"])
    with running_daphne_process(env, log, server_name="uvicorn") as server:
        share, per_frame = run_client(
            measure_over_sockets(server.url, server.pid, args, sessions=True)
        )
        rows.append(["application", args.sessions, f"{share:.0%}", f"{per_frame * 1e6:.1f}"])
    headers = ["uvicorn running", "callers", "server CPU (one core)", "CPU µs / frame"]
    harness.print_table(headers, rows)
    print(
        f"\nEach caller streams 20 ms of silence every 20 ms for {args.seconds:.0f} s over its\n"
        "own WebSocket (the receive-only application takes any socket; the application's\n"
        "are sessions). CPU: the server process, all threads, over the measured seconds."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--profile", choices=["quiet", "speech"])
    parser.add_argument(
        "--sockets",
        action="store_true",
        help="instead: callers streaming silence in real time to uvicorn, over loopback",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="with --sockets")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-frame-cost-") as directory:
        settings = {
            "DATABASE_URL": f"sqlite:///{Path(directory) / 'db.sqlite3'}",
            "LOG_LEVEL": "WARNING",
            "STT_ENGINE": "none",
            "TTS_ENGINE": "none",
            "TURN_MODEL": "none",
            "AUDIO_AHEAD_BUDGET_MS": str(10**9),
            "MAX_LIVE_SESSIONS": "100000",
            "SESSION_CREATE_RATE": "",  # sessions start as fast as they are measured
        }
        env = server_env(**settings)
        migrate(env)
        if args.sockets:
            over_sockets(args, env, Path(directory) / "server.log")
            return
        os.environ.update({key: env[key] for key in (*settings, "DEBUG", "ALLOWED_HOSTS")})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceproject.settings")
        import django

        django.setup()
        run_client(measure(args))


if __name__ == "__main__":
    main()
