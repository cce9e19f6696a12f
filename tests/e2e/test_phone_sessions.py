"""The dashboard's session list, and a phone call watched in it, against a real daphne.

The server has telephony configured against fakes on loopback, as in
tests/integration/acs/test_phone_call_process.py: a TLS fake of ACS Call Automation (trusted
through SSL_CERT_FILE), and a JWKS for ACS's signed tokens. The test plays Event Grid and ACS:
it posts IncomingCall, then drives the call's media WebSocket from a thread of its own while
the page watches. The agent speaks with the silent engine (300 ms a word), so a long reply is
still playing when the operator presses Interrupt.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Coroutine, Iterator
from typing import Any

import aiohttp
import pytest
from playwright.sync_api import Browser, Locator, Page, Route, expect

from tests.e2e.browser import (
    event_items,
    events_of,
    log_in,
    open_dashboard,
    payload,
    start_session,
)
from tests.fakes.acs_events import (
    audio_data,
    audio_metadata,
    callback_event,
    dtmf,
    incoming_call,
    transcription,
)
from tests.fakes.acs_server import FakeAcsServer, TlsMaterial, make_tls_material
from tests.fakes.acs_tokens import AcsSigner, JwksServer
from tests.servers import (
    OPERATOR_PASSWORD,
    create_superuser,
    migrate,
    running_daphne,
    server_env,
)

pytestmark = pytest.mark.browser

AUDIENCE = "00000000-0000-0000-0000-00000000acs0"
SECRET = "webhook-secret-for-e2e"
CALLBACK_BASE = "https://voice.example.test"
CALLER = "4:+14255550123"
OPERATOR = "operator"
# The list is polled every 3 s: a bound for a change to show up, not a timing.
LISTED_TIMEOUT_MS = 10_000
SCREENSHOT = "/tmp/dashboard-phone.png"


# --- Fakes and the server, once per module ------------------------------------------------------


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("acs-tls"))


@pytest.fixture(scope="module")
def fake_acs(tls_material: TlsMaterial) -> Iterator[FakeAcsServer]:
    with FakeAcsServer(tls_material) as server:
        yield server


@pytest.fixture(scope="module")
def acs_signer() -> AcsSigner:
    return AcsSigner()


@pytest.fixture(scope="module")
def jwks_server(acs_signer: AcsSigner) -> Iterator[JwksServer]:
    with JwksServer(acs_signer) as server:
        yield server


@pytest.fixture(scope="module")
def phone_server_url(
    tmp_path_factory: pytest.TempPathFactory,
    fake_acs: FakeAcsServer,
    tls_material: TlsMaterial,
    jwks_server: JwksServer,
) -> Iterator[str]:
    """A daphne answering phone calls through the fake ACS, with the rules agent."""
    workdir = tmp_path_factory.mktemp("e2e-phone-server")
    layer = {"REDIS_URL": os.environ["REDIS_URL"]} if os.environ.get("REDIS_URL") else {}
    env = server_env(
        DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
        DEBUG="1",
        **layer,
        AGENT_STRATEGY="rules",
        TTS_ENGINE="silent",
        STT_ENGINE="none",
        DTMF_ENTRY_TIMEOUT_MS="600000",  # entries end with "#"
        RECORD_SESSIONS="1",
        MEDIA_ROOT=str(workdir / "media"),
        ACS_CONNECTION_STRING=fake_acs.connection_string,
        ACS_CALLBACK_BASE_URL=CALLBACK_BASE,
        ACS_WEBHOOK_SECRET=SECRET,
        ACS_JWT_AUDIENCE=AUDIENCE,
        ACS_JWKS_URL=jwks_server.url,
        SSL_CERT_FILE=str(tls_material.ca_path),
        REQUESTS_CA_BUNDLE=str(tls_material.ca_path),
    )
    migrate(env)
    create_superuser(env, OPERATOR)
    with running_daphne(env, workdir / "daphne.log") as url:
        yield url


@pytest.fixture
def page(chromium: Browser, phone_server_url: str) -> Iterator[Page]:
    """The dashboard, logged in as an operator: the session list and watching need one."""
    with open_dashboard(chromium, phone_server_url) as page:
        log_in(page, phone_server_url, OPERATOR, OPERATOR_PASSWORD)
        yield page


# --- Playing Event Grid and ACS -------------------------------------------------------------------


def post_json(
    url: str, body: Any, headers: dict[str, str] | None = None, *, status: int = 200
) -> dict[str, Any]:
    """POST JSON; the answer must have `status`. Its JSON body."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answered, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        answered, text = error.code, error.read()
    assert answered == status, text
    return json.loads(text)


