"""Load: how many concurrent real-time voice sessions a server holds.

One asyncio client process opens N sessions. Each streams 20 ms frames of 16 kHz PCM16 in real
time (frame k of every session is due on one shared monotonic 20 ms grid, each session at its
own phase within it, so N sessions never drift) and holds turns: a pause of silence, an espeak
utterance ("what is my account balance please"), silence while the agent answers; once its
reply has played (`playback_completed`), the next turn. N ramps up (sessions of the previous
step stay); each step waits until every new session has had a `transcript_final` (VAD, decoder
and clients warm), then measures for `--step-seconds`:

  lag       frame -> event lag. The VAD ends an utterance when VAD_HANGOVER_MS of unvoiced audio
            follows its last voiced 32 ms window; `speech_stopped` carries that window's end
            (`offset_ms`), so the client knows exactly which of its frames completed the
            hangover: lag = `speech_stopped` received - that frame sent. It holds only server
            queueing and work (and loopback), no VAD granularity. (It assumes the server's
            default VAD, whose windows are 32 ms, and `--vad-hangover-ms` as its hangover.)
  srv       the same, to the event's own `ts` (stamped as the server builds it): lag - srv is
            the server's send path, loopback and the client's receive side.
  reply     `speech_stopped` received -> the reply's first audio frame (STT, agent, TTS).
  late      agent audio frames that arrived after a client playing them out from the first
            frame at 20 ms a frame would have needed them (the buffer ran dry: an audible gap).
  missing   frames fewer than `playback_completed.played_ms` says were played.
  cpu, rss  of the server process(es) (/proc), cpu summed over processes, in % of one core;
            MB/session: rss growth since the step before / sessions added. For context, the
            CPU of this client, of the fake OpenAI server and of the whole machine (all share
            its cores: a busy machine shows there).
  errors    `error` events, unexpected `barge_in`, sockets closed, turns unanswered in 20 s.

A step holds when lag p99 < 50 ms and it had no error; the ramp stops at the first that does
not. Three configurations:

  production  STT, agent and TTS are the `openai` engines, pointed at bench/fake_openai.py in
              its own process (transcription after 300 ms, first token after 200 ms, speech
              streamed); sessions use the seeded `openai` agent.
  no-stt      the same with recognition off (STT_ENGINE=none): voice detection, agent and TTS;
              the client sends its words as text after each `speech_stopped`.
  offline     whisper tiny.en (the default recognizer), the echo agent and espeak (not the
              default piper, so that recognition is what is measured; --offline-tts piper):
              bounded by recognition CPU.

each on 1 daphne process (SQLite, in-memory layer) and on 2 on Redis and PostgreSQL, behind ONE
address: the bench binds one listening socket and hands it to both (`daphne --fd N`); the
kernel spreads the connections. Servers run with TURN_MODEL=none and --vad-hangover-ms, so
every turn ends at the hangover the lag is measured from. Everything runs on loopback and stops
by itself. BENCH_REDIS_URL and BENCH_DATABASE_URL (kept, not dropped) override the Redis
database (db 0) and the throwaway PostgreSQL database the 2-process runs use.

    python bench/load.py [--config production|no-stt|offline|all] [--processes 1|2|both]
                         [--max-sessions N] [--ramp 1,2,4] [--step-seconds S] [--keep-going]
                         [--runs K] [--url URL [--pid PID]]... [--agent NAME]

Each step takes --step-seconds (12) plus its new sessions' first turn (~5-9 s); a ramp stops at
its first step that fails. The server processes' pids are printed, for profiling. Near the
knee one run's p99 decides little: --runs K repeats each ramp on fresh servers and says per N
how many runs held.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import harness

from tests.servers import (
    DaphneProcess,
    log_tail,
    migrate,
    running_daphne_process,
    server_env,
)

T = TypeVar("T")

UTTERANCE = "what is my account balance please"
LAG_LIMIT_MS = 50.0
VAD_WINDOW_SAMPLES = 512  # the server's VAD scores 32 ms windows
SAMPLES_PER_MS = harness.SAMPLE_RATE // 1000
FRAME_SAMPLES = harness.FRAME_BYTES // 2
FRAME_S = harness.FRAME_MS / 1000
TURN_LIMIT_S = 20.0  # from the utterance's last frame to playback_completed
SETTLE_LIMIT_S = 30.0  # for every new session's first transcript_final
PAUSE_S = (0.5, 1.5)  # silence between turns
# Before a new session's first turn: a turn takes ~7 s, so new callers start spread over most of
# one and do not all speak at once (speaking costs the server far more than silence).
FIRST_PAUSE_S = (0.2, 5.0)
CATCH_UP_S = 0.1  # a client this far behind its grid sends at once rather than sleeping
HOST_SAMPLE_S = 2.0  # how long the machine's own load is sampled before a ramp
# The bench sets its own limits: it opens sessions as fast as it measures, beyond the defaults.
SERVER_LIMITS = {"SESSION_CREATE_RATE": "", "MAX_LIVE_SESSIONS": "1000", "CONN_MAX_AGE": "60"}
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Config:
    name: str
    agent: str
    env: dict[str, str]
    ramp: tuple[int, ...]
    note: str
    fake_openai: bool = False  # start bench/fake_openai.py and point the openai engines at it
    says_text: bool = False  # the client sends its words as text after speech_stopped


CLOUD_ENGINES = {
    "TTS_ENGINE": "openai",
    "AGENT_STRATEGY": "openai",
    "OPENAI_API_KEY": "fake",
}
LARGE_RAMP = (1, 2, 4, 8, 16, 32, 64, 80, 100, 128, 160, 200, 240)

CONFIGS = {
    "production": Config(
        "production",
        agent="openai",
        env={"STT_ENGINE": "openai", **CLOUD_ENGINES},
        ramp=LARGE_RAMP,
        note="openai STT/agent/TTS against a fake OpenAI server on loopback (another process)",
        fake_openai=True,
    ),
    "no-stt": Config(
        "no-stt",
        agent="openai",
        env={"STT_ENGINE": "none", **CLOUD_ENGINES},
        ramp=LARGE_RAMP,
        note=(
            "recognition off (STT_ENGINE=none): voice detection, the openai agent and TTS "
            "against the fake; the client sends its words as text after speech_stopped"
        ),
        fake_openai=True,
        says_text=True,
    ),
    "offline": Config(
        "offline",
        agent="echo",
        env={
            "STT_ENGINE": "whisper",
            "WHISPER_MODEL": "tiny.en",
            "TTS_ENGINE": "espeak",
            "AGENT_STRATEGY": "echo",
            # Every turn then ends at the silence limit, where the lag is measured (with a
            # speculative final, whisper's punctuation ends it earlier); the decode's CPU is
            # the same, it only starts later.
            "STT_SPECULATIVE_FINAL": "false",
        },
        ramp=(1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 80, 100),
        note=(
            "whisper tiny.en (the default recognizer), echo agent, espeak (not the default "
            "piper, whose CPU per reply would be measured instead: --offline-tts piper). "
            "Bounded by recognition CPU: sessions ~ cores x seconds between a caller's "
            "utterances / CPU seconds per utterance"
        ),
    ),
}


# --- what the sessions report ----------------------------------------------------------------


@dataclass
class Figures:
    """What the sessions saw in one step. Values count only while measuring; errors always."""

    lags: list[float] = field(default_factory=list)
    server_lags: list[float] = field(default_factory=list)
    replies: list[float] = field(default_factory=list)
    send_lateness: list[float] = field(default_factory=list)
    turns: int = 0
    frames_out: int = 0
    late: int = 0
    missing: int = 0
    errors: list[str] = field(default_factory=list)


class Recorder:
    """Where every session reports; `take()` hands over a step's figures and starts afresh."""

    def __init__(self) -> None:
        self.measuring = False
        self.figures = Figures()

    def error(self, text: str) -> None:
        self.figures.errors.append(text)

    def take(self) -> Figures:
        figures, self.figures = self.figures, Figures()
        return figures


