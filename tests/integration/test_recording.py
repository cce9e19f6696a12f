"""Call recordings through the routed app: the caller's channel is what they sent with a
spoken card number silenced (real recognizer), the agent's is what the client received,
at the offsets where it played it, without what a barge-in dropped; operators download it."""

from __future__ import annotations

import asyncio
import io
import wave
from typing import Any

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.test import AsyncClient

from sessions_app.models import Session
from sessions_app.tokens import issue_token
from tests.conftest import assert_api_error, bearer
from tests.speech import frames, silence, speech_pcm

pytestmark = pytest.mark.django_db(transaction=True)

RATE = 16000
FRAME = RATE * 20 // 1000  # samples in 20 ms
SAYING = "my card number is"
CARD = "4 5 3 2 7 1 8 8 0 3 6 1 2 9 0 4"  # whisper writes 453271803612904: redacted
THANKS = "thank you"


@pytest.fixture
def recording(settings, tmp_path):
    settings.RECORD_SESSIONS = True
    settings.MEDIA_ROOT = tmp_path


def ms(samples: int) -> int:
    return samples * 1000 // RATE


async def stored_channels(session_id) -> tuple[np.ndarray, np.ndarray]:
    session = await Session.objects.aget(pk=session_id)
    assert session.recording.name == f"recordings/{session_id}.wav"
    with default_storage.open(session.recording.name) as stored, wave.open(stored) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, RATE)
        stereo = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    return stereo[:, 0], stereo[:, 1]


async def end(client) -> None:
    await client.send(type="end")
    await client.receive_until("session_ended", timeout=30)