def ring(server_url: str, *, status: int = 200) -> dict[str, Any]:
    """Event Grid delivers an IncomingCall; the server answers it (or fails to). Its answer."""
    event = incoming_call(raw_id=CALLER)
    return post_json(
        f"{server_url}/acs/events?secret={SECRET}",
        [event],
        {"aeg-event-type": "Notification"},
        status=status,
    )


def connection_id_of(fake_acs: FakeAcsServer, session_id: str) -> str:
    """The call connection id the fake ACS gave the call it answered for this session."""
    (answer,) = [a for a in fake_acs.answers if session_id in (a["callbackUri"] or "")]
    return answer["callConnectionId"]


def call_back(server_url: str, session_id: str, kind: str, connection_id: str, token: str) -> None:
    """ACS's signed callback about the call (CallConnected, ...)."""
    event = callback_event(kind, connection_id)
    post_json(
        f"{server_url}/acs/callbacks/{session_id}", [event], {"Authorization": f"Bearer {token}"}
    )


class MediaLeg:
    """ACS's side of a call's media WebSocket, run on an event loop in a thread of its own (the
    test's thread belongs to Playwright). What the server sends is read and dropped; whether a
    StopAudio came and whether the server closed the socket are kept as thread events."""

    def __init__(self, url: str, token: str) -> None:
        self.stop_audio = threading.Event()
        self.closed = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="acs-media")
        self._thread.start()
        self._http: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        try:
            self._run(self._connect(url, token))
        except BaseException:
            self.close()
            raise

    def _run(self, work: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=30)

    async def _connect(self, url: str, token: str) -> None:
        self._http = aiohttp.ClientSession()
        self._socket = await self._http.ws_connect(
            url, headers={"Authorization": f"Bearer {token}"}
        )
        self._reader = asyncio.create_task(self._drain(self._socket))

    async def _drain(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        async for message in socket:  # ends when the socket closes
            text = message.data if message.type == aiohttp.WSMsgType.TEXT else "{}"
            if json.loads(text).get("Kind") == "StopAudio":
                self.stop_audio.set()
        self.closed.set()

    def send(self, frame: dict[str, Any]) -> None:
        assert self._socket is not None
        self._run(self._socket.send_json(frame))

    async def _disconnect(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._reader is not None:
            await self._reader
        if self._http is not None:
            await self._http.close()

    def close(self) -> None:
        try:
            self._run(self._disconnect())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def __enter__(self) -> MediaLeg:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --- What the page shows --------------------------------------------------------------------------


def session_row(page: Page, session_id: str) -> Locator:
    return page.locator(f'[data-testid="session-row"][data-id="{session_id}"]')


def cell(row: Locator, name: str) -> Locator:
    return row.locator(f'[data-cell="{name}"]')


def texts(page: Page, testid: str) -> Locator:
    """The message texts of the user or agent bubbles, in order."""
    return page.get_by_test_id(testid).locator(".message__text")


def click_for_response(page: Page, testid: str, url_end: str) -> int:
    """Click a button and return the status of the request it makes to a URL ending so."""
    with page.expect_response(lambda response: response.url.endswith(url_end)) as response:
        page.get_by_test_id(testid).click()
    return response.value.status


# --- Tests ----------------------------------------------------------------------------------------


def test_a_phone_call_is_listed_watched_interrupted_and_ended(
    page: Page, phone_server_url: str, fake_acs: FakeAcsServer, acs_signer: AcsSigner
) -> None:
    token = acs_signer.token(AUDIENCE)
    status = page.get_by_test_id("status")

    # The phone rings; the list (polled) shows the call with its caller.
    (session_id,) = ring(phone_server_url)["sessions"]
    connection_id = connection_id_of(fake_acs, session_id)
    row = session_row(page, session_id)
    expect(row).to_have_attribute("data-channel", "acs", timeout=LISTED_TIMEOUT_MS)
    expect(row).to_have_attribute("data-status", "active")
    expect(cell(row, "channel")).to_have_text("Phone")
    expect(cell(row, "caller")).to_have_text(CALLER)
    expect(cell(row, "call")).to_have_attribute("title", connection_id)
    expect(cell(row, "call")).to_have_text(f"{connection_id[:8]}…")

    call_back(phone_server_url, session_id, "CallConnected", connection_id, token)
    expect(cell(row, "status")).to_have_text("active · connected", timeout=LISTED_TIMEOUT_MS)

    # Watch it: the facts fill, the page cannot speak in the call, but can interrupt and end it.
    open_button = row.get_by_test_id("session-open")
    expect(open_button).to_have_text("Watch")
    open_button.click()
    expect(status).to_have_attribute("data-state", "watching")
    expect(status).to_contain_text(f"watching phone call · {CALLER}")
    expect(row).to_have_attribute("aria-current", "true")
    expect(page.get_by_test_id("session-id")).to_have_text(session_id)
    expect(page.get_by_test_id("caller-id")).to_have_text(CALLER)
    expect(page.get_by_test_id("call-id")).to_have_attribute("title", connection_id)
    for control in ("mic-button", "text-input", "send-button"):
        expect(page.get_by_test_id(control)).to_be_disabled()
    for control in ("interrupt-button", "end-button"):
        expect(page.get_by_test_id(control)).to_be_enabled()

    media_url = f"{phone_server_url}/ws/acs/{session_id}/"
    with MediaLeg(media_url, token) as media:
        # ACS connects the media; the agent greets the caller, who knows the menu and presses
        # 2 # for their balance over the greeting.
        media.send(audio_metadata())
        for _ in range(25):  # half a second of the caller's line: the recording's clock
            media.send(audio_data(bytes(640)))
        expect(events_of(page, "session_started")).to_have_count(1)
        expect(texts(page, "agent-bubble").first).to_contain_text("Hello! Press 1")
        expect(events_of(page, "playback_started")).to_have_count(1)
        for tone in "2#":
            media.send(dtmf(tone))
        expect(events_of(page, "barge_in")).to_have_count(1)
        assert payload(events_of(page, "barge_in"))["source"] == "dtmf"
        expect(page.get_by_test_id("agent-bubble").first).to_have_attribute(
            "data-state", "interrupted"
        )
        expect(texts(page, "user-bubble")).to_have_text(["2"])
        expect(page.get_by_test_id("keypad-chip")).to_have_text("keypad 2")
        expect(events_of(page, "dtmf")).to_have_count(1)
        assert payload(events_of(page, "dtmf"))["digits"] == "2"
        expect(texts(page, "agent-bubble").nth(1)).to_contain_text("Your balance is")
        expect(events_of(page, "playback_completed")).to_have_count(1, timeout=15_000)

        # The caller says hello: the rules agent's answer takes seconds to speak. The
        # operator interrupts it once it plays.
        media.send(transcription("hello"))
        expect(texts(page, "user-bubble")).to_have_text(["2", "hello"])
        expect(events_of(page, "playback_started")).to_have_count(3)
        assert click_for_response(page, "interrupt-button", "/interrupt") == 202
        barge_in = events_of(page, "barge_in")
        expect(barge_in).to_have_count(2)
        assert payload(barge_in.last)["source"] == "operator"
        reply = page.get_by_test_id("agent-bubble").last
        expect(reply).to_have_attribute("data-state", "interrupted")
        expect(reply.get_by_test_id("interrupted-note")).to_contain_text("(operator)")
        assert media.stop_audio.wait(10), "ACS was not told to drop the queued audio"

        # The operator ends the call: the server hangs up through ACS.
        assert click_for_response(page, "end-button", "/end") == 200
        expect(status).to_have_attribute("data-state", "ended")
        expect(status).to_contain_text("operator_ended")
        fake_acs.wait_for(
            lambda r: r.method == "POST" and r.path.endswith(f"/{connection_id}:terminate")
        )
        assert media.closed.wait(10), "the server did not close ACS's media socket"

    items = event_items(page)
    assert items[-1][0] == "session_ended"
    assert payload(events_of(page, "session_ended"))["reason"] == "operator_ended"
    assert [seq for _, seq in items] == list(range(1, len(items) + 1))
    for control in ("interrupt-button", "end-button"):
        expect(page.get_by_test_id(control)).to_be_disabled()

    expect(row).to_have_attribute("data-status", "ended", timeout=LISTED_TIMEOUT_MS)
    expect(cell(row, "status")).to_contain_text("ended")
    expect(cell(row, "barge-ins")).to_have_text("2")
    expect(open_button).to_have_text("Show")
    page.screenshot(path=SCREENSHOT, full_page=True)

    # Shown again, from the store: every turn, the interrupted ones with what cut them.
    open_button.click()
    expect(status).to_have_attribute("data-state", "showing")
    expect(status).to_contain_text(CALLER)
    expect(texts(page, "user-bubble")).to_have_text(["2", "hello"])
    expect(texts(page, "agent-bubble").nth(1)).to_contain_text("Your balance is")
    expect(page.get_by_test_id("agent-bubble").last).to_have_attribute("data-state", "interrupted")
    notes = page.get_by_test_id("interrupted-note")
    expect(notes).to_have_count(2)
    expect(notes.first).to_contain_text("Interrupted (dtmf)")
    expect(notes.last).to_contain_text("Interrupted (operator)")
    # The events are rebuilt from the store, the barge-ins with what cut them.
    barge_ins = events_of(page, "barge_in")
    expect(barge_ins).to_have_count(2)
    assert [payload(item)["source"] for item in barge_ins.all()] == ["dtmf", "operator"]
    expect(events_of(page, "session_ended")).to_have_count(1)
    expect(page.get_by_test_id("event-item").first).to_have_attribute(
        "data-type", "session_started"
    )
    expect(page.get_by_test_id("caller-id")).to_have_text(CALLER)
    # The call's recording, for the operator to download.
    link = page.get_by_test_id("recording-link")
    expect(link).to_be_visible()
    expect(link).to_have_attribute("href", f"/api/sessions/{session_id}/recording")
    download = page.request.get(f"{phone_server_url}/api/sessions/{session_id}/recording")
    assert download.status == 200 and download.headers["content-type"] == "audio/wav"
    assert download.body()[:4] == b"RIFF"


def test_a_web_session_is_listed_and_shown_from_the_store(page: Page) -> None:
    status = page.get_by_test_id("status")
    start_session(page, "echo")
    expect(status).to_have_attribute("data-state", "live")
    session_id = page.get_by_test_id("session-id").inner_text()

    row = session_row(page, session_id)
    expect(row).to_have_attribute("data-channel", "web", timeout=LISTED_TIMEOUT_MS)
    expect(row).to_have_attribute("aria-current", "true")
    expect(cell(row, "channel")).to_have_text("Web")
    expect(cell(row, "caller")).to_have_text("—")
    expect(cell(row, "call")).to_have_text("—")
    expect(cell(row, "status")).to_have_text("active")
    # The page's own live session is never replaced by another.
    for button in page.get_by_test_id("session-open").all():
        expect(button).to_be_disabled()

    page.get_by_test_id("text-input").fill("hello list")
    page.get_by_test_id("text-input").press("Enter")
    expect(page.get_by_test_id("agent-bubble")).to_have_attribute("data-state", "final")
    expect(events_of(page, "playback_completed")).to_have_count(1, timeout=15_000)
    page.get_by_test_id("end-button").click()
    expect(status).to_have_attribute("data-state", "ended")

    expect(row).to_have_attribute("data-status", "ended", timeout=LISTED_TIMEOUT_MS)
    expect(cell(row, "turns")).to_have_text("1")
    open_button = row.get_by_test_id("session-open")
    expect(open_button).to_be_enabled()
    expect(open_button).to_have_text("Show")
    open_button.click()
    expect(status).to_have_attribute("data-state", "showing")
    expect(status).to_contain_text("web session · ended")
    expect(texts(page, "user-bubble")).to_have_text(["hello list"])
    expect(texts(page, "agent-bubble")).to_have_text(["You said: hello list"])
    expect(page.get_by_test_id("agent-bubble")).to_have_attribute("data-state", "final")
    # Shown as it was live: the same labels, and its events rebuilt from the store.
    expect(page.get_by_test_id("agent-bubble")).to_have_attribute("data-turn", "1")
    rebuilt = [kind for kind, _ in event_items(page)]
    assert rebuilt == [
        "session_started",
        "transcript_final",
        "agent_response",
        "turn_metrics",
        "session_ended",
    ]
    # The turn's waterfall, drawn from the stored metrics as it was drawn live.
    waterfall = page.get_by_test_id("turn-waterfall")
    expect(waterfall).to_have_count(1)
    expect(waterfall).to_have_attribute("data-turn", "1")
    stages = waterfall.get_by_test_id("waterfall-stage")
    expect(stages.first).to_be_visible()
    shown = [stage.get_attribute("data-stage") for stage in stages.all()]
    assert shown == ["agent", "generation", "synthesis", "send", "speaking"]
    stored = payload(events_of(page, "turn_metrics"))["metrics"]["stages"]
    assert [int(stage.get_attribute("data-ms") or -1) for stage in stages.all()] == [
        stored[stage] for stage in shown
    ]
    assert payload(events_of(page, "agent_response"))["text"] == "You said: hello list"
    expect(events_of(page, "session_ended")).to_contain_text("client_ended")
    expect(page.get_by_test_id("session-id")).to_have_text(session_id)
    expect(page.get_by_test_id("caller-id")).to_have_text("—")
    expect(page.get_by_test_id("recording-link")).to_be_hidden()  # no caller audio: none


def test_without_login_the_page_talks_and_asks_operators_to_log_in(
    chromium: Browser, phone_server_url: str
) -> None:
    """Anyone may talk to the agent; the session list, Show and Watch ask for a login."""
    with open_dashboard(chromium, phone_server_url) as page:
        asked: list[str] = []  # the methods of requests to /api/sessions
        page.on(
            "request",
            lambda r: asked.append(r.method) if r.url.endswith("/api/sessions") else None,
        )
        prompt = page.get_by_test_id("sessions-login")
        expect(prompt).to_contain_text("Log in as an operator")
        expect(prompt.get_by_role("link", name="Log in")).to_have_attribute(
            "href", "/admin/login/?next=/"
        )
        expect(page.get_by_test_id("login-link")).to_be_visible()
        expect(page.get_by_test_id("sessions-table")).to_be_hidden()

        start_session(page, "echo")
        expect(page.get_by_test_id("status")).to_have_attribute("data-state", "live")
        page.get_by_test_id("text-input").fill("hello anyone")
        page.get_by_test_id("text-input").press("Enter")
        expect(texts(page, "agent-bubble")).to_have_text(["You said: hello anyone"])
        page.get_by_test_id("end-button").click()
        expect(page.get_by_test_id("status")).to_have_attribute("data-state", "ended")
        expect(page.get_by_test_id("session-row")).to_have_count(0)
    assert asked == ["POST"], "the page started its session and never asked for the list"


def test_the_list_says_when_it_cannot_load_and_when_it_is_empty(
    chromium: Browser, phone_server_url: str
) -> None:
    """The sessions API answers 503, then an empty list. Chromium logs the 503 itself as a
    console error; that one is expected, any other fails the test as open_dashboard's would."""
    down = {"type": "error", "code": "internal_error", "message": "database down"}
    answers = {"body": json.dumps(down), "status": 503}

    def sessions_api(route: Route) -> None:
        route.fulfill(
            status=answers["status"], content_type="application/json", body=answers["body"]
        )

    context = chromium.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error" and "status of 503" not in message.text
            else None
        ),
    )
    log_in(page, phone_server_url, OPERATOR, OPERATOR_PASSWORD)
    page.route("**/api/sessions", sessions_api)
    page.goto(f"{phone_server_url}/")

    error = page.get_by_test_id("sessions-error")
    expect(error).to_contain_text("Could not load the sessions: internal_error: database down")
    expect(error).to_be_visible()
    expect(page.get_by_test_id("sessions-table")).to_be_hidden()
    expect(page.get_by_test_id("sessions-message")).to_be_hidden()

    answers.update(body=json.dumps({"sessions": []}), status=200)
    expect(error).to_be_hidden(timeout=LISTED_TIMEOUT_MS)
    expect(page.get_by_test_id("sessions-message")).to_contain_text("No sessions yet")
    expect(page.get_by_test_id("session-count")).to_have_text("0")
    context.close()
    assert problems == []