# --- one session ------------------------------------------------------------------------------


class Microphone:
    """Sends one 20 ms frame every 20 ms, due on `grid` + k * 20 ms: queued speech, else silence.

    Frame k is due at a fixed time, so sleep overshoot never accumulates; a late frame goes at
    once. Every session shares one grid (each at its own phase in it), so none drifts."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, grid: float, recorder: Recorder):
        self._ws = ws
        self._grid = grid
        self._recorder = recorder
        self._queue: deque[bytes] = deque()
        self.sent_at: list[float] = []  # client monotonic send time of each frame, by index
        self.drained = asyncio.Event()

    def say(self, frames: list[bytes]) -> None:
        self._queue.extend(frames)
        self.drained.clear()

    async def stream(self) -> None:
        try:
            await self._stream()
        except (ConnectionError, aiohttp.ClientError) as exc:
            self._recorder.error(f"could not send audio: {type(exc).__name__}")

    async def _stream(self) -> None:
        now = time.monotonic()
        start = self._grid + math.ceil((now - self._grid) / FRAME_S) * FRAME_S
        for index in range(sys.maxsize):
            due = start + index * FRAME_S
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = self._queue.popleft() if self._queue else harness.SILENT_FRAME
            if not self._queue:
                self.drained.set()
            sent = time.monotonic()
            self.sent_at.append(sent)
            await self._ws.send_bytes(frame)
            if self._recorder.measuring:
                self._recorder.figures.send_lateness.append((sent - due) * 1000)
            if sent - due > CATCH_UP_S:
                start += sent - due - CATCH_UP_S  # the client itself stalled: do not burst


class LoadSession:
    """One caller: a microphone, a listener for events and audio, and a talker taking turns."""

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        clip: list[bytes],
        recorder: Recorder,
        grid: float,
        hangover_ms: int,
        says_text: bool = False,
    ) -> None:
        """`grid`: when frames are due (mod 20 ms); `hangover_ms`: the server's VAD_HANGOVER_MS;
        `says_text`: after each `speech_stopped`, send the words as text (a server without
        recognition, like a phone gateway that transcribes itself)."""
        self.ws = ws
        self._clip = clip
        self._recorder = recorder
        self._hangover_windows = -(-hangover_ms * SAMPLES_PER_MS // VAD_WINDOW_SAMPLES)
        self._wall_offset = time.time() - time.monotonic()
        self.microphone = Microphone(ws, grid, recorder)
        self.first_final = asyncio.Event()
        self.first_reply = asyncio.Event()
        self._turn_done = asyncio.Event()
        self._closing = False
        self._speech_stopped: float | None = None
        self._first_audio_seen = True
        self._playout: float | None = None  # when the client's buffer runs dry
        self._received_ms = 0.0
        self._sample_rate = harness.SAMPLE_RATE
        self._words_due = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self.microphone.stream()),
            asyncio.create_task(self._listen()),
            asyncio.create_task(self._talk()),
        ]
        if says_text:
            self._tasks.append(asyncio.create_task(self._say_words()))

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.wait(self._tasks)
        with contextlib.suppress(Exception):
            await self.ws.close()

    def _error(self, text: str) -> None:
        if not self._closing:
            self._recorder.error(text)
        self.first_final.set()
        self.first_reply.set()
        self._turn_done.set()

    async def _talk(self) -> None:
        await asyncio.sleep(random.uniform(*FIRST_PAUSE_S))
        while True:
            self._turn_done.clear()
            self.microphone.say(self._clip)
            await self.microphone.drained.wait()
            try:
                await asyncio.wait_for(self._turn_done.wait(), TURN_LIMIT_S)
            except TimeoutError:
                self._error(f"no reply within {TURN_LIMIT_S:.0f} s")
            await asyncio.sleep(random.uniform(*PAUSE_S))

    async def _say_words(self) -> None:
        """The utterance's words as text, once per `speech_stopped`."""
        while True:
            await self._words_due.wait()
            self._words_due.clear()
            try:
                await self.ws.send_json({"type": "text", "text": UTTERANCE, "final": True})
            except (ConnectionError, aiohttp.ClientError) as exc:
                self._error(f"could not send text: {type(exc).__name__}")
                return

    async def _listen(self) -> None:
        try:
            async for message in self.ws:
                received = time.monotonic()
                if message.type == aiohttp.WSMsgType.BINARY:
                    self._audio(len(message.data), received)
                elif message.type == aiohttp.WSMsgType.TEXT:
                    self._event(json.loads(message.data), received)
        except Exception as exc:  # the socket broke: that session's step failed
            self._error(f"socket failed: {type(exc).__name__}")
            return
        self._error(f"socket closed (code {self.ws.close_code})")

    def _event(self, event: dict, received: float) -> None:
        kind = event.get("type")
        if kind == "speech_stopped":
            self._speech_stopped, self._first_audio_seen = received, False
            self._words_due.set()
            self._measure_lag(event, received)
        elif kind == "transcript_final":
            self.first_final.set()
        elif kind == "playback_started":
            self._playout, self._received_ms = None, 0.0
            self._sample_rate = event.get("sample_rate", harness.SAMPLE_RATE)
        elif kind == "playback_completed":
            self._playback_completed(event.get("played_ms", 0))
        elif kind == "error":
            self._error(f"error event {event.get('code')} ({event.get('source')})")
        elif kind == "barge_in":
            self._error(f"unexpected barge_in ({event.get('source')})")
        elif kind == "session_ended":
            self._error(f"session ended ({event.get('reason')})")

    def _measure_lag(self, event: dict, received: float) -> None:
        """Lag from the send of the frame that completed the hangover to the event."""
        done_samples = event["offset_ms"] * SAMPLES_PER_MS
        done_samples += self._hangover_windows * VAD_WINDOW_SAMPLES
        index = (done_samples - 1) // FRAME_SAMPLES
        if index >= len(self.microphone.sent_at):
            # The server's VAD_HANGOVER_MS, or its VAD's window (VAD_ENGINE), is not assumed here.
            self._error("speech_stopped names audio not sent yet: another VAD_HANGOVER_MS?")
            return
        sent = self.microphone.sent_at[index]
        if self._recorder.measuring:
            figures = self._recorder.figures
            figures.lags.append((received - sent) * 1000)
            stamped = datetime.fromisoformat(event["ts"]).timestamp()
            figures.server_lags.append((stamped - self._wall_offset - sent) * 1000)

    def _audio(self, size: int, received: float) -> None:
        duration = size / 2 / self._sample_rate
        measuring, figures = self._recorder.measuring, self._recorder.figures
        if not self._first_audio_seen and self._speech_stopped is not None:
            self._first_audio_seen = True
            if measuring:
                figures.replies.append((received - self._speech_stopped) * 1000)
        if self._playout is None or received > self._playout:
            if self._playout is not None and measuring:
                figures.late += 1
            self._playout = received  # (re)start playing out from this frame
        self._playout += duration
        self._received_ms += duration * 1000
        if measuring:
            figures.frames_out += 1

    def _playback_completed(self, played_ms: int) -> None:
        if self._recorder.measuring:
            figures = self._recorder.figures
            figures.turns += 1
            short_ms = played_ms - self._received_ms
            if short_ms >= harness.FRAME_MS / 2:
                figures.missing += round(short_ms / harness.FRAME_MS)
        self.first_reply.set()
        self._turn_done.set()


