"""What the benchmarks share: a daphne server to measure, sessions, the WebSocket, speech, figures.

Imported as `harness` by the scripts next to it (`python bench/<name>.py` puts bench/ on the
path); it puts the repository root on the path too, for the project's own espeak engine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceproject.settings")

from tests.servers import migrate, running_daphne, server_env  # noqa: E402

SAMPLE_RATE = 16000
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
HTTP_TIMEOUT_S = 10.0


# --- servers -------------------------------------------------------------------------------


def redis_reachable(url: str = REDIS_URL) -> bool:
    """True if a Redis server answers PING at `url` (host and port only)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 6379), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # Turned into SystemExit, a `kill` still runs the cleanup that stops the server.
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def daphne_server(
    extra_env: dict[str, str] | None = None, log_path: Path | None = None
) -> Iterator[str]:
    """A daphne process on a free loopback port with its own migrated SQLite DB; yields its URL.

    Its output goes to `log_path` if given, else to a file deleted with the temporary DB.
    """
    with tempfile.TemporaryDirectory(prefix="bench-server-") as workdir:
        env = server_env(
            DATABASE_URL=f"sqlite:///{Path(workdir) / 'db.sqlite3'}",
            LOG_LEVEL="WARNING",
            SESSION_CREATE_RATE="",  # benchmarks start sessions as fast as they measure
            **(extra_env or {}),
        )
        migrate(env)
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            with running_daphne(env, log_path or Path(workdir) / "daphne.log") as url:
                yield url
        finally:
            signal.signal(signal.SIGTERM, previous)


def add_target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", help="measure this running server (e.g. http://127.0.0.1:8000) instead"
    )
    parser.add_argument(
        "--layer",
        choices=["memory", "redis", "both"],
        default="both",
        help="channel layer(s) of the servers this script starts (default: both)",
    )
    parser.add_argument(
        "--server-log-dir",
        type=Path,
        help="keep the output of the servers this script starts here (daphne-<layer>.log)",
    )


def layers(args: argparse.Namespace) -> list[str]:
    """The channel layers to measure: `given` for `--url`, else per `--layer` (Redis if up)."""
    if args.url:
        return ["given"]
    wanted = ["memory", "redis"] if args.layer == "both" else [args.layer]
    if "redis" in wanted and not redis_reachable():
        print(f"note: skipping the redis layer: no Redis answers at {REDIS_URL}")
        wanted.remove("redis")
    return wanted


@contextlib.contextmanager
def server(layer: str, args: argparse.Namespace) -> Iterator[str]:
    """The base URL to measure: `--url` as given, or a server started on `layer`."""
    if layer == "given":
        yield args.url.rstrip("/")
        return
    log_path = None
    if args.server_log_dir is not None:
        args.server_log_dir.mkdir(parents=True, exist_ok=True)
        log_path = args.server_log_dir / f"daphne-{layer}.log"
    env = {"REDIS_URL": REDIS_URL} if layer == "redis" else {}
    with daphne_server(env, log_path) as url:
        yield url


# --- sessions and the WebSocket -------------------------------------------------------------


async def create_session(http: aiohttp.ClientSession, base_url: str, agent: str = "echo") -> str:
    """POST /api/sessions; the session's WebSocket URL. With VOICE_API_TOKEN set (an operator's
    API token, for a `--url` server), as that operator: not rate limited, and allowed when
    the server's sessions are not public."""
    token = os.environ.get("VOICE_API_TOKEN", "")
    async with http.post(
        f"{base_url}/api/sessions",
        json={"agent": agent},
        headers={"Authorization": f"Bearer {token}"} if token else {},
        timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S),
    ) as response:
        body = await response.json()
        if response.status != 201:
            raise RuntimeError(f"POST /api/sessions answered {response.status}: {body}")
        return body["ws_url"]


async def open_stream(
    http: aiohttp.ClientSession, base_url: str, agent: str = "echo"
) -> aiohttp.ClientWebSocketResponse:
    """A new session's WebSocket, opened and past its `session_started` event. It offers
    per-message deflate, as browsers do (a server that accepts it compresses every frame)."""
    ws_url = await create_session(http, base_url, agent)
    ws = await http.ws_connect(ws_url, origin=base_url, max_msg_size=0, compress=15)
    message = await ws.receive(timeout=HTTP_TIMEOUT_S)
    event = json.loads(message.data) if message.type == aiohttp.WSMsgType.TEXT else {}
    if event.get("type") != "session_started":
        await ws.close()
        raise RuntimeError(f"expected session_started, got {message.type} {message.data!r}")
    return ws


