"""Turn-taking: does the agent fall silent at once, resume after noise and acknowledgements, and
answer as soon as the caller has finished, but not before?

One daphne server with the default engines (whisper STT, piper TTS, hybrid VAD, smart_turn
end-of-turn model) and the echo agent. Every trial is a new session whose microphone streams
real-time 20 ms frames from the start (silence, as an open microphone sends); times are taken
on the client, over loopback.

Over the agent's reply (a long typed text the echo agent repeats, ~7 s of speech), a clip
starts ~1 s after `playback_started`, at one of 8 frame positions against the VAD's 32 ms
windows (rotating trial by trial):

- interruptions: "Sorry to interrupt, but I need to change my address." and short ones
  ("stop", "wait", "hold on"): each should pause the reply, then `barge_in`;
- noise, 1 s or less: a cough-like burst (the first 150 ms of espeak "hello"), clicks, 60 Hz
  hum, pink and brown noise at -30 dBFS: may pause, must resume, never `barge_in`;
- backchannels ("mhm", "uh huh", "okay", "yeah", "right"): pause, then `transcript_final`
  with `backchannel: true` and `playback_resumed`.

As the caller's own turn (the agent silent): complete sentences, timed from their last voiced
frame to `transcript_final` and to the first agent audio frame; and sentences with a 700 ms
pause in the middle, which must come as one final holding the words of both halves.

Speech is espeak-ng at several voices ("en-us", "en", "en-us+f3") and rates. The table gives
onset -> pause (the last agent frame received after the clip's first voiced frame was sent),
false cancels, resumes and their delay, backchannels resumed, interruptions confirmed, end of
turn (last voiced frame -> `transcript_final`, -> first agent audio, with the `end_of_turn`
reasons) and cut-offs; a footer compares them with issue 10's targets. Trials that did not go
as expected are printed with what the server sent (`--per-trial`: all of them).

    python bench/turn_taking.py [--quick] [--per-trial] [--url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import harness
import numpy as np

from tests.speech import noise

AGENT_TEXT = (
    "I would like to hear about the savings plans you offer, how their interest rates "
    "compare, and when my next statement is due."
)
LONG_INTERRUPTION = "Sorry to interrupt, but I need to change my address."
SHORT_INTERRUPTIONS = ["stop", "wait", "hold on"]
BACKCHANNELS = ["mhm", "uh huh", "okay", "yeah", "right"]
NOISES = ["cough", "clicks", "hum", "pink", "brown"]
SENTENCES = [
    "what's my balance",
    "I lost my card yesterday",
    "can you tell me when the branch opens on saturday",
    "please send me a copy of my last statement",
    "is there a fee for sending money abroad",
    "I want to change my address",
    "what is the status of my order",
    "thank you that is everything for today",
]
PAUSED_SENTENCES = [
    ("I would like to check my", "account balance please"),
    ("can you send the statement to", "my new address please"),
]
MID_SENTENCE_PAUSE_MS = 700
VOICES = [("en-us", 165), ("en", 150), ("en-us+f3", 180)]  # espeak voice, words a minute
NOISE_DBFS = -30.0
NOISE_MS = 1000
COUGH_MS = 150
CLICKS_PER_S = 5
VOICED_DBFS = -45.0  # a clip frame above this level counts as voiced (the clips are clean)

SPEAK_AFTER_S = 1.0  # of the reply, before the clip starts
WAIT_FOR_AGENT_S = 20.0
SETTLE_S = 2.5  # after the clip, for the server to decide what it was
QUIET_S = 0.5  # after a barge-in, without agent audio, to be sure the reply stopped
TURN_WAIT_S = 6.0  # after a caller's sentence, for the final and the agent's first audio
TRIAL_LIMIT_S = 30.0
SERVER_ENV = {
    "AGENT_STRATEGY": "echo",
    "STT_ENGINE": "whisper",
    "TTS_ENGINE": "piper",
    "VAD_ENGINE": "hybrid",
    "TURN_MODEL": "smart_turn",
}

# Sized for ~4 minutes on 2 cores (the budget is 6), --quick for ~1.
FULL_COUNTS = {"interruption": 16, "short": 9, "noise": 10, "backchannel": 15, "sentence": 10}
FULL_COUNTS["paused"] = 6
QUICK_COUNTS = {"interruption": 2, "short": 2, "noise": 3, "backchannel": 3, "sentence": 2}
QUICK_COUNTS["paused"] = 1
OVER_REPLY = ("interruption", "short", "noise", "backchannel")


@dataclass(frozen=True)
class Clip:
    kind: str  # interruption | short | noise | backchannel | sentence | paused
    label: str
    frames: list[bytes]
    voice: str = ""
    second_half: frozenset[str] = frozenset()  # a paused sentence's words after the pause


# --- clips ----------------------------------------------------------------------------------


def spoken(kind: str, text: str, number: int) -> Clip:
    voice, wpm = VOICES[number % len(VOICES)]
    return Clip(kind, text, harness.speech_frames(text, wpm=wpm, voice=voice), voice=voice)


def paused_sentence(number: int) -> Clip:
    first, second = PAUSED_SENTENCES[number % len(PAUSED_SENTENCES)]
    voice, wpm = VOICES[number % len(VOICES)]
    frames = harness.speech_frames(first, wpm=wpm, voice=voice)
    frames += [harness.SILENT_FRAME] * (MID_SENTENCE_PAUSE_MS // harness.FRAME_MS)
    frames += harness.speech_frames(second, wpm=wpm, voice=voice)
    label = f"{first} ({MID_SENTENCE_PAUSE_MS} ms) {second}"
    after = frozenset(second.split()) - frozenset(first.lower().split())  # words only it has
    return Clip("paused", label, frames, voice=voice, second_half=after)


def noise_clip(kind: str) -> Clip:
    if kind == "cough":
        pcm = b"".join(harness.speech_frames("hello"))[: harness.SAMPLE_RATE * 2 * COUGH_MS // 1000]
    elif kind == "clicks":
        pcm = clicks()
    else:
        pcm = noise(kind, NOISE_MS, dbfs=NOISE_DBFS)
    return Clip("noise", kind, harness.pcm_frames(pcm))


def clicks() -> bytes:
    """Sharp 2 ms clicks, a pen on a desk: loud, with nothing like a voice between them."""
    samples = np.zeros(harness.SAMPLE_RATE * NOISE_MS // 1000)
    click = np.hanning(32) * 0.5 * np.sign(np.sin(np.arange(32)))
    for start in range(1000, len(samples) - 32, harness.SAMPLE_RATE // CLICKS_PER_S):
        samples[start : start + 32] = click
    return (samples * 32767).astype(np.int16).tobytes()


def clips(counts: dict[str, int]) -> dict[str, list[Clip]]:
    """Each kind's clips, voices and texts rotating over the trials."""
    return {
        "interruption": [
            spoken("interruption", LONG_INTERRUPTION, n) for n in range(counts["interruption"])
        ],
        "short": [
            spoken("short", SHORT_INTERRUPTIONS[n % len(SHORT_INTERRUPTIONS)], n // 3)
            for n in range(counts["short"])
        ],
        "noise": [noise_clip(NOISES[n % len(NOISES)]) for n in range(counts["noise"])],
        "backchannel": [
            spoken("backchannel", BACKCHANNELS[n % len(BACKCHANNELS)], n // len(BACKCHANNELS))
            for n in range(counts["backchannel"])
        ],
        "sentence": [
            spoken("sentence", SENTENCES[n % len(SENTENCES)], n) for n in range(counts["sentence"])
        ],
        "paused": [paused_sentence(n) for n in range(counts["paused"])],
    }


# --- trials ---------------------------------------------------------------------------------


@dataclass
class Trial:
    """What one session saw: the caller's clip as sent, and the agent's first turn as
    received (client monotonic seconds)."""

    clip: Clip
    alignment: int
    sent: harness.SentClip | None = None
    timeline: list[tuple[float, str, dict]] = field(default_factory=list)  # (t, type, event)
    failure: str | None = None
    lateness: list[float] = field(default_factory=list)  # of the microphone's frames, s

    def at(self, kind: str) -> list[float]:
        return [t for t, k, _ in self.timeline if k == kind]

    @property
    def onset(self) -> float | None:
        return self.sent.first_voiced_sent if self.sent else None

    @property
    def voice_end(self) -> float | None:
        return self.sent.last_voiced_sent if self.sent else None

    def since(self, start: float | None, moment: float | None) -> float | None:
        if start is None or moment is None:
            return None
        return (moment - start) * 1000

    # --- over the reply -----------------------------------------------------------------

    def last_frame_before_stop(self) -> float | None:
        """The last agent frame received before the first `playback_paused` (else before
        the `barge_in`) after the onset: when the caller stopped hearing the agent."""
        if self.onset is None:
            return None
        stops = [t for t, k, _ in self.timeline if k in ("playback_paused", "barge_in")]
        stops = [t for t in stops if t >= self.onset]
        if not stops:
            return None
        frames = [t for t in self.at("audio") if t <= stops[0]]
        return frames[-1] if frames else None

    def frames_while_paused(self) -> int:
        """Agent frames received between a `playback_paused` and what ends the pause."""
        paused, count = False, 0
        for _, kind, _ in self.timeline:
            if kind == "playback_paused":
                paused = True
            elif kind in ("playback_resumed", "barge_in"):
                paused = False
            elif kind == "audio" and paused:
                count += 1
        return count

    @property
    def cut(self) -> bool:
        return bool(self.at("barge_in"))

    @property
    def paused(self) -> bool:
        return bool(self.at("playback_paused"))

    @property
    def resumed(self) -> bool:
        """Paused at least once, and playing again at the end (not cut)."""
        state = None
        for _, kind, _ in self.timeline:
            if kind in ("playback_paused", "playback_resumed", "barge_in"):
                state = kind
        return state == "playback_resumed"

    def resume_delay_ms(self) -> float | None:
        """From the end of the clip's sound to the last `playback_resumed`."""
        resumes = self.at("playback_resumed")
        return self.since(self.voice_end, resumes[-1]) if self.resumed and resumes else None

    def backchannel_stored(self) -> bool:
        return any(e.get("backchannel") for e in self.finals())

    # --- the caller's turn --------------------------------------------------------------

    def finals(self) -> list[dict]:
        """The caller's clip's finals (not the typed request's, stored before the clip)."""
        began = self.sent.started if self.sent else None
        return [
            e
            for t, k, e in self.timeline
            if k == "transcript_final" and began is not None and t >= began
        ]

    def to_final_ms(self) -> float | None:
        """From the clip's last voiced frame to its (last) final."""
        finals = self.at("transcript_final")
        return self.since(self.voice_end, finals[-1]) if self.finals() else None

    def to_first_audio_ms(self) -> float | None:
        frames = self.at("audio")
        return self.since(self.voice_end, frames[0]) if frames else None

    def cut_off(self) -> bool:
        """More than one final, or a final without the words said after the pause."""
        finals = self.finals()
        if len(finals) != 1:
            return True
        heard = set(words_in(finals[0]["text"]))
        return not heard & self.clip.second_half

    def rejoined(self) -> bool:
        """Cut off, but the last final holds the whole (joined as a continuation)."""
        finals = self.finals()
        return len(finals) > 1 and bool(set(words_in(finals[-1]["text"])) & self.clip.second_half)

    def heard(self) -> str:
        return " | ".join(repr(e["text"]) for e in self.finals())

    def sequence(self) -> str:
        """The events since the clip began, runs of agent frames counted, partials quoted."""
        began = self.sent.started if self.sent else None
        parts: list[str] = []
        for t, kind, event in self.timeline:
            if began is None or t < began:
                continue
            if kind == "audio":
                if parts and parts[-1].startswith("audio x"):
                    parts[-1] = f"audio x{int(parts[-1][7:]) + 1}"
                else:
                    parts.append("audio x1")
            elif kind == "transcript_partial":
                parts.append(f"partial {event.get('text')!r}")
            elif kind not in ("agent_response",):
                parts.append(kind)
        return " > ".join(parts)


def words_in(text: str) -> list[str]:
    return "".join(c if c.isalnum() or c in " '" else " " for c in text.lower()).split()


async def run_trial(
    http: aiohttp.ClientSession, base_url: str, clip: Clip, alignment: int
) -> Trial:
    trial = Trial(clip, alignment % harness.ALIGNMENTS)
    ws = await harness.open_stream(http, base_url)
    mic = harness.Microphone(ws.send_bytes, voiced_dbfs=VOICED_DBFS)
    try:
        if clip.kind in OVER_REPLY:
            await ws.send_json({"type": "text", "text": AGENT_TEXT, "final": True})
            await follow_reply(ws, mic, trial)
        else:
            await asyncio.sleep(0.3)  # an open microphone a moment before the caller speaks
            trial.sent = mic.say(clip.frames, trial.alignment)
            await follow_turn(ws, trial)
    except Exception as exc:  # a broken trial is reported, the run goes on
        trial.failure = f"{type(exc).__name__}: {exc}"
    finally:
        try:
            await mic.close()
        except Exception as exc:
            trial.failure = trial.failure or f"microphone stopped: {exc!r}"
        trial.lateness = mic.lateness
        await ws.close()
    return trial


async def receive(
    ws: aiohttp.ClientWebSocketResponse, trial: Trial, wait_s: float, playbacks: list[int]
) -> None:
    """Read one message into the trial's timeline; only the agent's first turn's audio
    counts (a later turn answers the caller's words)."""
    try:
        message = await ws.receive(timeout=max(0.0, wait_s))
    except TimeoutError:
        return
    now = time.monotonic()
    if message.type == aiohttp.WSMsgType.BINARY:
        if playbacks[0] == 1:
            trial.timeline.append((now, "audio", {}))
    elif message.type == aiohttp.WSMsgType.TEXT:
        event = json.loads(message.data)
        kind = event.get("type", "")
        if kind == "playback_started":
            playbacks[0] += 1
        if kind == "error":
            trial.failure = f"error {event.get('code')}: {event.get('message')}"
        trial.timeline.append((now, kind, event))
    else:
        raise RuntimeError(f"socket {message.type.name} (close code {ws.close_code})")


async def follow_reply(
    ws: aiohttp.ClientWebSocketResponse, mic: harness.Microphone, trial: Trial
) -> None:
    """Start the clip into the reply, read until the server has decided what it was."""
    started = time.monotonic()
    playbacks = [0]
    while True:
        now = time.monotonic()
        playing = trial.at("playback_started")
        if trial.sent is None and playing and now >= playing[0] + SPEAK_AFTER_S:
            trial.sent = mic.say(trial.clip.frames, trial.alignment)
        deadline = reply_deadline(trial, started)
        if now >= deadline:
            if not playing:
                trial.failure = "no agent audio"
            elif trial.sent is None or trial.sent.ended is None:
                trial.failure = "the trial ran out of time"
            return
        if trial.sent is None and playing:
            deadline = min(deadline, playing[0] + SPEAK_AFTER_S)
        await receive(ws, trial, deadline - now, playbacks)
        if trial.at("playback_completed") and trial.sent is None:
            trial.failure = "the reply ended before the clip"
            return


def reply_deadline(trial: Trial, started: float) -> float:
    """When to stop reading: the agent must speak, the clip must play, and then the server
    decide (a barge-in and quiet after it, the reply completed, or the settling time)."""
    if not trial.at("playback_started"):
        return started + WAIT_FOR_AGENT_S
    limit = started + TRIAL_LIMIT_S
    if trial.sent is None or trial.sent.ended is None:
        return limit
    if trial.at("playback_completed"):
        return 0.0
    if trial.cut:
        # Quiet after the cut, and the caller's final (what was heard) or the settling time.
        last = max(trial.at("barge_in") + trial.at("audio"))
        heard = 0.0 if trial.finals() else min(limit, trial.sent.ended + SETTLE_S)
        return max(last + QUIET_S, heard)
    if trial.backchannel_stored() and trial.resumed:
        return 0.0
    return min(limit, trial.sent.ended + SETTLE_S)


async def follow_turn(ws: aiohttp.ClientWebSocketResponse, trial: Trial) -> None:
    """Read until the agent answers the caller's sentence (or time runs out)."""
    started = time.monotonic()
    playbacks = [0]
    while True:
        now = time.monotonic()
        sent = trial.sent
        if sent is not None and sent.ended is not None:
            deadline = sent.ended + TURN_WAIT_S
        else:
            deadline = started + TRIAL_LIMIT_S
        finals = trial.finals()
        if trial.at("audio") and finals and heard_all(trial):
            return
        if now >= deadline:
            if not finals:
                trial.failure = "no transcript_final"
            return
        await receive(ws, trial, deadline - now, playbacks)


def heard_all(trial: Trial) -> bool:
    """The caller's whole clip has been answered: for a paused sentence, a final with words
    of its second half (an answer to the first half alone may be followed by more)."""
    if not trial.clip.second_half:
        return True
    return any(set(words_in(e["text"])) & trial.clip.second_half for e in trial.finals())


async def measure(base_url: str, plan: dict[str, list[Clip]], per_trial: bool) -> list[Trial]:
    trials: list[Trial] = []
    async with aiohttp.ClientSession() as http:
        # Warm-up, unmeasured: the first decode, synthesis and turn check allocate.
        await run_trial(http, base_url, spoken("sentence", "hello there", 0), 0)
        await run_trial(http, base_url, spoken("short", "stop", 0), 0)
        for kind, kind_clips in plan.items():
            for number, clip in enumerate(kind_clips):
                trial = await run_trial(http, base_url, clip, alignment=number)
                trials.append(trial)
                if per_trial or trial.failure or not as_expected(trial):
                    print(f"  {kind} {number + 1}: {describe(trial)}", flush=True)
    return trials


def as_expected(trial: Trial) -> bool:
    kind = trial.clip.kind
    if kind in ("interruption", "short"):
        return trial.cut
    if kind == "noise":
        return not trial.cut
    if kind == "backchannel":
        return trial.resumed and not trial.cut
    if kind == "paused":
        return not trial.cut_off()
    return bool(trial.finals())


def describe(trial: Trial) -> str:
    clip = trial.clip
    parts = [f"{clip.label!r}" + (f" ({clip.voice})" if clip.voice else "")]
    if trial.failure:
        parts.append(f"FAILED {trial.failure}")
    if clip.kind in OVER_REPLY:
        stop = trial.since(trial.onset, trial.last_frame_before_stop())
        parts.append(f"position {trial.alignment}")
        parts.append(f"onset->last frame {harness.ms(stop)} ms")
        parts.append(f"pauses {len(trial.at('playback_paused'))}")
        parts.append(f"resumes {len(trial.at('playback_resumed'))}")
        parts.append("barge_in" if trial.cut else "no barge_in")
        if clip.kind == "noise" and trial.resumed:
            parts.append(f"resumed {harness.ms(trial.resume_delay_ms())} ms after the noise")
        if trial.frames_while_paused():
            parts.append(f"{trial.frames_while_paused()} frames while paused")
    else:
        reasons = [e.get("end_of_turn", {}).get("reason") for e in trial.finals()]
        parts.append(f"->final {harness.ms(trial.to_final_ms())} ms")
        parts.append(f"->audio {harness.ms(trial.to_first_audio_ms())} ms")
        parts.append(f"end_of_turn {reasons}")
    if trial.finals():
        parts.append(f"heard {trial.heard()}")
    if clip.kind in OVER_REPLY and not as_expected(trial):
        parts.append(f"events: {trial.sequence()}")
    return ", ".join(parts)


# --- the table ------------------------------------------------------------------------------


def p50_p90(values: list[float]) -> list[str]:
    return [harness.ms(harness.percentile(values, p)) for p in (50, 90)]


def of(count: int, total: int) -> str:
    return f"{count} of {total}"


def reasons_text(reasons: Counter[str]) -> str:
    return "end_of_turn " + (", ".join(f"{r} {n}" for r, n in reasons.most_common()) or "-")


def timed(trials: list[Trial], moment: Callable[[Trial], float | None]) -> list[float]:
    return [v for t in trials if (v := moment(t)) is not None]


class Figures:
    """What the table and the targets report, from the trials of each kind."""

    def __init__(self, trials: list[Trial]) -> None:
        kinds: dict[str, list[Trial]] = {kind: [] for kind in FULL_COUNTS}
        for trial in trials:
            kinds[trial.clip.kind].append(trial)
        self.noise, self.backchannels = kinds["noise"], kinds["backchannel"]
        self.shorts, self.longs = kinds["short"], kinds["interruption"]
        self.sentences, self.paused = kinds["sentence"], kinds["paused"]
        self.over_reply = [t for k in OVER_REPLY for t in kinds[k]]
        speech = self.longs + self.shorts + self.backchannels
        self.stops = timed(speech, lambda t: t.since(t.onset, t.last_frame_before_stop()))
        self.pause_events = timed(
            speech, lambda t: t.since(t.onset, next(iter(t.at("playback_paused")), None))
        )
        self.noise_stops = timed(self.noise, lambda t: t.since(t.onset, t.last_frame_before_stop()))
        self.resumes = timed(self.noise, Trial.resume_delay_ms)
        self.finals = timed(self.sentences, Trial.to_final_ms)
        self.first_audio = timed(self.sentences, Trial.to_first_audio_ms)
        self.paused_finals = timed([t for t in self.paused if not t.cut_off()], Trial.to_final_ms)
        self.false_cancels = sum(t.cut for t in self.noise)
        self.noise_resumed = sum(t.resumed and not t.cut for t in self.noise)
        self.backchannels_resumed = sum(t.resumed and not t.cut for t in self.backchannels)
        self.shorts_cut = sum(t.cut for t in self.shorts)
        self.cut_offs = sum(t.cut_off() for t in self.paused)

    def reasons(self, trials: list[Trial]) -> str:
        return reasons_text(
            Counter(
                e.get("end_of_turn", {}).get("reason", "none") for t in trials for e in t.finals()
            )
        )

    def rows(self) -> list[list[object]]:
        noise, paused = self.noise, self.paused
        never_paused = sum(not t.paused for t in noise)
        stored = sum(t.backchannel_stored() for t in self.backchannels)
        held = sum(t.frames_while_paused() for t in self.over_reply)
        rejoined = sum(t.rejoined() for t in paused)
        return [
            ["speech over reply: onset -> last agent frame", len(self.stops), *p50_p90(self.stops)]
            + ["", ""],
            ["speech over reply: onset -> playback_paused", len(self.pause_events)]
            + [*p50_p90(self.pause_events), "", ""],
            ["noise over reply: onset -> last agent frame", len(self.noise_stops)]
            + [*p50_p90(self.noise_stops), "", ""],
            ["agent frames while paused", len(self.over_reply), "", "", held, ""],
            ["false cancels (barge_in on noise)", len(noise), "", "", self.false_cancels, ""],
            ["noise paused and resumed; noise end -> resumed", len(noise), *p50_p90(self.resumes)]
            + [of(self.noise_resumed, len(noise)), f"never paused {never_paused}"],
            ["backchannels resumed", len(self.backchannels), "", ""]
            + [of(self.backchannels_resumed, len(self.backchannels)), f"stored as such {stored}"],
            ["short interruptions confirmed (barge_in)", len(self.shorts), "", ""]
            + [of(self.shorts_cut, len(self.shorts)), ""],
            ["long interruption confirmed (barge_in)", len(self.longs), "", ""]
            + [of(sum(t.cut for t in self.longs), len(self.longs)), ""],
            ["complete sentence: last voiced frame -> transcript_final", len(self.finals)]
            + [*p50_p90(self.finals), "", self.reasons(self.sentences)],
            ["complete sentence: last voiced frame -> first agent audio", len(self.first_audio)]
            + [*p50_p90(self.first_audio), "", ""],
            [f"sentence with a {MID_SENTENCE_PAUSE_MS} ms pause: cut-offs", len(paused)]
            + [*p50_p90(self.paused_finals), of(self.cut_offs, len(paused))]
            + [f"rejoined {rejoined}; {self.reasons(paused)}"],
        ]

    def targets(self) -> list[tuple[str, str, bool]]:
        """(target, measured, met) for each of the issue's targets."""
        stop50, stop90 = (harness.percentile(self.stops, p) for p in (50, 90))
        resume90 = harness.percentile(self.resumes, 90)  # nan if no noise paused
        final50 = harness.percentile(self.finals, 50)
        backchannel_share = self.backchannels_resumed / max(1, len(self.backchannels))
        return [
            (
                "onset -> last agent frame p50 <= 100 ms, p90 <= 150 ms",
                f"{harness.ms(stop50)} / {harness.ms(stop90)} ms",
                stop50 <= 100 and stop90 <= 150,
            ),
            ("0 replies cancelled by non-speech", str(self.false_cancels), not self.false_cancels),
            (
                "the reply resumes within 300 ms of the noise ending (p90)",
                f"{harness.ms(resume90)} ms",
                not self.resumes or resume90 <= 300,
            ),
            (
                ">= 4 of 5 backchannels resumed",
                of(self.backchannels_resumed, len(self.backchannels)),
                backchannel_share >= 0.8,
            ),
            (
                "every short interruption confirmed",
                of(self.shorts_cut, len(self.shorts)),
                self.shorts_cut == len(self.shorts),
            ),
            (
                "last voiced frame -> transcript_final p50 <= 350 ms (complete sentences)",
                f"{harness.ms(final50)} ms",
                final50 <= 350,
            ),
            (
                "no cut-off on paused sentences",
                of(self.cut_offs, len(self.paused)),
                not self.cut_offs,
            ),
        ]


def print_report(trials: list[Trial], lateness: list[float]) -> None:
    figures = Figures(trials)
    print()
    print("turn-taking, ms on the client clock over loopback (p50/p90 where timed)")
    harness.print_table(["measure", "trials", "p50", "p90", "count", "notes"], figures.rows())
    print()
    print(
        "onset: the clip's first voiced frame sent; the last agent frame is the last one "
        "received before playback_paused (or barge_in). A client still plays what it holds: "
        "up to PLAYBACK_LEAD_MS (80 ms by default) more."
    )
    print(
        "paused sentence: its p50/p90 are last voiced frame -> transcript_final of those not cut "
        "off; a cut-off is more than one transcript_final, or one without the second half's "
        "words; rejoined: cut off, then joined as a continuation."
    )
    late = harness.ms(harness.percentile([x * 1000 for x in lateness], 99))
    print(f"microphone lateness p99 {late} ms (how late the client sent its 20 ms frames)")
    print()
    print("targets (issue 10):")
    harness.print_table(
        ["target", "measured", "met"],
        [[t, m, "yes" if ok else "NO"] for t, m, ok in figures.targets()],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="measure this running server instead of starting one")
    parser.add_argument("--quick", action="store_true", help="a few trials of each (~1 minute)")
    parser.add_argument("--per-trial", action="store_true", help="print every trial")
    parser.add_argument(
        "--server-log", type=Path, help="keep the output of the server started here"
    )
    args = parser.parse_args()
    counts = QUICK_COUNTS if args.quick else FULL_COUNTS
    plan = clips(counts)
    total = sum(counts.values())
    started = time.monotonic()
    if args.url:
        trials = asyncio.run(measure(args.url.rstrip("/"), plan, args.per_trial))
    else:
        with harness.daphne_server(SERVER_ENV, args.server_log) as url:
            engines = ", ".join(f"{k}={v}" for k, v in SERVER_ENV.items())
            print(f"turn-taking: {total} trials ({url}; {engines}) ...", flush=True)
            trials = asyncio.run(measure(url, plan, args.per_trial))
    print(f"({time.monotonic() - started:.0f} s)")
    print_report(trials, [x for t in trials for x in t.lateness])


if __name__ == "__main__":
    main()
