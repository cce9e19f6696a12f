"""The OpenAI speech engines through the real SDK, against the fake OpenAI server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agents_app.errors import ProviderRejected, ProviderTimeout, ProviderUnavailable
from agents_app.speech.audio import from_wav
from agents_app.speech.stt import build_recognizer
from agents_app.speech.stt.openai import OpenAIRecognizer
from agents_app.speech.stt.whisper import WhisperRecognizer
from agents_app.speech.tts import build_synthesizer
from agents_app.speech.tts.openai import OpenAISynthesizer
from agents_app.strategies.openai import close_shared_clients
from tests.fakes.openai_server import (
    SPEECH,
    TRANSCRIPTIONS,
    ErrorReply,
    Hang,
    SpeechReply,
    SpokenReply,
    TranscribedReply,
    TranscriptionReply,
)
from tests.speech import frames, speech_pcm
from tests.unit.test_stt_engines import RecognizerContract
from tests.unit.test_tts_engines import SynthesizerContract


@pytest.fixture
def speech_settings(fake_openai, settings):
    settings.OPENAI_STT_MODEL = "stt-test"
    settings.OPENAI_TTS_MODEL = "tts-test"
    settings.OPENAI_TTS_VOICE = "verse"
    return settings


@pytest.fixture
async def recognizer(speech_settings) -> AsyncIterator[OpenAIRecognizer]:
    recognizer = OpenAIRecognizer()
    yield recognizer
    await recognizer.aclose()


@pytest.fixture
async def synthesizer(speech_settings) -> AsyncIterator[OpenAISynthesizer]:
    synthesizer = OpenAISynthesizer()
    yield synthesizer
    await synthesizer.aclose()


async def say(recognizer: OpenAIRecognizer, pcm: bytes) -> list[str | None]:
    """Feed one utterance in 20 ms frames; the partials the recognizer returned."""
    await recognizer.start_utterance()
    return [await recognizer.accept(frame) for frame in frames(pcm)]


def speak_24k(text: str) -> bytes:
    return speech_pcm(text, sample_rate=24000)


# Speech to text


async def test_the_utterance_is_uploaded_as_16khz_mono_wav_and_its_text_returned(
    fake_openai, recognizer
):
    pcm = speech_pcm("where is my order")
    fake_openai.script(TranscriptionReply(" Where is my order? "), path=TRANSCRIPTIONS)

    partials = await say(recognizer, pcm)
    transcript = await recognizer.finish_utterance()

    assert partials == [None] * len(partials)
    assert transcript.text == "Where is my order?"
    [request] = fake_openai.requests
    assert request.headers["Authorization"] == "Bearer test-key"
    assert request.body["model"] == "stt-test"
    [upload] = fake_openai.uploads_to(TRANSCRIPTIONS)
    assert (upload.filename, upload.content_type) == ("utterance.wav", "audio/wav")
    assert from_wav(upload.data) == (pcm, 16000)


async def test_whisper_1_gives_word_times_and_other_models_none(
    fake_openai, recognizer, speech_settings
):
    said = "my card is 4111 1111 1111 1111"
    card = (("my", 0.1, 0.3), ("card", 0.3, 0.6), ("is", 0.6, 0.7), ("4111", 0.7, 1.0))
    fake_openai.script(TranscriptionReply(said), path=TRANSCRIPTIONS)
    await say(recognizer, speech_pcm("my card"))
    assert (await recognizer.finish_utterance()).text == said
    assert await recognizer.word_timings() is None  # text only was asked for
    assert "response_format" not in fake_openai.requests[-1].body

    speech_settings.OPENAI_STT_MODEL = "whisper-1"
    fake_openai.script(TranscriptionReply(said, words=card), path=TRANSCRIPTIONS)
    await say(recognizer, speech_pcm("my card"))
    assert (await recognizer.finish_utterance()).text == said
    request = fake_openai.requests[-1].body
    assert request["response_format"] == "verbose_json"
    assert request["timestamp_granularities[]"] == "word"
    timings = await recognizer.word_timings()
    assert [(w.text, w.start_ms, w.end_ms) for w in timings][-1] == ("4111", 700, 1000)


async def test_each_utterance_sends_only_its_own_audio(fake_openai, recognizer):
    first, second = speech_pcm("yes"), speech_pcm("no thank you")
    fake_openai.script(
        TranscriptionReply("yes"), TranscriptionReply("no thank you"), path=TRANSCRIPTIONS
    )

    await say(recognizer, first)
    assert (await recognizer.finish_utterance()).text == "yes"
    await say(recognizer, second)
    assert (await recognizer.finish_utterance()).text == "no thank you"

    uploads = [from_wav(upload.data)[0] for upload in fake_openai.uploads_to(TRANSCRIPTIONS)]
    assert uploads == [first, second]


async def test_a_rate_limit_is_retried_once_then_succeeds(fake_openai, recognizer):
    fake_openai.script(ErrorReply(429), TranscriptionReply("hello"), path=TRANSCRIPTIONS)

    await say(recognizer, speech_pcm("hello"))
    transcript = await recognizer.finish_utterance()

    assert transcript.text == "hello"
    assert len(fake_openai.requests_to(TRANSCRIPTIONS)) == 2


async def test_server_errors_past_the_retries_are_stt_unavailable(fake_openai, recognizer):
    fake_openai.script(*[ErrorReply(500)] * 3, path=TRANSCRIPTIONS)

    await say(recognizer, speech_pcm("hello"))
    with pytest.raises(ProviderUnavailable) as caught:
        await recognizer.finish_utterance()

    assert caught.value.code == "stt_unavailable"
    assert caught.value.status == 500
    assert len(fake_openai.requests_to(TRANSCRIPTIONS)) == 3


async def test_a_rejected_request_is_not_retried(fake_openai, recognizer):
    fake_openai.script(ErrorReply(400), TranscriptionReply("never sent"), path=TRANSCRIPTIONS)

    await say(recognizer, speech_pcm("hello"))
    with pytest.raises(ProviderRejected) as caught:
        await recognizer.finish_utterance()

    assert caught.value.code == "stt_rejected"
    assert len(fake_openai.requests_to(TRANSCRIPTIONS)) == 1


async def test_an_empty_utterance_is_empty_text_without_a_request(fake_openai, recognizer):
    await recognizer.start_utterance()

    transcript = await recognizer.finish_utterance()

    assert transcript.text == ""
    assert fake_openai.requests == []


async def test_registry_engines_share_one_client_and_aclose_leaves_it_open(speech_settings):
    recognizer = build_recognizer("openai")
    synthesizer = build_synthesizer("openai", "coral")
    assert isinstance(recognizer.inner, OpenAIRecognizer)
    assert recognizer.client is synthesizer.client, "one client (and pool) per process"

    await recognizer.aclose()

    assert not synthesizer.client.is_closed(), "other sessions still use it"
    await synthesizer.aclose()


async def test_closing_the_loops_shared_clients_closes_them_and_the_next_engine_gets_a_new_one(
    fake_openai, speech_settings
):
    """What a stopping server does (sessions_app.shutdown), so no connection is left open."""
    fake_openai.script(*[SpokenReply(speak_24k)] * 2, path=SPEECH)
    synthesizer = build_synthesizer("openai", "coral")
    await synthesizer.synthesize("Hello there.")  # the client has opened a connection

    await close_shared_clients()

    assert synthesizer.client.is_closed()
    later = build_synthesizer("openai", "coral")
    assert later.client is not synthesizer.client
    assert (await later.synthesize("Hello again.")).pcm
    await close_shared_clients()


async def test_a_client_handed_in_is_closed_by_aclose():
    client = openai_client_of_its_own()
    recognizer = OpenAIRecognizer(client=client)

    await recognizer.aclose()

    assert client.is_closed()


def openai_client_of_its_own():
    import openai

    return openai.AsyncOpenAI(api_key="k", base_url="http://127.0.0.1:9/v1", max_retries=0)


# Text to speech


class TestOpenAISynthesizer(SynthesizerContract):
    """The engine contract, with the fake voicing each request through espeak at 24 kHz."""

    sample_rate = 24000

    @pytest.fixture
    async def synthesizer(self, fake_openai, speech_settings) -> AsyncIterator[OpenAISynthesizer]:
        fake_openai.script(*[SpokenReply(speak_24k)] * 4, path=SPEECH)
        synthesizer = OpenAISynthesizer()
        yield synthesizer
        await synthesizer.aclose()


async def test_the_request_asks_for_raw_pcm_in_the_configured_voice(fake_openai, synthesizer):
    fake_openai.script(SpeechReply(bytes(4800)), path=SPEECH)

    await synthesizer.synthesize("Your order has shipped.")

    [request] = fake_openai.requests
    assert request.headers["Authorization"] == "Bearer test-key"
    assert request.body == {
        "model": "tts-test",
        "voice": "verse",
        "input": "Your order has shipped.",
        "response_format": "pcm",
    }


async def test_a_voice_given_by_the_registry_is_used(fake_openai, speech_settings):
    synthesizer = build_synthesizer("openai", "coral")
    assert isinstance(synthesizer.inner, OpenAISynthesizer)
    fake_openai.script(SpeechReply(bytes(4800)), path=SPEECH)

    await synthesizer.synthesize("Hello.")
    await synthesizer.aclose()

    assert fake_openai.requests_to(SPEECH)[0]["voice"] == "coral"


async def test_the_clip_is_the_returned_bytes_at_24khz(fake_openai, synthesizer):
    pcm = speak_24k("Your order has shipped.")
    fake_openai.script(SpeechReply(pcm), path=SPEECH)

    clip = await synthesizer.synthesize("Your order has shipped.")

    assert clip.sample_rate == 24000
    assert clip.pcm == pcm


async def test_word_starts_are_spread_by_word_length(fake_openai, synthesizer):
    # 700 ms of audio; the words weigh 1, 2 and 4 characters of 7.
    fake_openai.script(SpeechReply(bytes(24000 * 2 * 700 // 1000)), path=SPEECH)

    clip = await synthesizer.synthesize("I am here")

    assert [(m.start, m.end, m.audio_ms) for m in clip.words] == [
        (0, 1, 0),
        (2, 4, 100),
        (5, 9, 300),
    ]


async def test_server_errors_past_the_retries_are_tts_unavailable(fake_openai, synthesizer):
    fake_openai.script(*[ErrorReply(500)] * 3, path=SPEECH)

    with pytest.raises(ProviderUnavailable) as caught:
        await synthesizer.synthesize("Hello there.")

    assert caught.value.code == "tts_unavailable"
    assert len(fake_openai.requests_to(SPEECH)) == 3


async def test_a_hung_request_is_a_tts_timeout(fake_openai, speech_settings):
    speech_settings.OPENAI_TIMEOUT_S = 0.2
    speech_settings.PROVIDER_RETRY_ATTEMPTS = 2
    fake_openai.script(Hang(), Hang(), path=SPEECH)
    synthesizer = OpenAISynthesizer()

    with pytest.raises(ProviderTimeout) as caught:
        await synthesizer.synthesize("Hello there.")
    await synthesizer.aclose()

    assert caught.value.code == "tts_timeout"
    assert len(fake_openai.requests_to(SPEECH)) == 2


async def test_blank_text_is_an_empty_clip_without_a_request(fake_openai, synthesizer):
    clip = await synthesizer.synthesize("  ")

    assert clip.pcm == b""
    assert clip.words == []
    assert fake_openai.requests == []


class TestOpenAIRecognizerContract(RecognizerContract):
    """The OpenAI recognizer keeps the same promises; the fake transcribes what it is sent
    (with the offline engine), as a cloud recognizer would."""

    gives_partials = False

    @pytest.fixture
    async def recognizer(self, speech_settings, fake_openai) -> AsyncIterator[OpenAIRecognizer]:
        offline = WhisperRecognizer()

        async def transcribe(wav: bytes) -> str:
            pcm, rate = from_wav(wav)
            assert rate == 16000
            await offline.start_utterance()
            await offline.accept(pcm)
            return (await offline.finish_utterance()).text

        fake_openai.script(*[TranscribedReply(transcribe)] * 8, path=TRANSCRIPTIONS)
        # The fake decodes with whisper (loading it takes a second, more on a busy machine):
        # these tests are about what is heard, not about timeouts.
        speech_settings.OPENAI_TIMEOUT_S = 10.0
        recognizer = OpenAIRecognizer()
        yield recognizer
        await recognizer.aclose()
        await offline.aclose()
