"""Speech recognition accuracy and cost, per engine configuration, on two sets of utterances:

  real      recorded speech with transcripts from Debian's pocketsphinx-testdata package
            (LibriVox readings and short commands; `apt-get install pocketsphinx-testdata`)
  espeak    sentences a voice agent hears, spoken by espeak-ng in several voices

and non-speech clips (silence, noise, hum, clicks, coughs) on which no text may come out.

Word error rate is counted after lowercasing, removing punctuation and spelling out digits
("Order 12" -> "order twelve"; longer numbers digit by digit, "4567" -> "four five six seven",
as order and card numbers are read). CPU is the process's CPU time per utterance (the decode only,
one thread), RTF the CPU time over the audio's duration. The whisper rows differ in the encoder
window (WHISPER_WINDOW_S: 30 is Whisper's own) and beam size; one decode per utterance, as a
final is. The pool section decodes the espeak set concurrently with the server's recognition
pool (threads sharing one model) and with a pool of processes, and prints utterances per second.

    python bench/stt_accuracy.py [--configs all|whisper|quick] [--skip-pool]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import harness  # noqa: F401  (puts the repository root on the path)

TESTDATA = Path("/usr/share/pocketsphinx/test/data")
SENTENCES = [
    "hello I would like to check my account balance please",
    "what's my balance",
    "what is the status of my order",
    "sorry to interrupt but I need to change my address",
    "can you tell me when the branch opens on saturday",
    "yes please",
    "no thank you that is all",
    "I lost my card yesterday and I need a new one",
    "could you repeat that more slowly",
    "my order number is four five six seven",
    "stop",
    "wait a moment",
]
VOICES = [("en-us", 165), ("en", 160), ("en-us+f3", 150)]  # US, British, a female variant
UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEENS = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor", "ok": "okay"}


@dataclass(frozen=True)
class Utterance:
    pcm: bytes
    reference: str

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / 16000


# --- text normalisation and word errors -----------------------------------------------------


def spell(number: int) -> str:
    """0-99 in words."""
    if number < 10:
        return UNITS[number]
    if number < 20:
        return TEENS[number - 10]
    tens, unit = divmod(number, 10)
    return TENS[tens] + (f" {UNITS[unit]}" if unit else "")


def spell_digits(digits: str) -> str:
    """Numbers of up to two digits as said ("12": twelve); longer ones digit by digit, as
    order, card and phone numbers are read ("4567": four five six seven)."""
    if len(digits) <= 2:
        return spell(int(digits))
    return " ".join(UNITS[int(digit)] for digit in digits)


def normalise(text: str) -> list[str]:
    text = re.sub(r"\d+", lambda match: f" {spell_digits(match.group())} ", text.lower())
    text = re.sub(r"[^\w\s']|_", " ", text).replace("'", "")
    return [ABBREVIATIONS.get(word, word) for word in text.split()]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in words, reference words)."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, heard in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (word != heard))
    return row[-1], len(ref)


# --- the utterance sets ----------------------------------------------------------------------


def real_recordings() -> list[Utterance] | None:
    from agents_app.speech.audio import from_wav, resample

    if not TESTDATA.exists():
        return None
    utterances = []
    for folder in ("librivox", "cards"):
        transcription = TESTDATA / folder / f"{folder}.transcription"
        if not transcription.exists():
            transcription = TESTDATA / folder / "transcription"
        for line in transcription.read_text().splitlines():
            match = re.match(r"<s>(.*)</s>\s*\((.+)\)", line.strip())
            if not match:
                continue
            pcm, rate = from_wav((TESTDATA / folder / f"{match.group(2)}.wav").read_bytes())
            utterances.append(Utterance(resample(pcm, rate, 16000), match.group(1).strip()))
    return utterances


def espeak_sentences() -> list[Utterance]:
    from agents_app.speech.audio import resample
    from agents_app.speech.tts.espeak import synthesize_blocking

    utterances = []
    for voice, wpm in VOICES:
        for sentence in SENTENCES:
            clip = synthesize_blocking(sentence, voice=voice, rate_wpm=wpm)
            utterances.append(Utterance(resample(clip.pcm, clip.sample_rate, 16000), sentence))
    return utterances


def non_speech() -> dict[str, bytes]:
    from tests.speech import non_speech_clips

    return non_speech_clips()


# --- engines ---------------------------------------------------------------------------------

Transcribe = Callable[[bytes], str]


def whisper(model: str, window_s: float, beam_size: int) -> Transcribe:
    from agents_app.speech.stt.whisper import DecoderOptions, WhisperDecoder

    options = DecoderOptions(beam_size=beam_size, window_s=window_s)
    decoder = WhisperDecoder(model, threads=1, options=options)
    return lambda pcm: decoder.transcribe(pcm).text


def pocketsphinx() -> Transcribe:
    from agents_app.speech.stt.pocketsphinx import _Decoding

    decoding = _Decoding()

    def transcribe(pcm: bytes) -> str:
        decoding.begin()
        return decoding.finish(pcm).text

    return transcribe


CONFIGS: dict[str, Callable[[], Transcribe]] = {
    "pocketsphinx": pocketsphinx,
    "whisper tiny.en, 30 s window, beam 5": lambda: whisper("tiny.en", 30, 5),
    "whisper tiny.en, 10 s window, beam 5": lambda: whisper("tiny.en", 10, 5),
    "whisper tiny.en, 5 s window, beam 5": lambda: whisper("tiny.en", 5, 5),
    "whisper tiny.en, fitted window, beam 5": lambda: whisper("tiny.en", 0, 5),
    "whisper tiny.en, 10 s window, beam 1": lambda: whisper("tiny.en", 10, 1),
    "whisper base, 30 s window, beam 5": lambda: whisper("base", 30, 5),
    "whisper base, 10 s window, beam 5": lambda: whisper("base", 10, 5),
}
QUICK = [
    "pocketsphinx",
    "whisper tiny.en, 30 s window, beam 5",
    "whisper tiny.en, 10 s window, beam 5",
]


@dataclass
class Score:
    errors: int = 0
    words: int = 0
    cpu_s: float = 0.0
    audio_s: float = 0.0
    count: int = 0

    def add(self, utterance: Utterance, heard: str, cpu_s: float) -> None:
        errors, words = word_errors(utterance.reference, heard)
        self.errors += errors
        self.words += words
        self.cpu_s += cpu_s
        self.audio_s += utterance.seconds
        self.count += 1

    def cells(self) -> str:
        wer = 100 * self.errors / max(self.words, 1)
        per = self.cpu_s / max(self.count, 1)
        rtf = self.cpu_s / max(self.audio_s, 1e-9)
        return f"{wer:5.1f} % {per:7.3f} s {rtf:6.3f}"


def measure(transcribe: Transcribe, utterances: list[Utterance]) -> Score:
    score = Score()
    transcribe(utterances[0].pcm)  # warm: the first call allocates
    for utterance in utterances:
        started = time.process_time()
        heard = transcribe(utterance.pcm)
        score.add(utterance, heard, time.process_time() - started)
    return score


def accuracy_table(configs: list[str]) -> None:
    real = real_recordings()
    spoken = espeak_sentences()
    clips = non_speech()
    if real is None:
        print(f"(real recordings skipped: no {TESTDATA}; apt-get install pocketsphinx-testdata)")
    print(
        f"\nreal: {len(real or [])} recordings ({sum(u.seconds for u in real or []):.0f} s); "
        f"espeak: {len(spoken)} sentences in {len(VOICES)} voices; non-speech: {len(clips)} clips"
    )
    columns = "real: WER   CPU/utt   RTF", "espeak: WER CPU/utt   RTF"
    header = f"{'engine':42s} | {columns[0]:27s} | {columns[1]:27s} | text on non-speech"
    print(header)
    print("-" * len(header))
    for name in configs:
        transcribe = CONFIGS[name]()
        real_cells = measure(transcribe, real).cells() if real else "-"
        espeak_cells = measure(transcribe, spoken).cells()
        babble = [label for label, pcm in clips.items() if transcribe(pcm).strip()]
        noise_cell = f"{len(babble)}/{len(clips)}" + (f" ({', '.join(babble)})" if babble else "")
        print(f"{name:42s} | {real_cells:27s} | {espeak_cells:27s} | {noise_cell}")


# --- threads or processes ----------------------------------------------------------------------

_process_decoder: Transcribe | None = None


def _process_init(model: str, window_s: float) -> None:
    global _process_decoder
    _process_decoder = whisper(model, window_s, 5)


def _process_transcribe(pcm: bytes) -> str:
    assert _process_decoder is not None
    return _process_decoder(pcm)


async def threads_throughput(utterances: list[Utterance], workers: int) -> tuple[float, float]:
    from agents_app.speech.stt.jobs import Priority
    from agents_app.speech.stt.whisper import DecoderOptions, WhisperEngine

    options = DecoderOptions(window_s=10)
    engine = WhisperEngine("tiny.en", workers=workers, max_queued=1000, options=options)
    await asyncio.to_thread(engine.decoder)
    started = time.perf_counter()
    latencies = []

    async def one(utterance: Utterance) -> None:
        begun = time.perf_counter()
        await engine.submit(Priority.FINAL, utterance.pcm)
        latencies.append(time.perf_counter() - begun)

    await asyncio.gather(*(one(utterance) for utterance in utterances))
    return len(utterances) / (time.perf_counter() - started), statistics.median(latencies)


def processes_throughput(utterances: list[Utterance], workers: int) -> float:
    with ProcessPoolExecutor(workers, initializer=_process_init, initargs=("tiny.en", 10)) as pool:
        list(pool.map(_process_transcribe, [utterances[0].pcm] * workers))  # load every model
        started = time.perf_counter()
        list(pool.map(_process_transcribe, [utterance.pcm for utterance in utterances]))
        return len(utterances) / (time.perf_counter() - started)


def pool_table() -> None:
    from django.conf import settings

    spoken = espeak_sentences()
    print(f"\nconcurrent finals: {len(spoken)} espeak utterances submitted at once, tiny.en, 10 s")
    print(f"{'pool':36s} | utterances/s | median latency")
    for workers in (1, 2):
        rate, median = asyncio.run(threads_throughput(spoken, workers))
        print(f"{f'{workers} thread(s), one shared model':36s} | {rate:12.2f} | {median:8.2f} s")
    for workers in (1, 2):
        rate = processes_throughput(spoken, workers)
        print(f"{f'{workers} process(es), a model each':36s} | {rate:12.2f} | -")
    print(f"(the server uses threads: STT_WORKERS={settings.STT_WORKERS} on this machine)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", choices=["all", "quick"], default="all")
    parser.add_argument("--skip-pool", action="store_true")
    args = parser.parse_args()
    import django

    django.setup()
    accuracy_table(list(CONFIGS) if args.configs == "all" else QUICK)
    if not args.skip_pool:
        pool_table()


if __name__ == "__main__":
    main()