async def test_a_spoken_card_number_is_silent_in_the_recording(stream, recording, settings):
    settings.STT_ENGINE = "whisper"
    client = await stream()
    before, saying, card = silence(300), speech_pcm(SAYING), speech_pcm(CARD)
    gap, thanks, after = silence(200), speech_pcm(THANKS), silence(1500)
    caller = before + saying + gap + card + gap + thanks + after
    for frame in frames(caller):
        await client.send_raw(data=frame)
    final = (await client.receive_until("transcript_final", timeout=60))[-1]
    assert "[redacted]" in final["text"] and "4532" not in final["text"], final["text"]
    await end(client)

    left, right = await stored_channels(client.session.id)
    sent = np.frombuffer(caller, dtype="<i2")
    assert len(left) == len(sent) and not right.any()
    card_from = len(before + saying + gap) // 2
    card_to = card_from + len(card) // 2
    assert not left[card_from:card_to].any(), "every digit spoken is silence"
    # The rest is as it was said, but for a margin around the digits.
    kept_until = card_from - RATE * 6 // 10
    thanks_from = card_to + len(gap + thanks) // 2 - len(thanks) // 2
    assert np.array_equal(left[:kept_until], sent[:kept_until])
    assert ms(np.count_nonzero(left[:card_from])) > ms(len(saying) // 2) * 0.5
    assert np.array_equal(left[thanks_from + RATE // 2 :], sent[thanks_from + RATE // 2 :])
    assert np.abs(left[thanks_from:]).max() > 1000, "the thanks after the number are kept"


class Player:
    """The test's client plays agent frames as a browser does: each right after the one
    before it, or at once if its queue ran dry; a pause or barge-in drops what is queued.
    The clock is the caller audio it has sent."""

    def __init__(self) -> None:
        self.sent = 0  # caller samples sent
        self.queue_end = 0
        self.heard = np.zeros(0, dtype=np.int16)

    def play(self, frame: bytes) -> None:
        samples = np.frombuffer(frame, dtype="<i2")
        start = max(self.queue_end, self.sent)
        if len(self.heard) < start + len(samples):
            self.heard = np.pad(self.heard, (0, start + len(samples) - len(self.heard)))
        self.heard[start : start + len(samples)] = samples
        self.queue_end = start + len(samples)

    def drop_queued(self) -> None:
        self.heard[self.sent :] = 0
        self.queue_end = min(self.queue_end, self.sent)


async def talk(client, player: Player, stop: asyncio.Event) -> None:
    """Caller audio (silence) in real time until `stop`, and a while after."""
    for frame in frames(silence(60_000)):
        await client.send_raw(data=frame)
        player.sent += len(frame) // 2
        await asyncio.sleep(0.02)
        if stop.is_set():
            return


def best_lag(recorded: np.ndarray, heard: np.ndarray, max_lag: int) -> tuple[int, float]:
    """The shift of `recorded` against `heard` that correlates best, and that correlation."""
    n = max(len(recorded), len(heard)) + max_lag
    a = np.pad(recorded.astype(float), (0, n - len(recorded)))
    b = np.pad(heard.astype(float), (0, n - len(heard)))
    scores = {
        lag: float(np.dot(np.roll(a, -lag), b)) / (np.linalg.norm(a) * np.linalg.norm(b))
        for lag in range(-max_lag, max_lag + 1, 16)
    }
    lag = max(scores, key=scores.get)
    return lag, scores[lag]


async def test_the_agent_channel_is_what_the_client_played_where_it_played_it(
    stream, recording, settings
):
    settings.TTS_ENGINE = "espeak"
    client = await stream()
    player, stop = Player(), asyncio.Event()
    talking = asyncio.create_task(talk(client, player, stop))
    await asyncio.sleep(0.3)
    await client.send(type="text", text="tell me about the sea and the ships", final=True)
    frames_received, cut_at = 0, None
    while True:
        item: Any = await client.receive_any(timeout=20)
        if isinstance(item, bytes):
            player.play(item)
            frames_received += 1
            if frames_received == 60 and cut_at is None:  # 1.2 s into the reply
                await client.send(type="interrupt")
        elif item["type"] == "barge_in":
            player.drop_queued()
            cut_at = player.sent
            break
    await asyncio.sleep(0.5)
    stop.set()
    await talking
    await end(client)

    left, right = await stored_channels(client.session.id)
    assert not left.any() and len(left) == player.sent
    assert right.any()
    heard = player.heard[: len(right)]
    lag, score = best_lag(right, heard, max_lag=RATE // 5)
    assert abs(lag) <= 3 * FRAME, f"the agent is {ms(lag)} ms off where the client played it"
    assert score > 0.9, score
    assert not right[cut_at + 3 * FRAME :].any(), "audio the barge-in dropped is not there"
    assert np.abs(right[cut_at - 10 * FRAME : cut_at]).max() > 500, "what played up to it is"


async def test_only_operators_download_a_recording(stream, recording, operator_client):
    caller = await stream()
    for frame in frames(silence(400)):
        await caller.send_raw(data=frame)
    await end(caller)
    url = f"/api/sessions/{caller.session.id}/recording"
    anyone = AsyncClient()

    own = await anyone.get(url, headers=bearer(issue_token(caller.session.id)))
    assert_api_error(own, 403, "forbidden")
    assert_api_error(await anyone.get(url), 401, "unauthorized")
    detail = await operator_client.get(f"/api/sessions/{caller.session.id}")
    assert detail.json()["recording_url"] == url
    admin_page = await operator_client.get(
        f"/admin/sessions_app/session/{caller.session.id}/change/"
    )
    assert f'href="{url}"' in admin_page.content.decode()
    response = await operator_client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    body = b"".join([chunk async for chunk in response.streaming_content])
    with wave.open(io.BytesIO(body)) as wav:
        assert wav.getnchannels() == 2 and wav.getnframes() == RATE * 400 // 1000


async def test_a_session_without_recording_has_none_to_download(stream, operator_client):
    caller = await stream()  # RECORD_SESSIONS is off by default
    for frame in frames(silence(400)):
        await caller.send_raw(data=frame)
    await end(caller)
    detail = await operator_client.get(f"/api/sessions/{caller.session.id}")
    assert detail.json()["recording_url"] is None
    response = await operator_client.get(f"/api/sessions/{caller.session.id}/recording")
    assert_api_error(response, 404, "recording_not_found")


async def test_deleting_a_session_deletes_its_recording(stream, recording):
    caller = await stream()
    for frame in frames(silence(400)):
        await caller.send_raw(data=frame)
    await end(caller)
    name = f"recordings/{caller.session.id}.wav"
    assert default_storage.exists(name)
    kept = await stream()  # another session's recording stays
    for frame in frames(silence(200)):
        await kept.send_raw(data=frame)
    await end(kept)

    await Session.objects.filter(pk=caller.session.id).adelete()

    assert not default_storage.exists(name)
    assert default_storage.exists(f"recordings/{kept.session.id}.wav")