# --- the server's CPU and memory ---------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads); nan once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB; nan once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def host_busy_seconds() -> tuple[float, float]:
    """CPU seconds of the whole machine so far: (busy, total), over all its cores."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / CLOCK_TICKS, sum(ticks) / CLOCK_TICKS


class HostMeter:
    """How busy the whole machine was between `start()` and `percent()`, in % of one core."""

    def __init__(self) -> None:
        self._busy, self._total = host_busy_seconds()

    def start(self) -> None:
        self._busy, self._total = host_busy_seconds()

    def percent(self) -> float:
        busy, total = host_busy_seconds()
        return (busy - self._busy) / (total - self._total) * 100 * (os.cpu_count() or 1)


@dataclass
class Meter:
    """CPU use of some processes between `start()` and `percent()`, in % of one core."""

    pids: list[int]
    _cpu: float = 0.0
    _wall: float = 0.0

    def total_cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def start(self) -> None:
        self._cpu, self._wall = self.total_cpu(), time.monotonic()

    def percent(self) -> float:
        if not self.pids:
            return float("nan")
        return (self.total_cpu() - self._cpu) / (time.monotonic() - self._wall) * 100

    def rss(self) -> float:
        return sum(rss_mb(pid) for pid in self.pids) if self.pids else float("nan")


# --- a ramp ------------------------------------------------------------------------------------


@dataclass
class Target:
    """What a ramp runs against: base URLs (sessions go round-robin) and the pids to meter."""

    label: str
    urls: list[str]
    agent: str
    server_pids: list[int]
    fake_pids: list[int] = field(default_factory=list)
    says_text: bool = False


@dataclass
class Step:
    sessions: int
    figures: Figures
    server_cpu: float
    measured_s: float
    server_rss: float
    rss_per_session: float
    client_cpu: float
    fake_cpu: float
    host_cpu: float

    @property
    def lag_p99(self) -> float:
        return harness.percentile(self.figures.lags, 99)

    @property
    def cpu_per_turn(self) -> float:
        """Server CPU seconds per turn taken: with offline recognition, the C of the sizing
        formula (sessions ~ cores x seconds between a caller's turns / C)."""
        turns = self.figures.turns
        return self.server_cpu / 100 * self.measured_s / turns if turns else float("nan")

    @property
    def held(self) -> bool:
        return self.lag_p99 < LAG_LIMIT_MS and not self.figures.errors


class Ramp:
    """Adds sessions step by step against one target and measures each step."""

    def __init__(self, target: Target, clip: list[bytes], args: argparse.Namespace) -> None:
        self.target = target
        self.clip = clip
        self.args = args
        self.recorder = Recorder()
        self.grid = time.monotonic()  # every session's frames are due on this 20 ms grid
        self.sessions: list[LoadSession] = []
        self.server = Meter(target.server_pids)
        self.fake = Meter(target.fake_pids)
        self.client = Meter([os.getpid()])
        self.host = HostMeter()

    async def run(self, counts: list[int]) -> list[Step]:
        steps: list[Step] = []
        timeout = aiohttp.ClientTimeout(total=harness.HTTP_TIMEOUT_S)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            self.host.start()
            await asyncio.sleep(HOST_SAMPLE_S)
            print(f"  the machine before load: {number(self.host.percent())} % busy", flush=True)
            await self._warm_up(http)
            previous = (0, self.server.rss())
            try:
                for count in counts:
                    await self._add_sessions(http, count)
                    steps.append(await self._measure(count, previous))
                    previous = (count, steps[-1].server_rss)
                    print("  " + progress(steps[-1]), flush=True)
                    if not steps[-1].held and not self.args.keep_going:
                        break
            finally:
                await asyncio.gather(*(session.close() for session in self.sessions))
        return steps

    async def _open(
        self, http: aiohttp.ClientSession, index: int, recorder: Recorder
    ) -> LoadSession | None:
        """Session `index`, on the target's next URL in turn; None (an error) if refused."""
        url = self.target.urls[index % len(self.target.urls)]
        try:
            ws = await harness.open_stream(http, url, self.target.agent)
        except (RuntimeError, aiohttp.ClientError, TimeoutError) as exc:
            recorder.error(f"could not open a session: {exc}"[:160])
            return None
        # Callers are not in step with each other: spread the sessions' phases over 20 ms.
        phase = (index * 0.381966) % 1.0 * FRAME_S
        return LoadSession(
            ws,
            self.clip,
            recorder,
            self.grid + phase,
            self.args.vad_hangover_ms,
            says_text=self.target.says_text,
        )

    async def _warm_up(self, http: aiohttp.ClientSession) -> None:
        """One turn on each process first, so lazy imports and first models are not measured
        (behind one address, two sessions a process: the kernel picks which takes each)."""
        recorder = Recorder()
        count = len(self.target.urls)
        if len(self.target.server_pids) > count:
            count = 2 * len(self.target.server_pids)
        opened = await asyncio.gather(*(self._open(http, i, recorder) for i in range(count)))
        try:
            waits = [s.first_reply.wait() for s in opened if s is not None]
            await asyncio.wait_for(asyncio.gather(*waits), SETTLE_LIMIT_S)
        except TimeoutError:
            recorder.error(f"no reply played within {SETTLE_LIMIT_S:.0f} s")
        finally:
            await asyncio.gather(*(s.close() for s in opened if s is not None))
        if recorder.figures.errors:
            raise RuntimeError(f"warm-up failed: {'; '.join(recorder.figures.errors)}")

    async def _add_sessions(self, http: aiohttp.ClientSession, count: int) -> None:
        """Open sessions up to `count` (spread over up to a second), and wait until each new one
        has had its first transcript_final: VAD, decoder and provider clients are warm."""
        first = len(self.sessions)
        stagger = min(0.05, 1.0 / max(1, count - first))

        async def open_later(index: int) -> LoadSession | None:
            await asyncio.sleep((index - first) * stagger)
            return await self._open(http, index, self.recorder)

        opened = await asyncio.gather(*(open_later(i) for i in range(first, count)))
        new = [session for session in opened if session is not None]
        self.sessions += new
        try:
            waits = [session.first_final.wait() for session in new]
            await asyncio.wait_for(asyncio.gather(*waits), SETTLE_LIMIT_S)
        except TimeoutError:
            late = sum(1 for session in new if not session.first_final.is_set())
            self.recorder.error(f"{late} new sessions had no transcript_final in time")

    async def _measure(self, count: int, previous: tuple[int, float]) -> Step:
        """Measure `count` sessions; `previous`: the sessions and rss of the step before."""
        meters = (self.server, self.fake, self.client, self.host)
        for meter in meters:
            meter.start()
        self.recorder.measuring = True
        await asyncio.sleep(self.args.step_seconds)
        self.recorder.measuring = False
        rss = self.server.rss()
        return Step(
            sessions=count,
            figures=self.recorder.take(),
            server_cpu=self.server.percent(),
            measured_s=self.args.step_seconds,
            server_rss=rss,
            rss_per_session=(rss - previous[1]) / (count - previous[0]),
            client_cpu=self.client.percent(),
            fake_cpu=self.fake.percent(),
            host_cpu=self.host.percent(),
        )


# --- servers -----------------------------------------------------------------------------------


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # A `kill` becomes SystemExit, so the context managers below still stop every process.
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def fake_openai_process(log_dir: Path) -> Iterator[tuple[str, int]]:
    """bench/fake_openai.py in its own process; yields its base URL and pid."""
    with (log_dir / "fake-openai.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("fake_openai.py"))]
            + ["--watch-pid", str(os.getpid())],
            stdout=subprocess.PIPE,
            stderr=log,
        )
    try:
        line = process.stdout.readline().decode().strip()
        if not line.startswith("ready "):
            raise RuntimeError(f"the fake OpenAI server did not start (see {log.name})")
        yield line.removeprefix("ready "), process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards; yields its URL. BENCH_DATABASE_URL
    names one to use (and keep) instead."""
    import psycopg

    given = os.environ.get("BENCH_DATABASE_URL")
    if given:
        yield given
        return

    name = f"voice_load_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgres://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def shared_listener() -> Iterator[tuple[socket.socket, str]]:
    """One listening socket on a free loopback port, inheritable: every daphne given its file
    descriptor (`daphne --fd N`) accepts from it, and the kernel spreads the connections
    between them. Yields the socket and its base URL."""
    with socket.create_server(("127.0.0.1", 0), backlog=1024) as listener:
        listener.set_inheritable(True)
        yield listener, f"http://127.0.0.1:{listener.getsockname()[1]}"


@contextlib.contextmanager
def daphnes(
    count: int,
    services: bool,
    settings: dict[str, str],
    log_dir: Path,
    label: str,
    server: str = "daphne",
) -> Iterator[tuple[str, list[DaphneProcess]]]:
    """`count` daphne processes sharing one database (and Redis, with `services`); more than
    one share one listening socket. `server`: uvicorn instead of daphne, to compare them (one
    process only: the shared socket is daphne's `--fd`). Yields the address sessions go to,
    and the processes."""
    with contextlib.ExitStack() as stack:
        if services:
            database = stack.enter_context(postgres_database())
            settings = {**settings, "DATABASE_URL": database, "REDIS_URL": harness.REDIS_URL}
        else:
            settings = {**settings, "DATABASE_URL": f"sqlite:///{log_dir / f'{label}.sqlite3'}"}
        env = server_env(LOG_LEVEL="WARNING", **SERVER_LIMITS, **settings)
        migrate(env)
        listener, address = None, None
        if count > 1:
            listener, address = stack.enter_context(shared_listener())
        processes = [
            stack.enter_context(
                running_daphne_process(
                    env,
                    log_dir / f"{label}-{i + 1}.log",
                    listen_fd=listener.fileno() if listener is not None else None,
                    server_name=server,
                )
            )
            for i in range(count)
        ]
        yield address or processes[0].url, processes


def services_reachable() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1.0).close()
    except OSError:
        return False
    return harness.redis_reachable()


# --- figures -----------------------------------------------------------------------------------


HEADERS = [
    "N",
    "turns",
    "lag p50",
    "lag p99",
    "srv p99",
    "reply p50",
    "late",
    "missing",
    "frames out",
    "cpu %",
    "cpu %/session",
    "cpu s/turn",
    "rss MB",
    "MB/session",
    "client cpu %",
    "fake cpu %",
    "host cpu %",
    "errors",
    "held",
]


def number(value: float, digits: int = 0) -> str:
    return "-" if value != value else f"{value:.{digits}f}"


def row(step: Step) -> list[object]:
    f = step.figures
    return [
        step.sessions,
        f.turns,
        harness.ms(harness.percentile(f.lags, 50)),
        harness.ms(step.lag_p99),
        harness.ms(harness.percentile(f.server_lags, 99)),
        number(harness.percentile(f.replies, 50)),
        f.late,
        f.missing,
        f.frames_out,
        number(step.server_cpu),
        number(step.server_cpu / step.sessions, 1),
        number(step.cpu_per_turn, 2),
        number(step.server_rss),
        number(step.rss_per_session, 1),
        number(step.client_cpu),
        number(step.fake_cpu),
        number(step.host_cpu),
        len(f.errors),
        "yes" if step.held else "NO",
    ]


def progress(step: Step) -> str:
    f = step.figures
    text = (
        f"N={step.sessions}: {f.turns} turns, lag p50 {harness.ms(harness.percentile(f.lags, 50))}"
        f" / p99 {harness.ms(step.lag_p99)} ms, late {f.late}, missing {f.missing}, "
        f"cpu {number(step.server_cpu)} %, rss {number(step.server_rss)} MB, "
        f"errors {len(f.errors)}"
    )
    if not f.lags:
        text += " (no speech_stopped while measuring: a longer --step-seconds?)"
    lateness = harness.percentile(f.send_lateness, 99)
    if step.client_cpu > 80 or lateness > 10:
        text += (
            f" (client busy: cpu {number(step.client_cpu)} %, its frames p99 "
            f"{harness.ms(lateness)} ms late)"
        )
    return text


def held(steps: list[Step]) -> int:
    """The largest N of the ramp's unbroken run of steps that held."""
    largest = 0
    for step in steps:
        if not step.held:
            break
        largest = step.sessions
    return largest


def report(title: str, steps: list[Step]) -> str:
    print()
    print(title)
    harness.print_table(HEADERS, [row(step) for step in steps])
    for step in steps:
        kinds: dict[str, int] = {}
        for error in step.figures.errors:
            kinds[error] = kinds.get(error, 0) + 1
        if kinds:
            listed = "; ".join(f"{count}x {kind}" for kind, count in list(kinds.items())[:4])
            print(f"  errors at N={step.sessions}: {listed}")
    summary = f"{title}: largest N held {held(steps)}"
    if steps and steps[-1].held:
        summary += " (the ramp's end: it may hold more)"
    print(summary)
    return summary


LEGEND = f"""\
lag: ms from sending the caller frame that completed the VAD's hangover (located from
  speech_stopped.offset_ms + VAD_HANGOVER_MS rounded up to the VAD's 32 ms windows) to
  receiving speech_stopped: server queueing and work plus loopback, no VAD granularity.
  srv: the same, to the event's ts (stamped as the server builds it; ms resolution): the part
  before the event is sent. lag - srv is the server's send path, loopback and the client.
reply: ms from speech_stopped to the reply's first audio frame (STT, agent, TTS).
late: agent frames that arrived after a client playing out from the first frame at 20 ms a
  frame needed them (its buffer ran dry). missing: frames fewer than played_ms says.
frames out: agent audio frames received.
cpu %: the server process(es), summed, in % of one core (this machine has {os.cpu_count()}),
  and per session. cpu s/turn: server CPU seconds per turn taken (everything: VAD, STT, agent,
  TTS, protocol). client, fake: this load client and the fake OpenAI server. host: the whole
  machine (PostgreSQL, Redis and any other work on it).
rss MB: the server process(es) at the step's end. MB/session: its growth since the step
  before / sessions added (the first step: since a warm-up turn, whose pooled resources the
  first session may reuse).
held: lag p99 < {LAG_LIMIT_MS:.0f} ms and no errors. Every step waits until its new sessions
  have had a transcript_final, then measures; with few turns, p99 is the worst turn."""


# --- main --------------------------------------------------------------------------------------


def run_client(main: Coroutine[Any, Any, T]) -> T:
    """Run the load client on uvloop where it is installed (the `bench` extra): the client
    shares the machine's cores with the server it measures, and on asyncio's own loop its
    timers and sockets took twice the CPU (py-spy: 40 % of a core at 128 sessions, a third of
    it in the selector and the timer heap)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def ramp_counts(config: Config | None, args: argparse.Namespace) -> list[int]:
    counts = args.ramp or (config.ramp if config else CONFIGS["production"].ramp)
    limit = args.max_sessions or (counts[-1] if counts else 1)
    return [count for count in counts if count <= limit]


def run_given(args: argparse.Namespace, clip: list[bytes]) -> list[str]:
    urls = [url.rstrip("/") for url in args.url]
    target = Target("given", urls, args.agent, args.pid or [])
    print(f"load: {len(urls)} given server(s), agent {args.agent} ...", flush=True)
    steps = run_client(Ramp(target, clip, args).run(ramp_counts(None, args)))
    return [report(f"given server(s) {', '.join(urls)}", steps)]


def run_config(
    config: Config, process_counts: list[int], args: argparse.Namespace, clip: list[bytes]
) -> list[str]:
    summaries = []
    with contextlib.ExitStack() as stack:
        log_dir = args.server_log_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-load-"))
        )
        log_dir.mkdir(parents=True, exist_ok=True)
        # Turns end at VAD_HANGOVER_MS of silence, so the client knows which frame ended
        # each (the lag); the end-of-turn model's CPU is bench/turn_latency.py's to measure.
        settings = {
            "TURN_MODEL": "none",
            "VAD_HANGOVER_MS": str(args.vad_hangover_ms),
            **config.env,
            **dict(setting.split("=", 1) for setting in args.server_env or []),
        }
        fake_pids: list[int] = []
        if config.name == "offline" and args.offline_tts:
            settings["TTS_ENGINE"] = args.offline_tts
        if config.fake_openai:
            url, pid = stack.enter_context(fake_openai_process(log_dir))
            settings["OPENAI_BASE_URL"], fake_pids = url, [pid]
        for count in process_counts:
            services = count > 1 or args.stack == "services"
            stack_name = "PostgreSQL + Redis" if services else "SQLite + in-memory layer"
            runs: list[list[Step]] = []
            for run in range(1, args.runs + 1):
                label = f"{config.name}-{count}p" + (f"-run{run}" if args.runs > 1 else "")
                with daphnes(count, services, settings, log_dir, label, args.server) as (
                    address,
                    processes,
                ):
                    pids = [process.pid for process in processes]
                    print(
                        f"load: {config.name}, {count} {args.server} process(es) at {address} "
                        f"(pids {', '.join(map(str, pids))}; {stack_name}) ...",
                        flush=True,
                    )
                    target = Target(
                        label, [address], config.agent, pids, fake_pids, says_text=config.says_text
                    )
                    try:
                        steps = run_client(Ramp(target, clip, args).run(ramp_counts(config, args)))
                    except RuntimeError as exc:
                        steps = []
                        print(f"  {exc}")
                        for log in sorted(log_dir.glob(f"{label}-*.log")):
                            print(f"  --- the end of {log.name}:\n{log_tail(log, 20)}")
                title = f"{config.name}, {count} process(es), {stack_name}"
                if args.runs > 1:
                    title += f", run {run} of {args.runs}"
                summaries.append(report(title, steps))
                print(f"  ({config.note})")
                runs.append(steps)
            if args.runs > 1:
                summaries.append(report_runs(f"{config.name}, {count} process(es)", runs))
    return summaries


def report_runs(title: str, runs: list[list[Step]]) -> str:
    """At the knee one run's p99 decides little (the same code swings from 40 ms to a second):
    per N, how many runs held, and every run's lag p99."""
    lines = [f"{title}, {len(runs)} runs:"]
    for sessions in sorted({step.sessions for steps in runs for step in steps}):
        steps = [step for steps in runs for step in steps if step.sessions == sessions]
        p99s = ", ".join(harness.ms(step.lag_p99) for step in steps)
        held_runs = sum(step.held for step in steps)
        lines.append(f"  N={sessions}: held in {held_runs} of {len(steps)} runs (lag p99 {p99s})")
    print("\n".join(lines))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config", choices=[*CONFIGS, "all"], default="all", help="default: all, in turn"
    )
    parser.add_argument("--processes", choices=["1", "2", "both"], default="both")
    parser.add_argument(
        "--stack",
        choices=["auto", "services"],
        default="auto",
        help="auto: 1 process on SQLite + in-memory layer, 2 on PostgreSQL + Redis; services: "
        "PostgreSQL + Redis for 1 process too",
    )
    parser.add_argument(
        "--server",
        choices=["daphne", "uvicorn"],
        default="daphne",
        help="the ASGI server running the application (uvicorn: pip install -e '.[bench]')",
    )
    parser.add_argument("--max-sessions", type=int, help="stop the ramp at this N")
    parser.add_argument(
        "--ramp",
        type=lambda text: [int(n) for n in text.split(",")],
        help="the N of each step, e.g. 1,2,4,8 (default: per configuration)",
    )
    parser.add_argument(
        "--step-seconds",
        type=float,
        default=12.0,
        help="measured per step, after its new sessions' first turn (default 12)",
    )
    parser.add_argument(
        "--url", action="append", help="load this running server instead (repeat: round-robin)"
    )
    parser.add_argument(
        "--pid", type=int, action="append", help="with --url: meter this server process"
    )
    parser.add_argument("--agent", default="echo", help="with --url: the sessions' agent")
    parser.add_argument(
        "--vad-hangover-ms",
        type=int,
        default=600,
        help="the servers' VAD_HANGOVER_MS (set on those it starts; the lag is measured from "
        "the end of the hangover)",
    )
    parser.add_argument(
        "--keep-going", action="store_true", help="ramp on past a step that did not hold"
    )
    parser.add_argument(
        "--offline-tts",
        choices=["espeak", "piper"],
        help="the offline configuration's TTS (default espeak: keeps TTS CPU out of the figure)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        metavar="NAME=VALUE",
        help="a setting for the servers this starts, over the configuration's (repeatable), "
        "e.g. STT_PARTIAL_INTERVAL_MS=60000",
    )
    parser.add_argument("--server-log-dir", type=Path, help="keep the servers' output here")
    parser.add_argument("--seed", type=int, default=1, help="for the pauses between turns")
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="run each ramp this many times, each on fresh servers, and say per N how many "
        "runs held (at the knee one run decides little)",
    )
    args = parser.parse_args()
    if (
        args.step_seconds <= 0
        or args.runs < 1
        or (args.max_sessions is not None and args.max_sessions < 1)
    ):
        parser.error("--step-seconds, --runs and --max-sessions must be positive")
    random.seed(args.seed)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)

    started = time.monotonic()
    clip = harness.speech_frames(UTTERANCE)
    if args.url:
        summaries = run_given(args, clip)
    else:
        process_counts = [1, 2] if args.processes == "both" else [int(args.processes)]
        wants_services = any(count > 1 for count in process_counts) or args.stack == "services"
        if wants_services and not services_reachable():
            print("note: skipping PostgreSQL + Redis runs: 127.0.0.1:5432 or :6379 is down")
            process_counts = [1] if args.stack == "auto" and 1 in process_counts else []
        names = list(CONFIGS) if args.config == "all" else [args.config]
        summaries = []
        for name in names:
            summaries += run_config(CONFIGS[name], process_counts, args, clip)
    print()
    print(LEGEND)
    print()
    for summary in summaries:
        print(summary)
    print(f"(ran {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
