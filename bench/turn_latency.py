"""Turn overhead: how soon the agent starts answering once the caller's words are final.

Turns are spread over a few echo sessions (default espeak TTS). Each turn sends a final text,
then reads until `playback_completed` before the next one. Measured on the client, over
loopback, from `transcript_final` received:

  -> the first `agent_response` delta received
  -> the first binary audio frame received

and, for context, text sent -> `transcript_final` received (redaction and the database write).
Beside them, the server's own account of each turn: the stages of its `turn_metrics` event
(the server's monotonic clock), read after `playback_completed`.

    python bench/turn_latency.py [--turns 30] [--sessions 3] [--layer memory|redis|both] [--url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass

import aiohttp
import harness

TURN_TEXT = "is the branch open on saturday"
TURN_LIMIT_S = 30.0


@dataclass
class Turn:
    """One turn's moments, in client monotonic seconds."""

    sent: float
    transcript_final: float | None = None
    first_delta: float | None = None
    first_audio: float | None = None
    completed: float | None = None
    stages: dict[str, int] | None = None  # the server's turn_metrics, ms
    failure: str | None = None

    def between_ms(self, start: float | None, end: float | None) -> float | None:
        return None if start is None or end is None else (end - start) * 1000


async def run_turn(ws: aiohttp.ClientWebSocketResponse, text: str) -> Turn:
    turn = Turn(sent=time.monotonic())
    await ws.send_json({"type": "text", "text": text, "final": True})
    deadline = turn.sent + TURN_LIMIT_S
    while turn.stages is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            turn.failure = "no playback_completed and turn_metrics in time"
            break
        try:
            message = await ws.receive(timeout=remaining)
        except TimeoutError:
            continue
        received = time.monotonic()
        if message.type == aiohttp.WSMsgType.BINARY:
            turn.first_audio = turn.first_audio or received
        elif message.type == aiohttp.WSMsgType.TEXT:
            event = json.loads(message.data)
            kind = event.get("type")
            if kind == "transcript_final":
                turn.transcript_final = received
            elif kind == "agent_response" and event.get("delta") and turn.first_delta is None:
                turn.first_delta = received
            elif kind == "playback_completed":
                turn.completed = received
            elif kind == "turn_metrics":
                turn.stages = event["metrics"]["stages"]
            elif kind in ("error", "barge_in"):
                turn.failure = f"{kind}: {event.get('code') or event.get('source')}"
                break
        else:
            turn.failure = (
                f"socket {message.type.name} (close code {ws.close_code}) during the turn"
            )
            break
    return turn


async def measure(base_url: str, args: argparse.Namespace) -> tuple[list[Turn], int]:
    """The measured turns (warm-up dropped), and how many turns failed.

    A failed turn ends its session; the next session carries on, up to as many failures as
    turns wanted, so every run ends.
    """
    wanted = args.warmup + args.turns
    per_session = -(-wanted // args.sessions)
    turns: list[Turn] = []
    failures = 0
    async with aiohttp.ClientSession() as http:
        while len(turns) < wanted and failures <= args.turns:
            ws = await harness.open_stream(http, base_url)
            opened = time.monotonic()
            try:
                for index in range(1, min(per_session, wanted - len(turns)) + 1):
                    turn = await run_turn(ws, args.text)
                    label = f"turn {len(turns) + 1 - args.warmup}" if turns else "warm-up"
                    age = turn.sent - opened
                    where = f"turn {index} of its session, sent {age:.1f} s after it opened"
                    if turn.failure:
                        failures += 1
                        print(f"  failed, not measured: {turn.failure} ({where})")
                        break
                    turns.append(turn)
                    if args.per_turn:
                        print(f"  {label}: {describe(turn)} ({where})")
            finally:
                await ws.close()
    return turns[args.warmup :], failures


def describe(turn: Turn) -> str:
    return ", ".join(
        f"{name} {harness.ms(turn.between_ms(getattr(turn, start), getattr(turn, end)))}"
        for name, start, end in METRICS
    )


METRICS = [
    ("transcript_final -> first delta", "transcript_final", "first_delta"),
    ("transcript_final -> first audio", "transcript_final", "first_audio"),
    ("text sent -> transcript_final", "sent", "transcript_final"),
]


def rows(layer: str, turns: list[Turn]) -> list[list[object]]:
    table = []
    for name, start, end in METRICS:
        values = [
            v for t in turns if (v := t.between_ms(getattr(t, start), getattr(t, end))) is not None
        ]
        table.append(
            [layer, name, len(values)]
            + [harness.ms(harness.percentile(values, p)) for p in (50, 99, 100)]
        )
    return table


SERVER_STAGES = ["agent", "generation", "synthesis", "send", "speaking", "response"]


def server_rows(layer: str, turns: list[Turn]) -> list[list[object]]:
    table = []
    for stage in SERVER_STAGES:
        values = [t.stages[stage] for t in turns if t.stages and stage in t.stages]
        table.append(
            [layer, stage, len(values)]
            + [harness.ms(harness.percentile(values, p)) for p in (50, 99, 100)]
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_target_options(parser)
    parser.add_argument("--turns", type=int, default=30, help="measured turns per layer")
    parser.add_argument("--sessions", type=int, default=3, help="sessions the turns spread over")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured turns first")
    parser.add_argument("--text", default=TURN_TEXT, help="what the caller says each turn")
    parser.add_argument("--per-turn", action="store_true", help="print every turn's figures")
    args = parser.parse_args()
    if args.sessions < 1 or args.turns < 1:
        parser.error("--turns and --sessions must be at least 1")

    results: dict[str, list[Turn]] = {}
    failures: dict[str, int] = {}
    for layer in harness.layers(args):
        with harness.server(layer, args) as url:
            print(f"turn latency: {args.turns} turns on {layer} ({url}) ...", flush=True)
            results[layer], failures[layer] = asyncio.run(measure(url, args))

    print()
    print("turn overhead, ms (client clock, loopback; echo agent, espeak TTS)")
    table = [row for layer, turns in results.items() for row in rows(layer, turns)]
    harness.print_table(["layer", "metric", "turns", "p50", "p99", "max"], table, left_columns=2)
    print()
    print("the same turns by the server's turn_metrics, ms (server monotonic clock)")
    table = [row for layer, turns in results.items() for row in server_rows(layer, turns)]
    harness.print_table(["layer", "stage", "turns", "p50", "p99", "max"], table, left_columns=2)
    print()
    print("turns: measured turns; a failed turn is not measured, and its session is replaced.")
    if any(failures.values()):
        print(
            "failed turns: close code 1011 means the server's consumer raised; its traceback "
            "is in the server's output (--server-log-dir keeps it)."
        )
    print()
    lines = [summary(layer, turns, failures[layer]) for layer, turns in results.items()]
    print("summary: " + "; ".join(lines))


def summary(layer: str, turns: list[Turn], failed: int) -> str:
    delta, audio, _ = rows(layer, turns)
    return (
        f"{layer} first delta p50 {delta[3]} / p99 {delta[4]} ms, first audio p50 {audio[3]} / "
        f"p99 {audio[4]} ms over {len(turns)} turns, failed turns {failed}"
    )


if __name__ == "__main__":
    main()
