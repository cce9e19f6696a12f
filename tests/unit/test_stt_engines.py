"""The speech recognizer contract, run once per engine (pocketsphinx here; openai can join)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections.abc import AsyncIterator

import pytest
from pocketsphinx import Decoder

from agents_app.errors import ProviderUnavailable
from agents_app.speech.audio import duration_ms
from agents_app.speech.stt import pocketsphinx as engine
from agents_app.speech.stt.base import INPUT_RATE, SpeechRecognizer, Transcript
from agents_app.speech.stt.pocketsphinx import PocketsphinxRecognizer
from tests.speech import frames, non_speech_clips, silence, speech_pcm

SENTENCE = "hello I would like to check my account balance please"
REPLY = "yes please"


async def recognise(recognizer: SpeechRecognizer, pcm: bytes) -> tuple[list[str], Transcript]:
    """One utterance fed in 20 ms frames, as the recognition worker does: partials and final."""
    await recognizer.start_utterance()
    partials = []
    for frame in frames(pcm):
        partial = await recognizer.accept(frame)
        if partial is not None:
            partials.append(partial)
    return partials, await recognizer.finish_utterance()


def words(text: str) -> set[str]:
    """The words of a transcript, whatever the engine's casing and punctuation."""
    return set(re.findall(r"[\w']+", text.lower()))


class RecognizerContract:
    """What every engine promises; a subclass provides the `recognizer` fixture."""

    # Words of SENTENCE and REPLY the engine hears every time from espeak's en-us voice.
    sentence_words: frozenset[str] = frozenset({"would", "like"})
    reply_words: frozenset[str] = frozenset({"yes"})
    gives_partials: bool = True
    # Partials come at most once per this much audio, so they do not flood the client.
    partial_every_ms: int = 300
    # Whether the engine itself gives no words for noise (else only the VAD in front keeps
    # noise from it).
    rejects_non_speech: bool = True

    async def test_a_spoken_sentence_gives_a_final_with_a_robust_word(
        self, recognizer: SpeechRecognizer
    ):
        _, transcript = await recognise(recognizer, speech_pcm(SENTENCE))

        assert transcript.text != ""
        assert transcript.text == transcript.text.strip()
        assert words(transcript.text) & self.sentence_words
        assert transcript.confidence is None or 0.0 <= transcript.confidence <= 1.0

    async def test_word_timings_place_the_last_finals_words_in_its_audio(
        self, recognizer: SpeechRecognizer
    ):
        lead = silence(500)
        pcm = lead + speech_pcm(SENTENCE) + silence(300)
        _, transcript = await recognise(recognizer, pcm)
        timings = await recognizer.word_timings()
        if timings is None:
            pytest.skip("this engine gives no word timings: a recording silences whole finals")
        spoken = [word for word in timings if words(word.text)]
        assert words(" ".join(word.text for word in spoken)) == words(transcript.text)
        starts = [word.start_ms for word in spoken]
        assert starts == sorted(starts)
        assert all(w.start_ms <= w.end_ms <= duration_ms(pcm, INPUT_RATE) for w in spoken)
        assert spoken[-1].end_ms > duration_ms(lead + speech_pcm(SENTENCE), INPUT_RATE) / 2

    async def test_silence_gives_an_empty_final_and_no_partials(self, recognizer: SpeechRecognizer):
        partials, transcript = await recognise(recognizer, silence(1000))

        assert partials == []
        assert transcript.text == ""

    @pytest.mark.parametrize("sound", sorted(non_speech_clips()))
    async def test_sounds_that_are_not_words_give_no_text(
        self, recognizer: SpeechRecognizer, sound: str
    ):
        if not self.rejects_non_speech:
            pytest.skip("this engine writes words on noise: only the VAD keeps noise from it")
        partials, transcript = await recognise(recognizer, non_speech_clips()[sound])

        assert partials == []
        assert transcript.text == ""

    async def test_two_utterances_in_a_row_are_recognised_apart(self, recognizer: SpeechRecognizer):
        _, first = await recognise(recognizer, speech_pcm(SENTENCE))
        _, second = await recognise(recognizer, speech_pcm(REPLY))

        assert words(first.text) & self.sentence_words
        assert words(second.text) & self.reply_words
        assert not words(second.text) & self.sentence_words

    async def test_an_utterance_without_audio_gives_an_empty_final(
        self, recognizer: SpeechRecognizer
    ):
        assert (await recognizer.finish_utterance()).text == ""
        await recognizer.start_utterance()
        assert (await recognizer.finish_utterance()).text == ""

    async def test_partials_are_new_each_time_and_do_not_flood(self, recognizer: SpeechRecognizer):
        pcm = speech_pcm(SENTENCE)

        partials, _ = await recognise(recognizer, pcm)

        if self.gives_partials:
            assert partials
        assert all(partial.strip() for partial in partials)
        assert all(before != after for before, after in itertools.pairwise(partials))
        assert len(partials) <= duration_ms(pcm, INPUT_RATE) // self.partial_every_ms