def test_a_call_that_could_not_be_answered_is_marked_failed(
    page: Page, phone_server_url: str, fake_acs: FakeAcsServer
) -> None:
    fake_acs.fail_next(403, "Forbidden", "fake ACS: not allowed to answer")  # not retried
    assert ring(phone_server_url, status=502)["type"] == "error"

    row = page.locator('[data-testid="session-row"][data-status="failed"]')
    expect(row).to_have_count(1, timeout=LISTED_TIMEOUT_MS)
    expect(row).to_have_attribute("data-channel", "acs")
    expect(cell(row, "caller")).to_have_text(CALLER)
    expect(cell(row, "status")).to_have_text("failed · answer failed")
    expect(cell(row, "status")).to_have_css("color", "rgb(180, 35, 24)")
    expect(cell(row, "status")).to_have_attribute("title", "end reason: answer_failed")
    expect(row.get_by_test_id("session-open")).to_have_text("Show")

    row.get_by_test_id("session-open").click()
    expect(page.get_by_test_id("status")).to_have_attribute("data-state", "showing")
    expect(page.get_by_test_id("status")).to_contain_text("failed · answer failed")
    expect(page.get_by_test_id("transcript-note")).to_have_text(
        ["Nothing was said in this session.", "Session ended: answer_failed"]
    )
