"""The dashboard by voice: Chromium's fake microphone plays espeak speech to a real daphne server.

Chromium loops the WAV file it is given, so a caller "says" the sentence again and again, with
the silence at the end of the file between the repeats. A short pause makes the caller talk
over the agent's answer (barge-in); a long one lets the answer play to its end.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, Playwright, Route, expect

from agents_app.speech.audio import resample, to_wav
from tests.e2e.browser import (
    event_items,
    events_of,
    launch_chromium,
    open_dashboard,
    payload,
    start_session,
)
from tests.speech import silence, speech_pcm, vocal_burst

pytestmark = pytest.mark.browser

SENTENCE = "hello I would like to check my account balance please"
# Chromium's own capture rate (a 16 kHz file works too).
WAV_RATE = 48000
FRAME_MS = 20  # the server's agent audio frames
# Silence after the sentence: shorter than the agent's spoken answer, or longer than it.
BARGE_IN_PAUSE_MS = 2000
LISTEN_PAUSE_MS = 9000
# Bounds, not timings: the recognizer and the VAD answer well within them.
HEARD_TIMEOUT_MS = 20_000
ANSWER_TIMEOUT_MS = 15_000
SCREENSHOT = "/tmp/dashboard-voice.png"

CallerBrowser = Callable[..., Browser]


@pytest.fixture(scope="module")
def caller_browser(
    playwright: Playwright, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CallerBrowser]:
    """Chromium whose microphone says `sentence`, then `pause_ms` of silence, over and over."""
    browsers: dict[tuple[int, str, bytes | None], Browser] = {}
    folder = tmp_path_factory.mktemp("fake-microphone")

    def launch(pause_ms: int, sentence: str = SENTENCE, clip: bytes | None = None) -> Browser:
        key = (pause_ms, sentence, clip)
        if key not in browsers:
            pcm = silence(300) + (clip or speech_pcm(sentence)) + silence(pause_ms)
            wav = folder / f"caller-{len(browsers)}.wav"
            wav.write_bytes(to_wav(resample(pcm, 16000, WAV_RATE), WAV_RATE))
            browsers[key] = launch_chromium(
                playwright,
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}",
            )
        return browsers[key]

    yield launch
    for browser in browsers.values():
        browser.close()


def played_samples(page: Page) -> int:
    """Samples the playback worklet reports it has played."""
    return int(page.get_by_test_id("played-audio").get_attribute("data-samples") or 0)


def wait_until_played(page: Page, samples: int) -> None:
    """Until the playback worklet reports at least `samples` played."""
    page.wait_for_function(
        "least => document.querySelector('[data-testid=played-audio]').dataset.samples >= least",
        arg=samples,
    )


def ask_for_sample_rate(page: Page, rate: int) -> None:
    """Make the dashboard's next session use `rate` (the dashboard itself asks for the default)."""

    def with_rate(route: Route) -> None:
        body = json.loads(route.request.post_data or "{}")
        route.continue_(post_data=json.dumps({**body, "sample_rate": rate}))

    page.route("**/api/sessions", with_rate)


def switch_microphone(page: Page, on: bool) -> None:
    page.get_by_test_id("mic-button").click()
    expect(page.get_by_test_id("mic-button")).to_have_attribute("aria-pressed", str(on).lower())


def assert_gapless_without_errors(page: Page) -> None:
    items = event_items(page)
    assert [seq for _, seq in items] == list(range(1, len(items) + 1))
    assert "error" not in {kind for kind, _ in items}


@pytest.mark.parametrize("session_rate", [16000, 24000])
def test_spoken_question_gets_a_spoken_answer(
    caller_browser: CallerBrowser, server_url: str, session_rate: int
) -> None:
    """The whole turn by voice; at 24 kHz both AudioContexts follow the session's rate."""
    with open_dashboard(caller_browser(LISTEN_PAUSE_MS), server_url) as page:
        voice_state = page.get_by_test_id("voice-state")
        ask_for_sample_rate(page, session_rate)
        start_session(page)
        expect(voice_state).to_have_text("listening")
        assert payload(events_of(page, "session_started"))["sample_rate"] == session_rate

        switch_microphone(page, on=True)
        page.wait_for_function(
            "document.querySelector('[data-testid=level-meter]').value > 0.3",
            timeout=HEARD_TIMEOUT_MS,
        )
        expect(voice_state).to_have_text("you are speaking", timeout=HEARD_TIMEOUT_MS)
        final = events_of(page, "transcript_final")
        expect(final).to_have_count(1, timeout=HEARD_TIMEOUT_MS)
        # The pause is long: the microphone is off before the sentence comes round again.
        switch_microphone(page, on=False)
        expect(page.get_by_test_id("level-meter")).to_have_js_property("value", 0)

        heard = payload(final)["text"]
        assert heard.strip()
        expect(page.get_by_test_id("user-bubble").locator("p")).to_have_text([heard])
        expect(voice_state).to_have_text("agent speaking", timeout=ANSWER_TIMEOUT_MS)
        completed = events_of(page, "playback_completed")
        expect(completed).to_have_count(1, timeout=ANSWER_TIMEOUT_MS)
        expect(voice_state).to_have_text("listening")
        expect(page.get_by_test_id("agent-bubble")).to_contain_text(f"You said: {heard}")

        # The playback worklet plays every sample the server sent, once the last has drained.
        assert payload(events_of(page, "playback_started"))["sample_rate"] == session_rate
        played_ms = payload(completed)["played_ms"]
        assert int(page.get_by_test_id("audio-frames").inner_text()) >= played_ms // FRAME_MS
        samples_per_ms = session_rate // 1000
        wait_until_played(page, (played_ms - 1) * samples_per_ms)
        assert played_samples(page) <= (played_ms + 1) * samples_per_ms
        # Played at the session's rate: the worklet's samples last as long as the server's.
        shown_ms = int(page.get_by_test_id("played-audio").get_attribute("data-ms") or 0)
        assert abs(shown_ms - played_ms) <= 1
        types = {kind for kind, _ in event_items(page)}
        assert {"speech_started", "speech_stopped", "playback_started"} <= types
        assert "barge_in" not in types
        assert_gapless_without_errors(page)


