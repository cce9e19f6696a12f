"""Offline speech engines: how soon a sentence's first audio is ready, and what it costs.

In this process, no server: each engine (espeak; piper with one and two onnxruntime threads)
speaks the same 20 two-sentence agent replies, whose first sentences run 7 to 17 words. The
engines take turns sentence by sentence, so a busy moment on the machine hits all of them.
Reported per engine:

  load           loading the engine (piper: reading and patching the ONNX voice)
  sentence       a sentence handed to the synthesizer -> its audio ready (a clip is ready
                 whole), over every sentence
  CPU/audio s    CPU seconds of this process per second of audio (real-time factor)
  reply, whole   a reply's first sentence ready -> its first audio, as SentenceSplitter
                 hands out whole sentences
  reply, clause  the same with the first clause released early (FIRST_CLAUSE_WORDS)
  clause gap     with the early clause, how long the caller waits after it for the rest of
                 the sentence (its synthesis time past the clause's playing time; 0 = none)

The rule (issue 9): piper can be the default if a reply's first audio comes within 150 ms of
its first sentence being ready, on an idle core.

    python bench/tts_latency.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import django
import harness

django.setup()  # harness has put the repository on the path and named the settings

from agents_app.speech.tts import espeak, piper  # noqa: E402
from agents_app.speech.tts.base import SpeechClip  # noqa: E402
from sessions_app.pipeline.playback import SentenceSplitter  # noqa: E402

REPLIES = [
    "Your order left our warehouse this morning. It should arrive by Friday.",
    "Thanks for calling, how can I help you today? I can check orders and balances.",
    "I'm sorry, I didn't quite catch that order number. Could you say it again?",
    "Your current balance is two hundred and fifteen dollars and forty cents. Anything else?",
    "Of course, I can help you reset your password right away. First, check your email.",
    (
        "The branch on Main Street opens at nine and closes at five on weekdays. "
        "It is closed on Sundays."
    ),
    "Sure thing, let me look that up for you right now. It takes a moment.",
    (
        "Your next statement is due on the twelfth, and you can pay it online or by phone. "
        "Shall I text you the link?"
    ),
    (
        "I have found three transactions from last month that match what you described. "
        "The largest was on the fourth."
    ),
    "Unfortunately, that item is out of stock at the moment. We expect more next week.",
    "Okay, I have cancelled the subscription, effective today. You will not be charged again.",
    "Your package was delivered at 3:45 pm and left at the front door. Did you find it?",
    (
        "International transfers cost five dollars each, plus a small exchange fee. "
        "Domestic ones are free."
    ),
    "Great news, your refund of $12.50 was approved this afternoon. It will show in two days.",
    "I can transfer you to a specialist, but the wait is about ten minutes. Would you like that?",
    (
        "Let me read the last five payments, starting with the most recent one. "
        "The first was forty dollars."
    ),
    (
        "Yes, the savings plan pays two percent a year, with no fees and no minimum balance. "
        "Want to open one?"
    ),
    "That address is not in our records. Please check the spelling.",
    "Goodbye, and thank you for calling us today. Have a lovely evening.",
    (
        "Before we continue, I need to confirm your identity with a few quick questions. "
        "What is your date of birth?"
    ),
]


@dataclass
class Timing:
    wall_ms: float
    cpu_ms: float  # this process's CPU time: the wall time on an idle core, for one thread


@dataclass
class Engine:
    name: str
    synthesize: Callable[[str], SpeechClip]
    load_s: float
    cpu_s: float = 0.0
    audio_s: float = 0.0
    figures: dict[str, list[Timing]] = field(default_factory=dict)

    def speak(self, text: str) -> tuple[Timing, SpeechClip]:
        """Synthesise `text`: how long it took, and the clip."""
        wall, cpu = time.perf_counter(), time.process_time()
        clip = self.synthesize(text)
        timing = Timing((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000)
        self.cpu_s += timing.cpu_ms / 1000
        self.audio_s += clip.duration_ms / 1000
        return timing, clip

    def record(self, metric: str, timing: Timing) -> None:
        self.figures.setdefault(metric, []).append(timing)


def pieces(reply: str, early_first_clause: bool) -> list[str]:
    splitter = SentenceSplitter(early_first_clause=early_first_clause)
    return splitter.feed(reply) + splitter.flush()


def load_engines() -> list[Engine]:
    started = time.perf_counter()
    espeak.synthesize_blocking("warm up")
    engines = [Engine("espeak", espeak.synthesize_blocking, time.perf_counter() - started)]
    for threads in (1, 2):
        started = time.perf_counter()
        voice = piper.load_voice(piper.DEFAULT_VOICE, intra_op_threads=threads)
        load_s = time.perf_counter() - started
        piper.synthesize_with(voice, "warm up")

        def synthesize(text: str, voice: object = voice) -> SpeechClip:
            return piper.synthesize_with(voice, text)

        engines.append(Engine(f"piper, {threads} thread{'s' * (threads > 1)}", synthesize, load_s))
    return engines


def measure(engines: list[Engine], rounds: int) -> None:
    for _ in range(rounds):
        for reply in REPLIES:
            whole, early = pieces(reply, False), pieces(reply, True)
            for engine in engines:
                timings = [engine.speak(sentence)[0] for sentence in whole]
                for timing in timings:
                    engine.record("sentence", timing)
                engine.record("reply, whole", timings[0])
                first, first_clip = engine.speak(early[0])
                engine.record("reply, clause", first)
                if len(early) > len(whole):  # the first clause was cut off its sentence
                    rest, _ = engine.speak(early[1])
                    gap = Timing(
                        max(0.0, rest.wall_ms - first_clip.duration_ms),
                        max(0.0, rest.cpu_ms - first_clip.duration_ms),
                    )
                    engine.record("clause gap", gap)


METRICS = ["sentence", "reply, whole", "reply, clause", "clause gap"]


def row(engine: Engine, clock: str) -> list[object]:
    def p50_p90(metric: str) -> str:
        values = [getattr(timing, clock) for timing in engine.figures.get(metric, [])]
        return " / ".join(harness.ms(harness.percentile(values, p)) for p in (50, 90))

    return [
        engine.name,
        f"{engine.load_s:.2f} s",
        f"{engine.cpu_s / engine.audio_s:.3f}",
        *(p50_p90(metric) for metric in METRICS),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="times each reply is spoken")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    load_before = os.getloadavg()[0]
    engines = load_engines()
    measure(engines, args.rounds)
    cut = sum(len(pieces(r, True)) > len(pieces(r, False)) for r in REPLIES)

    headers = ["engine", "load", "CPU/audio s", *METRICS]
    for clock, title in [
        ("wall_ms", "wall clock"),
        ("cpu_ms", "CPU time, the wall clock of one thread on an idle core"),
    ]:
        print()
        print(f"offline TTS, {title}: ms p50 / p90 over {args.rounds} x {len(REPLIES)} replies")
        harness.print_table(headers, [row(engine, clock) for engine in engines])
    print()
    print(
        f"{cut} of {len(REPLIES)} replies had a first clause to release early; replies without "
        "one count the same in both columns. Load average (1 min) before "
        f"{load_before:.2f}, after {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores."
    )


if __name__ == "__main__":
    main()