# --- speech ---------------------------------------------------------------------------------


def speech_frames(text: str, wpm: int = 140, voice: str = "en-us") -> list[bytes]:
    """`text` spoken by the project's espeak engine (an espeak voice name, e.g. "en-us+f3"),
    as 20 ms frames of 16 kHz PCM16 mono."""
    from agents_app.speech.audio import resample
    from agents_app.speech.tts.espeak import synthesize_blocking

    clip = synthesize_blocking(text, voice=voice, rate_wpm=wpm)
    return pcm_frames(resample(clip.pcm, clip.sample_rate, SAMPLE_RATE))


def pcm_frames(pcm: bytes) -> list[bytes]:
    """16 kHz PCM16 mono as 20 ms frames, the last one padded with silence."""
    pcm += b"\0" * (-len(pcm) % FRAME_BYTES)
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


def frame_dbfs(frame: bytes) -> float:
    """A frame's RMS level in dBFS (-inf for digital silence)."""
    samples = np.frombuffer(frame, dtype=np.int16).astype(np.float64)
    rms = float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
    return 20 * np.log10(rms / 32768) if rms > 0 else float("-inf")


SILENT_FRAME = b"\0" * FRAME_BYTES
# 20 ms frames and a VAD's 32 ms windows line up again every 160 ms: 8 frame positions.
ALIGNMENTS = 8


@dataclass
class SentClip:
    """A clip queued on a `Microphone`, and when (client monotonic seconds) its frames left.

    Voiced frames are those louder than the microphone's `voiced_dbfs`."""

    frames: list[bytes]
    first_voiced: int | None
    last_voiced: int | None
    started: float | None = None
    first_voiced_sent: float | None = None
    last_voiced_sent: float | None = None
    ended: float | None = None
    position: int | None = None  # the microphone frame at which the clip began
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Microphone:
    """An open microphone: 20 ms frames at real-time pace, queued clips first, else silence.

    Frame k is due at start + k * 20 ms of the monotonic clock, so sleep overshoot never
    accumulates; a late frame is sent at once and its lateness recorded. A clip may be held
    until the microphone's frame count reaches a given position modulo `ALIGNMENTS`, so trials
    can rotate where speech starts against the server's VAD windows.
    """

    def __init__(self, send: Callable[[bytes], Awaitable[None]], voiced_dbfs: float = -45.0):
        self._send = send
        self._voiced_dbfs = voiced_dbfs
        self._queue: list[tuple[SentClip, int | None]] = []
        self.lateness: list[float] = []
        self._task = asyncio.create_task(self._run())

    def say(self, frames: list[bytes], alignment: int | None = None) -> SentClip:
        """Queue `frames`; with `alignment`, the clip starts on a frame whose index is that
        modulo `ALIGNMENTS`."""
        voiced = [i for i, f in enumerate(frames) if frame_dbfs(f) > self._voiced_dbfs]
        clip = SentClip(frames, voiced[0] if voiced else None, voiced[-1] if voiced else None)
        self._queue.append((clip, None if alignment is None else alignment % ALIGNMENTS))
        return clip

    async def close(self) -> None:
        """Stop sending; raises what stopped the microphone early, if anything did."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        start = time.monotonic()
        index = 0
        current: SentClip | None = None
        position = 0
        while True:
            due = start + index * FRAME_MS / 1000
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if current is None and self._queue:
                clip, alignment = self._queue[0]
                if alignment is None or index % ALIGNMENTS == alignment:
                    self._queue.pop(0)
                    current, position, clip.position = clip, 0, index
            frame = current.frames[position] if current is not None else SILENT_FRAME
            sent_at = time.monotonic()
            await self._send(frame)
            self.lateness.append(sent_at - due)
            index += 1
            if current is None:
                continue
            if position == 0:
                current.started = sent_at
            if position == current.first_voiced:
                current.first_voiced_sent = sent_at
            if position == current.last_voiced:
                current.last_voiced_sent = sent_at
            position += 1
            if position == len(current.frames):
                current.ended = sent_at
                current.done.set()
                current = None


# --- figures --------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (linear interpolation); nan when there are no values."""
    return float(np.percentile(values, p)) if values else float("nan")


def ms(value: float | None) -> str:
    """Milliseconds to one decimal; `-` for none (None or nan)."""
    return "-" if value is None or value != value else f"{value:.1f}"


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], left_columns: int = 1
) -> None:
    """A plain text table: the first `left_columns` columns left-aligned, the rest right."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i < left_columns else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    print(line(cells[0]))
    print("  ".join("-" * width for width in widths))
    for row in cells[1:]:
        print(line(row))