def test_caller_talks_over_the_agent(caller_browser: CallerBrowser, server_url: str) -> None:
    with open_dashboard(caller_browser(BARGE_IN_PAUSE_MS), server_url) as page:
        start_session(page)
        switch_microphone(page, on=True)

        expect(events_of(page, "transcript_final").first).to_be_attached(timeout=HEARD_TIMEOUT_MS)
        assert payload(events_of(page, "transcript_final").first)["text"].strip()
        expect(events_of(page, "playback_started").first).to_be_attached(timeout=ANSWER_TIMEOUT_MS)
        # The sentence comes round again while the agent answers: it cuts the answer short.
        barge_in = events_of(page, "barge_in").first
        expect(barge_in).to_be_attached(timeout=HEARD_TIMEOUT_MS)
        assert payload(barge_in)["source"] == "speech"
        expect(page.get_by_test_id("interrupted-note").first).to_contain_text("Interrupted")
        # The page dropped the audio it held: nothing is left to play.
        expect(page.get_by_test_id("played-audio")).to_have_attribute("data-buffered", "0")
        assert int(page.get_by_test_id("audio-frames").inner_text()) > 0
        wait_until_played(page, 1)
        assert played_samples(page) > 0

        barge_in.locator("summary").click()
        page.screenshot(path=SCREENSHOT, full_page=True)
        switch_microphone(page, on=False)
        assert_gapless_without_errors(page)


def test_asking_the_rules_agent_for_the_balance_out_loud(
    caller_browser: CallerBrowser, server_url: str
) -> None:
    """What a new user tries first: speak a request, hear the agent act on it."""
    with open_dashboard(caller_browser(LISTEN_PAUSE_MS, "what's my balance"), server_url) as page:
        start_session(page, agent="rules")
        switch_microphone(page, on=True)

        final = events_of(page, "transcript_final")
        expect(final).to_have_count(1, timeout=HEARD_TIMEOUT_MS)
        switch_microphone(page, on=False)
        assert "balance" in payload(final)["text"].lower()
        expect(page.get_by_test_id("agent-bubble")).to_contain_text(
            "Your balance is", timeout=ANSWER_TIMEOUT_MS
        )
        expect(events_of(page, "playback_completed")).to_have_count(1, timeout=ANSWER_TIMEOUT_MS)
        assert_gapless_without_errors(page)


def test_a_cough_over_the_agent_pauses_the_page_s_audio_and_the_reply_plays_on(
    caller_browser: CallerBrowser, server_url: str
) -> None:
    """The microphone asks a question, then, while the agent answers, clears its throat."""
    clip = (
        speech_pcm("please repeat this long sentence about the weather on the coast")
        + silence(2600)
        + vocal_burst()
        + silence(12_000)
    )
    with open_dashboard(caller_browser(0, clip=clip), server_url) as page:
        start_session(page)
        switch_microphone(page, on=True)

        expect(events_of(page, "playback_paused").first).to_be_attached(timeout=HEARD_TIMEOUT_MS)
        expect(events_of(page, "playback_resumed").first).to_be_attached(timeout=ANSWER_TIMEOUT_MS)
        expect(events_of(page, "playback_completed")).to_have_count(1, timeout=ANSWER_TIMEOUT_MS)
        switch_microphone(page, on=False)

        # The page dropped what it held at the pause, then played the rest of the reply.
        assert int(page.get_by_test_id("played-audio").get_attribute("data-clears") or 0) >= 1
        played_ms = payload(events_of(page, "playback_completed"))["played_ms"]
        wait_until_played(page, (played_ms // 2) * 16)
        types = {kind for kind, _ in event_items(page)}
        assert "barge_in" not in types
        expect(page.get_by_test_id("agent-bubble")).to_contain_text("the coast")
        assert_gapless_without_errors(page)