class CrashingDecoder:
    """A pocketsphinx decoder that starts utterances but fails on audio."""

    def __init__(self, **config: object) -> None:
        pass

    def get_cmn(self) -> str:
        return "40,3,-1"

    def set_cmn(self, cmn: str) -> None:
        pass

    def start_utt(self) -> None:
        pass

    def end_utt(self) -> None:
        pass

    def process_raw(self, pcm: bytes, no_search: bool, full_utt: bool) -> int:
        raise RuntimeError("decoder crashed")


class TestPocketsphinx(RecognizerContract):
    rejects_non_speech = False

    @pytest.fixture
    async def recognizer(self) -> AsyncIterator[PocketsphinxRecognizer]:
        recognizer = PocketsphinxRecognizer()
        yield recognizer
        await recognizer.aclose()

    @pytest.fixture(autouse=True)
    async def engine_thread_idle(self) -> None:
        """An earlier test's session may still be handing its decoder back on the engine
        thread: let that finish first, or it lands in the empty pool a test sets up."""
        await asyncio.get_running_loop().run_in_executor(engine._executor, lambda: None)

    @pytest.fixture
    def created_decoders(self, monkeypatch) -> list[Decoder]:
        """Every decoder made from now on; the idle pool starts empty and is restored after."""
        created: list[Decoder] = []

        def counting_decoder(**config: object) -> Decoder:
            created.append(Decoder(**config))
            return created[-1]

        monkeypatch.setattr(engine, "_idle", [])
        monkeypatch.setattr(engine, "Decoder", counting_decoder)
        return created

    async def test_decoding_leaves_the_event_loop_free(self, recognizer: PocketsphinxRecognizer):
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        await recognizer.start_utterance()
        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0)
        before = ticks
        # 3 s of speech in one call: blocking decoding would let the ticker run not even once.
        await recognizer.accept(speech_pcm(SENTENCE))
        transcript = await recognizer.finish_utterance()
        during = ticks - before
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker

        assert during > 20
        assert words(transcript.text) & self.sentence_words

    async def test_a_decoder_is_held_per_utterance_and_serves_the_next_caller_as_if_new(
        self, created_decoders: list[Decoder]
    ):
        first, second = PocketsphinxRecognizer(), PocketsphinxRecognizer()
        await recognise(first, speech_pcm(SENTENCE))  # a long caller: the decoder adapts
        assert first._decoding is None, "between utterances a session holds no decoder"
        pooled = engine._idle[0]
        assert pooled.decoder is created_decoders[0]
        # The first caller's channel (the cepstral mean) stays with that caller; the pooled
        # decoder is back at the estimate it had when new.
        assert first._cmn is not None and first._cmn != pooled.initial_cmn
        assert pooled.decoder.get_cmn() == pooled.initial_cmn

        _, heard_second = await recognise(second, speech_pcm(REPLY))

        assert len(created_decoders) == 1, "the next caller was served by the pooled decoder"
        assert heard_second.text
        await first.aclose()
        await second.aclose()

    async def test_a_callers_channel_is_carried_to_their_next_utterance(
        self, created_decoders: list[Decoder]
    ):
        caller = PocketsphinxRecognizer()
        await recognise(caller, speech_pcm(SENTENCE))
        learned = caller._cmn
        await recognise(PocketsphinxRecognizer(), speech_pcm(REPLY))  # another caller between

        await caller.start_utterance()

        decoding = caller._decoding
        assert learned is not None and learned != decoding.initial_cmn
        assert decoding.decoder.get_cmn() == learned
        await caller.aclose()

    async def test_a_failing_decoder_raises_stt_unavailable_and_is_not_pooled(self, monkeypatch):
        monkeypatch.setattr(engine, "_idle", [])
        monkeypatch.setattr(engine, "Decoder", CrashingDecoder)
        recognizer = PocketsphinxRecognizer()
        await recognizer.start_utterance()

        with pytest.raises(ProviderUnavailable) as caught:
            await recognizer.accept(speech_pcm(REPLY))
        await recognizer.aclose()

        assert caught.value.code == "stt_unavailable"
        assert caught.value.retryable
        assert engine._idle == []

    async def test_a_decoder_that_cannot_be_made_raises_stt_unavailable(self, monkeypatch):
        def missing_model(**config: object) -> Decoder:
            raise RuntimeError("cannot load the acoustic model")

        monkeypatch.setattr(engine, "_idle", [])
        monkeypatch.setattr(engine, "Decoder", missing_model)

        with pytest.raises(ProviderUnavailable, match="acoustic model"):
            await PocketsphinxRecognizer().start_utterance()
