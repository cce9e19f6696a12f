"""The end-of-turn model (smart-turn v3.2): what a call costs and how far its answers go.

Latency: one onnxruntime session per row (intra-op threads 1 or 2), batches of 1, 4 and 8
utterances of 4 s espeak speech; p50 and p90 of the wall time per call over --calls calls
(features included), and per utterance. Probabilities: espeak sentences (en-us, 140 wpm), ten
complete and ten left unfinished, each followed by 0, 200 and 600 ms of silence; then how many
the threshold (TURN_MODEL_THRESHOLD) calls finished. espeak's output shifts by a few samples
with what it spoke before, and the model follows: a sentence near the threshold may land on
either side from one run to the next.

    python bench/turn_model.py [--calls 30]
"""

from __future__ import annotations

import argparse
import time

import harness

COMPLETE = [
    "what's my balance",
    "I need to change my address",
    "can you help me with my account",
    "yes that's right",
    "please cancel my order",
    "thank you very much",
    "I want to pay my bill",
    "where is my package",
    "what time do you close",
    "my card was stolen",
]
UNFINISHED = [
    "I would like to check my",
    "I need to talk to",
    "can you help me with",
    "my account number is um",
    "I called because",
    "could you tell me the",
    "I want to pay my bill and",
    "I was wondering if",
    "the problem is that",
    "I'd like to speak to someone about",
]
SILENCES_MS = (0, 200, 600)


def latency_table(calls: int) -> None:
    from agents_app.speech.turn.smart_turn import SmartTurnSession, load_model_bytes
    from tests.speech import speech_pcm

    model = load_model_bytes()
    utterance = speech_pcm("hello I would like to check my account balance please")
    rows = []
    for threads in (1, 2):
        session = SmartTurnSession(model, threads=threads)
        for batch in (1, 4, 8):
            session.probabilities([utterance] * batch)  # first run allocates
            walls = []
            for _ in range(calls):
                started = time.perf_counter()
                session.probabilities([utterance] * batch)
                walls.append((time.perf_counter() - started) * 1000)
            p50 = harness.percentile(walls, 50)
            rows.append(
                [threads, batch, harness.ms(p50), harness.ms(harness.percentile(walls, 90)),
                 harness.ms(p50 / batch)]
            )  # fmt: skip
    harness.print_table(
        ["threads", "batch", "p50 ms/call", "p90 ms/call", "p50 ms/utterance"], rows, 0
    )


def probability_table() -> None:
    from django.conf import settings

    from agents_app.speech.turn.smart_turn import SmartTurnSession, load_model_bytes
    from tests.speech import silence, speech_pcm

    session = SmartTurnSession(load_model_bytes())
    threshold = settings.TURN_MODEL_THRESHOLD
    rows, finished = (
        [],
        {(kind, pause): 0 for kind in ("complete", "unfinished") for pause in SILENCES_MS},
    )
    for kind, sentences in (("complete", COMPLETE), ("unfinished", UNFINISHED)):
        for text in sentences:
            speech = speech_pcm(text)
            scores = session.probabilities([speech + silence(pause) for pause in SILENCES_MS])
            for pause, score in zip(SILENCES_MS, scores, strict=True):
                finished[kind, pause] += score >= threshold
            rows.append([kind, text, *(f"{score:.3f}" for score in scores)])
    headers = ["", "sentence", *(f"+{pause} ms" for pause in SILENCES_MS)]
    harness.print_table(headers, rows, 2)
    print()
    summary = [
        [f"{kind} called finished (>= {threshold})",
         *(f"{finished[kind, pause]}/{len(COMPLETE)}" for pause in SILENCES_MS)]
        for kind in ("complete", "unfinished")
    ]  # fmt: skip
    harness.print_table(["", *(f"+{pause} ms" for pause in SILENCES_MS)], summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    import django

    django.setup()
    latency_table(args.calls)
    print()
    probability_table()


if __name__ == "__main__":
    main()
