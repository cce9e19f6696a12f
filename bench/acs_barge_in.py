"""Barge-in on a phone call: the caller talks over the agent; how soon does ACS get StopAudio?

The same measurement as barge_in.py, over ACS's media socket instead of the browser's. A
daphne server answers calls through the real SDK against the TLS fake ACS of the tests (its
CA trusted through SSL_CERT_FILE); each trial is a call: Event Grid's IncomingCall, then
ACS's side of the media socket — AudioMetadata, caller audio as AudioData JSON every 20 ms
of a monotonic clock (silence, then espeak speech). The rules agent greets the caller (~4 s);
after ~0.5 s of the greeting's AudioData the caller speaks. Measured on
the client, over loopback, from the send time of the clip's first voiced frame:

  (a) onset -> StopAudio received
  (b) onset -> the last agent AudioData received (read until 0.5 s passes without any)

and checked: StopAudio arrived, and no AudioData came after it.

    python bench/acs_barge_in.py [--trials 20] [--layer memory|redis|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import aiohttp
import barge_in
import harness

from tests.fakes import acs_events
from tests.fakes.acs_server import FakeAcsServer, make_tls_material

SECRET = "bench-secret"


async def place_call(http: aiohttp.ClientSession, base_url: str) -> aiohttp.ClientWebSocketResponse:
    """A call answered by the server, and ACS's media socket to it."""
    url = f"{base_url}/acs/events?secret={SECRET}"
    async with http.post(url, json=[acs_events.incoming_call()]) as reply:
        body = await reply.json()
        if reply.status != 200:
            raise RuntimeError(f"the webhook answered {reply.status}: {body}")
    (session_id,) = body["sessions"]
    ws = await http.ws_connect(f"{base_url}/ws/acs/{session_id}/", max_msg_size=0)
    await ws.send_json(acs_events.audio_metadata())
    return ws


async def run_trial(http, base_url, clip, voiced_index, alignment) -> barge_in.Trial:
    trial = barge_in.Trial(alignment=alignment % barge_in.ALIGNMENTS)
    ws = await place_call(http, base_url)
    microphone = barge_in.Microphone(
        lambda frame: ws.send_json(acs_events.audio_data(frame)), clip, voiced_index, alignment
    )
    try:
        await follow_trial(ws, microphone, trial)
    finally:
        await microphone.close()
        trial.onset = microphone.onset
        trial.lateness = microphone.lateness
        trial.failure = trial.failure or microphone.failure
        await ws.close()
    return trial


async def follow_trial(ws, microphone: barge_in.Microphone, trial: barge_in.Trial) -> None:
    """Read what the server sends ACS until the trial is decided (StopAudio marks barge_in)."""
    started = time.monotonic()
    frames_before_speech = barge_in.AGENT_AUDIO_BEFORE_SPEECH_MS // harness.FRAME_MS
    agent_frames = 0
    while True:
        now = time.monotonic()
        agent_ready = agent_frames >= frames_before_speech
        deadline = barge_in.trial_deadline(trial, microphone, started, agent_ready)
        if now >= deadline:
            if trial.barge_in is None:
                trial.failure = "no StopAudio" if agent_frames else "no agent audio"
            return
        try:
            message = await ws.receive(timeout=deadline - now)
        except TimeoutError:
            continue
        received = time.monotonic()
        if message.type != aiohttp.WSMsgType.TEXT:
            trial.failure = f"socket {message.type.name} before the trial ended"
            return
        kind = json.loads(message.data)["Kind"]
        if kind == "StopAudio" and trial.barge_in is None:
            trial.barge_in = received
        elif kind == "AudioData":
            agent_frames += 1
            trial.agent_frame(received)
            if agent_frames == frames_before_speech:
                microphone.speak()


async def measure(base_url: str, args: argparse.Namespace) -> list[barge_in.Trial]:
    clip = harness.speech_frames(barge_in.SPEECH_TEXT)
    voiced_index = barge_in.first_voiced(clip, args.rms_floor_dbfs)
    trials = []
    async with aiohttp.ClientSession() as http:
        for number in range(args.warmup + args.trials):
            trial = await run_trial(http, base_url, clip, voiced_index, alignment=number)
            if number >= args.warmup:
                trials.append(trial)
            for problem in [trial.failure] if trial.failure else []:
                print(f"  trial {number + 1 - args.warmup}: {problem}")
    return trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layer", choices=["memory", "redis", "both"], default="both")
    parser.add_argument("--trials", type=int, default=20, help="measured trials per layer")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured trials first")
    parser.add_argument("--rms-floor-dbfs", type=float, default=-40.0)
    args = parser.parse_args()
    args.url = None

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-acs-") as workdir:
        tls = make_tls_material(Path(workdir))
        with FakeAcsServer(tls) as acs:
            env = {
                "ACS_CONNECTION_STRING": acs.connection_string,
                "ACS_CALLBACK_BASE_URL": "https://voice.example.test",
                "ACS_WEBHOOK_SECRET": SECRET,
                "ACS_VERIFY_JWT": "0",
                "SSL_CERT_FILE": str(tls.ca_path),
                "REQUESTS_CA_BUNDLE": str(tls.ca_path),
                "AGENT_STRATEGY": "rules",
            }
            for layer in harness.layers(args):
                layer_env = {"REDIS_URL": harness.REDIS_URL} if layer == "redis" else {}
                with harness.daphne_server({**env, **layer_env}) as url:
                    print(f"acs barge-in: {args.trials} calls on {layer} ({url}) ...", flush=True)
                    results[layer] = asyncio.run(measure(url, args))

    print()
    print("phone barge-in latency, ms from speech onset (client clock, loopback)")
    headers = ["layer", "trials", "missing"]
    headers += [f"(a) {p}" for p in ("p50", "p90", "p99", "max")]
    headers += [f"(b) {p}" for p in ("p50", "p90", "p99", "max")]
    headers += ["AudioData after StopAudio"]
    harness.print_table(headers, [barge_in.row(layer, t) for layer, t in results.items()])
    print()
    print("(a) onset -> StopAudio received; (b) onset -> last agent AudioData received.")
    print(
        f"(a) includes the VAD's {barge_in.VAD_MIN_SPEECH_MS} ms confirmation (VAD_MIN_SPEECH_MS); "
        "ACS drops what it still holds on StopAudio."
    )


if __name__ == "__main__":
    main()
