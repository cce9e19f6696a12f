"""Voice to voice: from the caller's last voiced frame to the first frame of the agent's answer.

Each turn streams a sentence spoken by espeak-ng as real-time 20 ms frames, then silence (a
live microphone never stops sending), and times on the client, from the moment the sentence's
last voiced frame was sent:

  -> speech_stopped      the voice detector's hangover (VAD_HANGOVER_MS) plus a window
  -> transcript_final    recognition; with a speculative final it started at the pause
  -> first agent_response delta
  -> first agent audio frame received

With the server's default engines and the echo agent. `--compare-speculation` runs a second
server with STT_SPECULATIVE_FINAL=0, to show how much of the wait the speculative final hides.

    python bench/voice_to_voice.py [--turns 10] [--compare-speculation] [--url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field

import aiohttp
import harness

SENTENCES = [
    "hello I would like to check my account balance please",
    "what is the status of my order",
    "can you tell me when the branch opens on saturday",
    "I lost my card yesterday and I need a new one",
    "sorry to interrupt but I need to change my address",
    "could you repeat that more slowly",
    "my order number is four five six seven",
    "is there a fee for sending money abroad",
    "please send me a copy of my last statement",
    "thank you that is everything for today",
]
VOICED_DBFS = -45.0  # a frame above this level holds voice (espeak's output is clean)
TURN_LIMIT_S = 30.0
STAGES = ["speech_stopped", "transcript_final", "first_delta", "first_audio"]


@dataclass
class Turn:
    sentence: str
    last_voiced_sent: float | None = None
    moments: dict[str, float] = field(default_factory=dict)
    heard: str = ""
    failure: str | None = None

    def since_voice_ms(self, stage: str) -> float | None:
        if self.last_voiced_sent is None or stage not in self.moments:
            return None
        return (self.moments[stage] - self.last_voiced_sent) * 1000


async def run_turn(
    ws: aiohttp.ClientWebSocketResponse, mic: harness.Microphone, sentence: str
) -> Turn:
    turn = Turn(sentence)
    clip = mic.say(harness.speech_frames(sentence, wpm=165))
    deadline = time.monotonic() + TURN_LIMIT_S
    while "completed" not in turn.moments:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            turn.failure = "no playback_completed in time"
            break
        try:
            message = await ws.receive(timeout=remaining)
        except TimeoutError:
            continue
        now = time.monotonic()
        if message.type == aiohttp.WSMsgType.BINARY:
            turn.moments.setdefault("first_audio", now)
            continue
        if message.type != aiohttp.WSMsgType.TEXT:
            turn.failure = f"socket {message.type.name} (close code {ws.close_code})"
            break
        event = json.loads(message.data)
        kind = event.get("type")
        if kind == "speech_stopped":
            turn.moments.setdefault("speech_stopped", now)
        elif kind == "transcript_final":
            turn.moments.setdefault("transcript_final", now)
            turn.heard = event["text"]
        elif kind == "agent_response" and event.get("delta"):
            turn.moments.setdefault("first_delta", now)
        elif kind == "playback_completed":
            turn.moments["completed"] = now
        elif kind in ("error", "barge_in"):
            turn.failure = f"{kind}: {event.get('code') or event.get('source')}"
            break
    turn.last_voiced_sent = clip.last_voiced_sent
    return turn


async def measure(base_url: str, turns: int) -> list[Turn]:
    results = []
    async with aiohttp.ClientSession() as http:
        ws = await harness.open_stream(http, base_url)
        mic = harness.Microphone(ws.send_bytes, voiced_dbfs=VOICED_DBFS)
        try:
            await run_turn(ws, mic, "hello")  # warm-up: the first decode allocates
            for index in range(turns):
                turn = await run_turn(ws, mic, SENTENCES[index % len(SENTENCES)])
                if turn.failure:
                    print(f"  turn {index + 1} failed: {turn.failure}")
                results.append(turn)
        finally:
            await mic.close()
            await ws.close()
    return results


def rows(label: str, turns: list[Turn]) -> list[list[object]]:
    table = []
    for stage in STAGES:
        values = [v for t in turns if not t.failure and (v := t.since_voice_ms(stage)) is not None]
        table.append(
            [label, f"last voiced frame -> {stage}", len(values)]
            + [harness.ms(harness.percentile(values, p)) for p in (50, 90)]
        )
    recognition = [
        (t.moments["transcript_final"] - t.moments["speech_stopped"]) * 1000
        for t in turns
        if not t.failure and {"transcript_final", "speech_stopped"} <= t.moments.keys()
    ]
    table.append(
        [label, "speech_stopped -> transcript_final", len(recognition)]
        + [harness.ms(harness.percentile(recognition, p)) for p in (50, 90)]
    )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="measure this running server instead of starting one")
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--compare-speculation", action="store_true")
    parser.add_argument("--show-heard", action="store_true", help="print what was recognised")
    args = parser.parse_args()

    configs = {"speculative final": {}}
    if args.compare_speculation:
        configs["final at speech_stopped"] = {"STT_SPECULATIVE_FINAL": "0"}
    results: dict[str, list[Turn]] = {}
    for label, env in configs.items():
        if args.url:
            if env:
                continue
            results[label] = asyncio.run(measure(args.url.rstrip("/"), args.turns))
            continue
        with harness.daphne_server({"AGENT_STRATEGY": "echo", **env}) as url:
            print(f"voice to voice: {args.turns} turns, {label} ({url}) ...", flush=True)
            results[label] = asyncio.run(measure(url, args.turns))
    if args.show_heard:
        for turn in next(iter(results.values())):
            print(f"  said {turn.sentence!r} -> heard {turn.heard!r}")
    print()
    print("voice to voice, ms from the caller's last voiced frame (client clock, loopback)")
    table = [row for label, turns in results.items() for row in rows(label, turns)]
    harness.print_table(["server", "stage", "turns", "p50", "p90"], table, left_columns=2)


if __name__ == "__main__":
    main()
