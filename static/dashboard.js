// The dashboard: start a session, talk to the agent by voice or text, watch every server event;
// list recent sessions, read a stored one, or follow a phone call (ACS) live.
// Protocol: /work/shared/DESIGN.md §3 and contracts/stream-event.schema.json.

import { AgentSpeaker, Microphone, frameLevel } from "./voice.js";

const PARTIAL_DELAY_MS = 400;
const SCROLL_SLACK_PX = 48;
const DEFAULT_SAMPLE_RATE = 16000;
// Per microphone frame (20 ms), the meter falls to this share of its last value at most.
const LEVEL_DECAY = 0.85;
const SESSIONS_POLL_MS = 3000;
// After the REST API ended a watched call, how long to wait for its session_ended event.
const END_GRACE_MS = 3000;
const SHORT_ID_LENGTH = 8;

const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);

// What the logged-in operator may do (the server renders it; the REST API enforces it): the
// talk panel needs no login, the session list, Show and Watch need view, Interrupt and End of
// a watched call need change.
const operator = {
  canView: document.body.dataset.canViewSessions === "true",
  canControl: document.body.dataset.canControlSessions === "true",
};
const CSRF_TOKEN = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

const ui = {
  status: byTestId("status"),
  agentSelect: byTestId("agent-select"),
  startButton: byTestId("start-button"),
  micButton: byTestId("mic-button"),
  levelMeter: byTestId("level-meter"),
  voiceState: byTestId("voice-state"),
  interruptButton: byTestId("interrupt-button"),
  endButton: byTestId("end-button"),
  sessionId: byTestId("session-id"),
  recordingLink: byTestId("recording-link"),
  noRecording: byTestId("no-recording"),
  callerId: byTestId("caller-id"),
  callId: byTestId("call-id"),
  audioFrames: byTestId("audio-frames"),
  playedAudio: byTestId("played-audio"),
  notice: byTestId("notice"),
  transcript: byTestId("transcript"),
  composer: byTestId("composer"),
  textInput: byTestId("text-input"),
  sendButton: byTestId("send-button"),
  liveTyping: byTestId("live-typing"),
  eventList: byTestId("event-list"),
  eventCount: byTestId("event-count"),
  sessionList: byTestId("session-list"),
  sessionsTable: byTestId("sessions-table"),
  sessionsMessage: byTestId("sessions-message"),
  sessionsError: byTestId("sessions-error"),
  sessionCount: byTestId("session-count"),
  sessionsUpdated: byTestId("sessions-updated"),
  waterfalls: byTestId("waterfalls"),
  turnSummary: byTestId("turn-summary"),
  timedTurnCount: byTestId("timed-turn-count"),
};

const state = {
  socket: null,
  starting: false,
  endReason: null,
  eventCount: 0,
  audioFrames: 0,
  sampleRate: DEFAULT_SAMPLE_RATE,
  agentSpeaking: false, // between playback_started and playback_completed or barge_in
  callerSpeaking: false, // between speech_started and speech_stopped
  level: 0,
  agentBubbles: new Map(), // turn number → the agent's bubble for that turn
  replyRows: new Map(), // turn number → the event-list row its agent_response events fold into
  turnMetrics: new Map(), // turn number → its turn_metrics, drawn as a waterfall
  partialBubble: null,
  partialTimer: null,
  // The session the panels show: { id, own, phone, caller }; own: this page's session.
  view: null,
  // Following a phone call: { socket, sessionId, loaded, buffer, endTimer }.
  watch: null,
  storedUtterances: new Set(), // ids of the utterances shown from the store
  storedTurns: new Set(), // agent turns the stored transcript already shows
};

// The recent-sessions list: rows are kept and updated in place, so focus survives a refresh.
const sessionList = {
  rows: new Map(), // session id → its <tr>
  sessions: new Map(), // session id → its latest summary from the API
  loading: false,
  again: false, // a refresh was asked for while one was in flight
  timer: null,
};

const voice = {
  microphone: new Microphone(onMicrophoneFrame),
  speaker: newSpeaker(),
};

// --- DOM helpers -------------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

/** Run `change` on a scrolling list, following new content only if the user was at the end. */
function keepScrolled(list, change) {
  const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < SCROLL_SLACK_PX;
  change();
  if (atEnd) list.scrollTop = list.scrollHeight;
}

function formatTime(ts) {
  const date = new Date(ts);
  if (Number.isNaN(date.getTime())) return "";
  const ms = String(date.getMilliseconds()).padStart(3, "0");
  return `${date.toLocaleTimeString([], { hour12: false })}.${ms}`;
}

const quote = (text) => `“${text ?? ""}”`;

/** When a session started: the time of day, with the date if it was not today. */
function formatStarted(ts) {
  const date = new Date(ts);
  if (Number.isNaN(date.getTime())) return "—";
  const time = date.toLocaleTimeString([], { hour12: false });
  const today = date.toDateString() === new Date().toDateString();
  return today ? time : `${date.toLocaleDateString()} ${time}`;
}

const shortId = (id) => (id.length > SHORT_ID_LENGTH ? `${id.slice(0, SHORT_ID_LENGTH)}…` : id);

/** An ACS id is long: show its start, keep the whole of it in the title. */
function showLongId(node, id) {
  node.textContent = id ? shortId(id) : "—";
  node.title = id ?? "";
}

// --- Status, notices and controls ----------------------------------------------------------

function setStatus(phase, text) {
  ui.status.dataset.state = phase;
  ui.status.textContent = text;
}

function showNotice(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = false;
}

function hideNotice() {
  ui.notice.hidden = true;
  ui.notice.textContent = "";
}

function isLive() {
  return state.socket?.readyState === WebSocket.OPEN && state.endReason === null;
}

/** This page's own session is starting or has its socket: opening another would lose it. */
function ownSessionBusy() {
  return state.starting || state.socket !== null;
}

/** Following a live phone call, whose Interrupt and End go through the REST API. */
function isWatching() {
  const watch = state.watch;
  return (
    watch?.loaded === true &&
    watch.socket.readyState === WebSocket.OPEN &&
    state.endReason === null
  );
}

function updateControls() {
  const busy = ownSessionBusy();
  const live = isLive();
  ui.agentSelect.disabled = busy || ui.agentSelect.options.length === 0;
  ui.startButton.disabled =
    busy || !ui.agentSelect.value || ui.agentSelect.selectedOptions[0]?.disabled === true;
  // A watcher hears nothing of the call and cannot speak in it: no microphone, no composer.
  for (const control of [ui.textInput, ui.sendButton, ui.micButton]) control.disabled = !live;
  const watching = isWatching();
  const controllable = live || (watching && operator.canControl);
  const refusal = watching && !operator.canControl ? "Your account may not interrupt or end calls" : "";
  for (const button of [ui.interruptButton, ui.endButton]) {
    button.disabled = !controllable;
    button.title = refusal;
  }
  renderOpenButtons();
  renderVoiceState();
}

// --- The event list: the one place that renders a server event -----------------------------

const DESCRIBERS = {
  session_started: (e) => `${e.agent?.name} (${e.agent?.strategy}) · ${e.sample_rate} Hz`,
  speech_started: (e) => `at ${e.offset_ms} ms`,
  speech_stopped: (e) => `at ${e.offset_ms} ms · ${e.duration_ms} ms long`,
  transcript_partial: (e) => quote(e.text),
  transcript_final: (e) =>
    [quote(e.text), e.backchannel ? "backchannel" : "", endOfTurn(e.end_of_turn)]
      .filter(Boolean)
      .join(" · "),
  agent_response: (e) => (e.final ? `final ${quote(e.text)}` : quote(e.delta)),
  playback_started: (e) => `turn ${e.turn} · ${e.sample_rate} Hz`,
  playback_completed: (e) => `turn ${e.turn} · ${e.played_ms} ms played`,
  playback_paused: (e) => `turn ${e.turn} · paused after ${e.played_ms} ms`,
  playback_resumed: (e) => `turn ${e.turn} · resumed at ${e.played_ms} ms`,
  barge_in: (e) => `turn ${e.turn} by ${e.source} · heard ${quote(e.heard_text)}`,
  turn_metrics: (e) => `turn ${e.turn}${responseBrief(e.metrics)}`,
  dtmf: (e) => `keys ${e.digits}`,
  tool_invocation: (e) => `${e.tool} ${e.status} · ${e.duration_ms} ms`,
  context_truncated: (e) => `dropped ${e.dropped_turns} · kept ${e.kept_turns} turns`,
  session_ended: (e) => e.reason,
  error: (e) => `${e.code}: ${e.message}`,
};

/** Why the caller's turn ended, as the server decided it. */
function endOfTurn(end) {
  if (!end) return "";
  const probability = end.probability === null ? "" : ` p=${end.probability.toFixed(2)}`;
  return `ended by ${end.reason} after ${end.silence_ms} ms${probability}`;
}

function renderEvent(event) {
  if (event.type === "agent_response" && Number.isInteger(event.turn)) {
    foldReplyEvent(event);
    return;
  }
  ui.eventList.append(eventRow(event));
  ui.eventCount.textContent = String(++state.eventCount);
}

function eventRow(event) {
  const summary = el(
    "summary",
    {},
    el("span", { class: "event__type" }, String(event.type)),
    el("span", { class: "event__seq" }, event.rebuilt ? "stored" : `#${event.seq ?? "?"}`),
    el("time", { class: "event__time", datetime: event.ts ?? "" }, formatTime(event.ts)),
    el("span", { class: "event__brief" }, DESCRIBERS[event.type]?.(event) ?? ""),
  );
  const payload = el("pre", { class: "event__payload" }, JSON.stringify(event, null, 2));
  const item = el(
    "li",
    {
      class: `event${event.type === "error" ? " event--error" : ""}`,
      dataset: { testid: "event-item", type: String(event.type), seq: String(event.seq ?? "") },
    },
    el("details", {}, summary, payload),
  );
  if (event.rebuilt) item.classList.add("event--rebuilt");
  return item;
}

/** A reply's agent_response events share one row that grows with each delta: its brief is
 * the reply so far, its payload the latest event, and every raw event is one click away. */
function foldReplyEvent(event) {
  let row = state.replyRows.get(event.turn);
  if (row === undefined) {
    row = eventRow(event);
    row.classList.add("event--reply");
    Object.assign(row.dataset, { turn: String(event.turn), seqs: "", deltas: "0", text: "" });
    const raw = el("ol", { class: "event__raw", dataset: { testid: "raw-events" } });
    const rawSummary = el("summary", { class: "event__raw-summary" }, "raw events");
    row.querySelector("details").append(el("details", { class: "event__raws" }, rawSummary, raw));
    state.replyRows.set(event.turn, row);
    ui.eventList.append(row);
  }
  const fold = row.dataset;
  fold.seqs = fold.seqs ? `${fold.seqs},${event.seq ?? ""}` : String(event.seq ?? "");
  if (event.final) {
    fold.text = event.text ?? "";
    fold.state = "final";
  } else {
    fold.text += event.delta ?? "";
    fold.deltas = String(Number(fold.deltas) + 1);
    fold.state = "streaming";
  }
  const seqs = fold.seqs.split(",");
  const count = seqs.length;
  if (!event.rebuilt) {
    row.querySelector(".event__seq").textContent =
      count > 1 ? `#${seqs[0]}–${seqs[count - 1]}` : `#${seqs[0] || "?"}`;
  }
  row.querySelector(".event__time").textContent = formatTime(event.ts);
  const what = event.final ? "final" : `${fold.deltas} deltas`;
  const brief = `turn ${event.turn} · ${what} ${quote(fold.text)}`;
  row.querySelector(".event__brief").textContent = brief;
  row.querySelector(".event__payload").textContent = JSON.stringify(event, null, 2);
  const rawCount = `${count} raw event${count > 1 ? "s" : ""}`;
  row.querySelector(".event__raw-summary").textContent = rawCount;
  const rawEvent = el("pre", { class: "event__raw-payload" }, JSON.stringify(event, null, 2));
  row.querySelector(".event__raw").append(el("li", {}, rawEvent));
  ui.eventCount.textContent = String(++state.eventCount);
}

// --- The transcript --------------------------------------------------------------------------

/** Who the user side is: you in your own session, else the caller or the web user. */
function userLabel() {
  if (state.view === null || state.view.own) return "You";
  return state.view.phone ? "Caller" : "User";
}

function addMessage(role, text) {
  const item = el(
    "li",
    { class: `message message--${role}`, dataset: { testid: `${role}-bubble` } },
    el("span", { class: "message__role" }, role === "user" ? userLabel() : "Agent"),
    el("p", { class: "message__text" }, text),
  );
  ui.transcript.append(item);
  return item;
}

/** A final utterance: a new bubble, or the whole text of one the caller went on with. */
function showFinal({ text, utterance_id: utteranceId, backchannel }) {
  clearPartial();
  const shown = ui.transcript.querySelector(`[data-utterance-id="${utteranceId}"]`);
  const bubble = shown ?? addMessage("user", text);
  bubble.dataset.utteranceId = utteranceId;
  bubble.querySelector(".message__text").textContent = text;
  if (backchannel) {
    bubble.classList.add("message--backchannel");
    bubble.dataset.testid = "backchannel-bubble";
  }
}

function addNote(text, kind = "info") {
  const testid = kind === "error" ? "transcript-error" : "transcript-note";
  ui.transcript.append(el("li", { class: `note note--${kind}`, dataset: { testid } }, text));
}

function showPartial(text) {
  if (state.partialBubble === null) {
    state.partialBubble = addMessage("user", "");
    state.partialBubble.classList.add("message--partial");
    state.partialBubble.dataset.testid = "partial-bubble";
  }
  state.partialBubble.querySelector(".message__text").textContent = text;
}

function clearPartial() {
  state.partialBubble?.remove();
  state.partialBubble = null;
}

function agentBubble(turn) {
  let bubble = state.agentBubbles.get(turn);
  if (bubble === undefined) {
    bubble = addMessage("agent", "");
    bubble.dataset.turn = String(turn);
    bubble.dataset.state = "streaming";
    state.agentBubbles.set(turn, bubble);
  }
  return bubble;
}

function extendAgentReply({ turn, delta }) {
  agentBubble(turn).querySelector(".message__text").append(delta);
}

function finishAgentReply({ turn, text }) {
  const bubble = agentBubble(turn);
  bubble.querySelector(".message__text").textContent = text;
  bubble.dataset.state = "final";
}

function markInterrupted({ turn, heard_text: heard = "", source }) {
  showInterruption(agentBubble(turn), heard, `Interrupted (${source})`);
}

/** Strike out what the caller never heard and say what they did hear. */
function showInterruption(bubble, heard, label) {
  const body = bubble.querySelector(".message__text");
  const shown = body.textContent;
  if (shown.startsWith(heard) && shown.length > heard.length) {
    const unheard = el("s", { class: "unheard", title: "not heard" }, shown.slice(heard.length));
    body.replaceChildren(heard, unheard);
  }
  bubble.dataset.state = "interrupted";
  const note = heard
    ? `${label}. Heard: ${quote(heard)}`
    : `${label} before anything was heard.`;
  const noteAttributes = { class: "message__note", dataset: { testid: "interrupted-note" } };
  bubble.append(el("p", noteAttributes, note));
}

function addToolChip({ tool, status, duration_ms: ms, arguments: args, result, error }) {
  const details = JSON.stringify({ arguments: args, result, error }, null, 2);
  const chip = el(
    "li",
    { class: `chip chip--${status}`, dataset: { testid: "tool-chip" }, title: details },
    el("span", { class: "chip__label" }, "tool"),
    ` ${tool} · ${status} · ${ms} ms`,
  );
  ui.transcript.append(chip);
}

/** A phone caller's keypad entry; the user bubble with the same digits follows it. */
function addKeypadChip({ digits }) {
  const chip = el(
    "li",
    { class: "chip chip--keypad", dataset: { testid: "keypad-chip" } },
    el("span", { class: "chip__label" }, "keypad"),
    ` ${digits}`,
  );
  ui.transcript.append(chip);
}

function onSessionStarted(event) {
  state.sampleRate = event.sample_rate;
  if (state.watch !== null) {
    showWatching(); // ACS's media socket connected: the call's conversation starts now
    return;
  }
  voice.speaker.prepare(event.sample_rate);
  setStatus("live", `live · agent ${event.agent?.name}`);
  updateControls();
  ui.textInput.focus();
}

function onSessionEnded({ reason }) {
  state.endReason = reason;
  addNote(`Session ended: ${reason}`);
  if (state.watch !== null) {
    stopWatching(); // the server keeps a watcher's socket open; nothing more will come
    setStatus("ended", `phone call ended: ${reason}`);
    refreshSessions();
  } else {
    stopMicrophone();
    setStatus("ended", `ended: ${reason}`);
  }
  updateControls();
}

// What each event does to the page besides its line in the event list.
const EVENT_EFFECTS = {
  session_started: onSessionStarted,
  speech_started: () => setSpeaking("callerSpeaking", true),
  speech_stopped: () => setSpeaking("callerSpeaking", false),
  transcript_partial: (e) => showPartial(e.text),
  transcript_final: showFinal,
  agent_response: (e) => (e.final ? finishAgentReply(e) : extendAgentReply(e)),
  playback_started: onPlaybackStarted,
  playback_completed: () => setSpeaking("agentSpeaking", false),
  // The caller may be speaking: what the page holds would not be heard; more comes on resume.
  playback_paused: stopAgentAudio,
  playback_resumed: () => setSpeaking("agentSpeaking", true),
  barge_in: (e) => {
    stopAgentAudio();
    markInterrupted(e);
  },
  turn_metrics: showTurnMetrics,
  tool_invocation: addToolChip,
  dtmf: addKeypadChip,
  context_truncated: (e) => addNote(`Context trimmed: ${e.dropped_turns} older turn(s) dropped.`),
  error: (e) => addNote(`Error ${e.code}: ${e.message}`, "error"),
  session_ended: onSessionEnded,
};

function handleEvent(event) {
  keepScrolled(ui.eventList, () => renderEvent(event));
  if (shownFromStore(event)) return;
  keepScrolled(ui.transcript, () => EVENT_EFFECTS[event.type]?.(event));
}

/** Whether the stored transcript already shows what this event would add: a watch socket
 * opens before the session's detail is read, so its first events may repeat stored turns. */
function shownFromStore({ utterance_id: utteranceId, turn }) {
  return state.storedUtterances.has(utteranceId) || state.storedTurns.has(turn);
}

// --- Turn timings: each agent turn's stages as a waterfall, and the session's summary -------

// A turn's stages (contracts/turn-metrics.schema.json), in the order they happen: the stage,
// its label, and the moments it runs between. Moments are ms on the server's clock.
const TURN_STAGES = [
  ["end_of_turn", "end-of-turn wait", "last_voiced", "end_of_turn"],
  ["recognition", "recognition", "end_of_turn", "transcript_final"],
  ["agent", "agent first token", "transcript_final", "first_token"],
  ["generation", "whole reply", "first_token", "reply_done"],
  ["synthesis", "first sentence synthesised", "first_token", "first_audio"],
  ["send", "first frame sent", "first_audio", "first_frame"],
  ["speaking", "speaking", "first_frame", "playback_end"],
];
const SUMMARY_STAGES = [...TURN_STAGES.map(([stage]) => stage), "response"];
const STAGE_LABELS = {
  ...Object.fromEntries(TURN_STAGES.map(([stage, label]) => [stage, label])),
  response: "response (caller's end to agent's first output)",
};

/** " · response 420 ms", or nothing for a turn that never answered. */
function responseBrief(metrics) {
  const response = metrics?.stages?.response;
  return response === undefined ? "" : ` · response ${response} ms`;
}

/** A turn's metrics arrived (live, or rebuilt from the store): draw it, redo the summary. */
function showTurnMetrics({ turn, metrics }) {
  state.turnMetrics.set(turn, metrics);
  const row = waterfall(turn, metrics);
  const rows = [...ui.waterfalls.children];
  const existing = rows.find((item) => item.dataset.turn === String(turn));
  if (existing) existing.replaceWith(row);
  else ui.waterfalls.append(row);
  renderTurnSummary();
}

/** One turn: a bar per stage (and per barge-in), placed on the turn's own time line. */
function waterfall(turn, metrics) {
  const { marks, stages, barge_ins: bargeIns, cut_by: cutBy } = metrics;
  const moments = [
    ...Object.values(marks),
    ...bargeIns.flatMap((bargeIn) => Object.values(bargeIn.marks)),
  ];
  const start = Math.min(...moments);
  const span = Math.max(1, Math.max(...moments) - start);
  const bar = (from, ms) => {
    const left = ((from - start) / span) * 100;
    const width = Math.max((ms / span) * 100, 0.4);
    return el("span", {
      class: "waterfall__bar",
      style: `left: ${left.toFixed(2)}%; width: ${Math.min(width, 100 - left).toFixed(2)}%`,
    });
  };
  const line = (kind, stage, label, from, ms) =>
    el(
      "li",
      {
        class: `waterfall__line waterfall__line--${kind}`,
        dataset: { testid: "waterfall-stage", stage, ms: String(ms) },
      },
      el("span", { class: "waterfall__label" }, label),
      el("span", { class: "waterfall__track" }, bar(from, ms)),
      el("span", { class: "waterfall__ms" }, `${ms} ms`),
    );
  const lines = TURN_STAGES.filter(([stage]) => stage in stages).map(([stage, label, from]) =>
    line("stage", stage, label, marks[from], stages[stage]),
  );
  bargeIns.forEach((bargeIn, index) => {
    const { onset } = bargeIn.marks;
    const end = Math.max(...Object.values(bargeIn.marks));
    const parts = Object.entries(bargeIn.stages).map(([stage, ms]) => `${stage} ${ms}`);
    const what = [bargeIn.outcome ?? "open", bargeIn.source].filter(Boolean).join(", ");
    const label = `barge-in ${index + 1} (${what}): ${parts.join(" · ")}`;
    lines.push(line("barge-in", `barge_in_${index + 1}`, label, onset, end - onset));
  });
  const cut = cutBy ? ` · cut by ${cutBy}` : "";
  const title = `Turn ${turn}${responseBrief(metrics)}${cut}`;
  const header = el("p", { class: "waterfall__title" }, title);
  return el(
    "li",
    { class: "waterfall", dataset: { testid: "turn-waterfall", turn: String(turn), cutBy } },
    header,
    el("ol", { class: "waterfall__lines" }, ...lines),
  );
}

/** The lower median: a duration some turn really took (as the admin's summary). */
function median(values) {
  return [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];
}

/** p50 and max of each stage over the session's turns shown. */
function renderTurnSummary() {
  const all = [...state.turnMetrics.values()];
  ui.timedTurnCount.textContent = String(all.length);
  const rows = SUMMARY_STAGES.map((stage) => [
    stage,
    all.map((metrics) => metrics.stages[stage]).filter((ms) => ms !== undefined),
  ])
    .filter(([, values]) => values.length > 0)
    .map(([stage, values]) =>
      el(
        "tr",
        { dataset: { testid: "summary-stage", stage } },
        el("th", { scope: "row" }, STAGE_LABELS[stage]),
        el("td", { dataset: { figure: "p50" } }, `${median(values)} ms`),
        el("td", { dataset: { figure: "max" } }, `${Math.max(...values)} ms`),
        el("td", {}, String(values.length)),
      ),
    );
  ui.turnSummary.querySelector("tbody").replaceChildren(...rows);
  ui.turnSummary.hidden = rows.length === 0;
}

// --- Voice: the microphone, the level meter and the agent's audio ---------------------------

const VOICE_STATES = {
  idle: "idle",
  listening: "listening",
  caller: "you are speaking",
  phoneCaller: "caller speaking",
  agent: "agent speaking",
};

function newSpeaker() {
  return new AgentSpeaker({
    onProgress: showPlayed,
    onError: (error) => showNotice(`Could not play the agent's audio: ${error.message}`),
  });
}

function renderVoiceState() {
  let phase = isLive() || isWatching() ? "listening" : "idle";
  if (state.callerSpeaking) phase = "caller";
  else if (state.agentSpeaking) phase = "agent";
  ui.voiceState.dataset.state = phase;
  const label = phase === "caller" && state.watch !== null ? "phoneCaller" : phase;
  ui.voiceState.textContent = VOICE_STATES[label];
}

function setSpeaking(who, speaking) {
  state[who] = speaking;
  renderVoiceState();
}

/** The meter jumps up at once and falls back gently, so short syllables stay visible. */
function showLevel(level) {
  state.level = Math.max(level, state.level * LEVEL_DECAY);
  ui.levelMeter.value = state.level;
}

function onMicrophoneFrame(samples) {
  if (isLive()) state.socket.send(samples.buffer);
  showLevel(frameLevel(samples));
}

function renderMicrophone() {
  const on = voice.microphone.active;
  ui.micButton.setAttribute("aria-pressed", String(on));
  ui.micButton.title = on ? "Stop sending your microphone" : "Talk to the agent";
}

async function toggleMicrophone() {
  if (voice.microphone.active) {
    stopMicrophone();
    return;
  }
  resumeAudio();
  const starting = voice.microphone.start(state.sampleRate); // its AudioContext exists now
  renderMicrophone();
  try {
    await starting;
    hideNotice();
  } catch (error) {
    showNotice(`Could not use the microphone: ${error.message}`);
  }
  renderMicrophone();
}

function stopMicrophone() {
  voice.microphone.stop();
  state.level = 0;
  ui.levelMeter.value = 0;
  renderMicrophone();
}

/** Autoplay policy: an AudioContext made outside a click may wait for one to start. */
function resumeAudio() {
  voice.speaker.resume();
  voice.microphone.resume();
}

function onPlaybackStarted({ sample_rate: rate }) {
  if (state.watch === null) voice.speaker.prepare(rate); // watchers are sent no audio
  setSpeaking("agentSpeaking", true);
}

function stopAgentAudio() {
  voice.speaker.clear();
  ui.playedAudio.dataset.clears = String(Number(ui.playedAudio.dataset.clears ?? 0) + 1);
  setSpeaking("agentSpeaking", false);
}

function playAgentAudio(frame) {
  ui.audioFrames.textContent = String(++state.audioFrames);
  voice.speaker.play(frame);
}

function showPlayed({ samples, ms, buffered }) {
  Object.assign(ui.playedAudio.dataset, { samples, ms: Math.round(ms), buffered });
  ui.playedAudio.textContent = `${(ms / 1000).toFixed(1)} s`;
}

// --- The WebSocket ---------------------------------------------------------------------------

/** A text frame's event, or null (and a notice) if it is not JSON. */
function parseEvent(data) {
  try {
    return JSON.parse(data);
  } catch {
    showNotice("The server sent a text frame that is not JSON.");
    return null;
  }
}

function onSocketMessage({ data }) {
  if (data instanceof ArrayBuffer) {
    playAgentAudio(data);
    return;
  }
  const event = parseEvent(data);
  if (event !== null) handleEvent(event);
}

function onSocketClose({ code, reason }) {
  state.socket = null;
  clearPartialTimer();
  stopMicrophone();
  voice.speaker.close(); // no more audio can come; the played total stays on show
  Object.assign(state, { agentSpeaking: false, callerSpeaking: false });
  const detail = reason ? `code ${code}, ${reason}` : `code ${code}`;
  if (state.endReason !== null) {
    setStatus("ended", `ended: ${state.endReason} · socket closed (${detail})`);
  } else {
    setStatus("closed", `closed with ${detail}`);
  }
  updateControls();
  refreshSessions();
}

function openSocket(url) {
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  socket.addEventListener("open", () => setStatus("connecting", "connected · starting…"));
  socket.addEventListener("message", onSocketMessage);
  socket.addEventListener("close", onSocketClose);
  state.socket = socket;
}

function send(message) {
  if (!isLive()) return false;
  state.socket.send(JSON.stringify(message));
  return true;
}

// --- Sessions and agents over the REST API ---------------------------------------------------

async function fetchJson(url, options = {}) {
  const headers = { Accept: "application/json" };
  if (options.body) headers["Content-Type"] = "application/json";
  // A logged-in operator's changes carry Django's CSRF token (the login is a cookie).
  if ((options.method ?? "GET") !== "GET") headers["X-CSRFToken"] = CSRF_TOKEN;
  const response = await fetch(url, { ...options, headers });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body?.type === "error" ? `${body.code}: ${body.message}` : "";
    throw new Error(detail || `HTTP ${response.status}`);
  }
  return body;
}

async function loadAgents() {
  try {
    const { agents } = await fetchJson("/api/agents");
    ui.agentSelect.replaceChildren(...agents.map(agentOption));
    const usable = agents.filter((agent) => agent.available !== false);
    const preferred =
      usable.find((agent) => agent.name === "echo") ??
      usable.find((agent) => agent.strategy === "echo") ??
      usable[0];
    ui.agentSelect.value = preferred?.name ?? "";
    if (agents.length === 0) showNotice("No agents are configured.");
    else if (usable.length === 0) showNotice("No agent can answer: no engine is configured.");
  } catch (error) {
    ui.agentSelect.replaceChildren();
    showNotice(`Could not load agents: ${error.message}`);
  }
  updateControls();
}

/** An agent in the picker; one whose engine the server lacks is shown, disabled, with why. */
function agentOption(agent) {
  const label = `${agent.name} (${agent.strategy})`;
  if (agent.available !== false) return el("option", { value: agent.name }, label);
  const reason = agent.unavailable_reason ?? "not configured";
  const attributes = { value: agent.name, disabled: "", title: reason };
  return el("option", attributes, `${label} · unavailable: ${reason}`);
}

function resetSession() {
  stopWatching();
  clearPartialTimer();
  stopMicrophone();
  voice.speaker.close();
  voice.speaker = newSpeaker();
  Object.assign(state, {
    endReason: null,
    eventCount: 0,
    audioFrames: 0,
    partialBubble: null,
    sampleRate: DEFAULT_SAMPLE_RATE,
    agentSpeaking: false,
    callerSpeaking: false,
  });
  state.agentBubbles.clear();
  state.replyRows.clear();
  state.turnMetrics.clear();
  ui.waterfalls.replaceChildren();
  renderTurnSummary();
  state.storedUtterances.clear();
  state.storedTurns.clear();
  state.view = null;
  ui.eventList.replaceChildren();
  ui.transcript.replaceChildren();
  ui.eventCount.textContent = "0";
  ui.audioFrames.textContent = "0";
  showPlayed({ samples: 0, ms: 0, buffered: 0 });
  showFacts(null);
  renderOpenRow();
}

/** The facts of the session on show: its id, and for a phone call the caller and call ids. */
function showFacts(session) {
  const phone = session?.channel === "acs";
  ui.sessionId.textContent = session?.id ?? "—";
  ui.callerId.textContent = (phone && session.caller_id) || "—";
  showLongId(ui.callId, phone ? session.call_connection_id : "");
  showRecording(session?.recording_url);
}

/** The stored call's recording, downloadable by operators (the API serves it to no one else). */
function showRecording(url) {
  ui.recordingLink.hidden = !url;
  ui.noRecording.hidden = Boolean(url);
  if (url) ui.recordingLink.href = url;
  else ui.recordingLink.removeAttribute("href");
}

async function startSession() {
  state.starting = true;
  hideNotice();
  resetSession();
  // Made during the click, so the autoplay policy lets the agent's voice play.
  voice.speaker.prepare(state.sampleRate);
  setStatus("connecting", "connecting…");
  updateControls();
  try {
    const body = JSON.stringify({ agent: ui.agentSelect.value });
    const session = await fetchJson("/api/sessions", { method: "POST", body });
    state.view = { id: session.id, own: true, phone: false, caller: "" };
    showFacts(session);
    state.sampleRate = session.sample_rate;
    voice.speaker.prepare(session.sample_rate);
    openSocket(session.ws_url);
    refreshSessions();
  } catch (error) {
    setStatus("idle", "idle · the session could not start");
    showNotice(`Could not start a session: ${error.message}`);
  } finally {
    state.starting = false;
    updateControls();
  }
}

// --- Recent sessions: the list ---------------------------------------------------------------

const SESSION_CELLS = [
  "started",
  "channel",
  "caller",
  "call",
  "status",
  "turns",
  "barge-ins",
  "errors",
];

const isPhone = (session) => session.channel === "acs";
const callerName = (session) => session.caller_id || "unknown caller";
const canWatch = (session) => isPhone(session) && session.status === "active";

/** "active · streaming": the session's status, and for a phone call where the call stands. */
function statusText({ status, call_state: callState }) {
  return callState ? `${status} · ${callState.replaceAll("_", " ")}` : status;
}

/** Poll again later, unless the page is hidden (visibilitychange resumes it). */
function scheduleRefresh() {
  clearTimeout(sessionList.timer);
  sessionList.timer = document.hidden ? null : setTimeout(refreshSessions, SESSIONS_POLL_MS);
}

/** Fetch and show the recent sessions; one request at a time, a request asked for meanwhile
 * runs right after (it may have been asked for because something just changed). */
async function refreshSessions() {
  if (!operator.canView) return; // the panel asks to log in instead
  if (sessionList.loading) {
    sessionList.again = true;
    return;
  }
  sessionList.loading = true;
  clearTimeout(sessionList.timer);
  try {
    const body = await fetchJson("/api/sessions");
    if (!Array.isArray(body?.sessions)) throw new Error("the answer holds no session list");
    renderSessions(body.sessions);
    showListError(null);
  } catch (error) {
    showListError(error);
  } finally {
    sessionList.loading = false;
  }
  if (sessionList.again) {
    sessionList.again = false;
    refreshSessions();
    return;
  }
  scheduleRefresh();
}

function onVisibilityChange() {
  if (document.hidden) clearTimeout(sessionList.timer);
  else refreshSessions();
}

function showListError(error) {
  const text = error
    ? `Could not load the sessions: ${error.message}. Retrying every ${SESSIONS_POLL_MS / 1000} s.`
    : "";
  if (ui.sessionsError.textContent !== text) ui.sessionsError.textContent = text; // no re-alert
  ui.sessionsError.hidden = error === null;
  if (error && sessionList.rows.size === 0) ui.sessionsMessage.hidden = true;
}

function renderSessions(sessions) {
  const listed = new Set();
  sessions.forEach((session, index) => {
    listed.add(session.id);
    sessionList.sessions.set(session.id, session);
    const row = sessionList.rows.get(session.id) ?? newSessionRow(session.id);
    fillSessionRow(row, session);
    const here = ui.sessionList.children[index];
    if (here !== row) ui.sessionList.insertBefore(row, here ?? null); // a focused row stays put
  });
  for (const [id, row] of sessionList.rows) {
    if (listed.has(id)) continue;
    row.remove();
    sessionList.rows.delete(id);
    sessionList.sessions.delete(id);
  }
  ui.sessionCount.textContent = String(sessions.length);
  ui.sessionsTable.hidden = sessions.length === 0;
  ui.sessionsMessage.hidden = sessions.length > 0;
  ui.sessionsMessage.textContent = "No sessions yet: start one above, or call the agent's number.";
  const now = new Date().toLocaleTimeString([], { hour12: false });
  ui.sessionsUpdated.textContent = `updated ${now}`;
  renderOpenRow();
  renderOpenButtons();
  const watched = state.watch && sessionList.sessions.get(state.watch.sessionId);
  if (watched && watched.status !== "active") {
    awaitEndEvent(state.watch, watched.end_reason || watched.status);
  }
}

function newSessionRow(id) {
  const cells = SESSION_CELLS.map((name) =>
    el("td", { class: `session-row__${name}`, dataset: { cell: name } }),
  );
  const attributes = { type: "button", class: "session-open", dataset: { testid: "session-open" } };
  const button = el("button", attributes);
  button.addEventListener("click", () => openSession(id));
  const row = el(
    "tr",
    { class: "session-row", dataset: { testid: "session-row", id } },
    ...cells,
    el("td", { class: "session-row__open" }, button),
  );
  sessionList.rows.set(id, row);
  return row;
}

function fillSessionRow(row, session) {
  const phone = isPhone(session);
  const cell = (name) => row.querySelector(`[data-cell="${name}"]`);
  Object.assign(row.dataset, {
    channel: session.channel,
    status: session.status,
    callState: session.call_state,
  });
  cell("started").replaceChildren(
    el("time", { datetime: session.created_at }, formatStarted(session.created_at)),
  );
  cell("channel").textContent = phone ? "Phone" : "Web";
  cell("caller").textContent = (phone && session.caller_id) || "—";
  showLongId(cell("call"), phone ? session.call_connection_id : "");
  cell("status").textContent = statusText(session);
  cell("status").title = session.end_reason ? `end reason: ${session.end_reason}` : "";
  const cut = session.interrupted_turn_count ?? 0;
  const turns = String(session.turn_count);
  cell("turns").textContent = cut ? `${turns} (${cut} cut)` : turns;
  cell("turns").title = `${session.turn_count} agent turns, ${cut} of them cut short`;
  cell("barge-ins").textContent = String(session.barge_in_count);
  cell("errors").textContent = String(session.error_count);
  cell("errors").classList.toggle("has-errors", session.error_count > 0);
  const button = row.querySelector(".session-open");
  const verb = canWatch(session) ? "Watch" : "Show";
  const what = phone ? `phone call from ${callerName(session)}` : "web session";
  const started = formatStarted(session.created_at);
  button.textContent = verb;
  button.setAttribute("aria-label", `${verb} ${what}, started ${started}`);
}

/** Mark the row of the session the panels show. */
function renderOpenRow() {
  for (const [id, row] of sessionList.rows) {
    if (id === state.view?.id) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }
}

/** Opening another session would replace this page's own while it runs: not until it ends. */
function renderOpenButtons() {
  const busy = ownSessionBusy();
  for (const button of ui.sessionList.querySelectorAll(".session-open")) {
    button.disabled = busy;
    button.title = busy ? "End your own session first: showing another would replace it" : "";
  }
}

// --- Recent sessions: showing one, and following a phone call -----------------------------------

/** Show a listed session in the transcript and event panels: an active phone call live, any
 * other session as stored. */
async function openSession(id) {
  const summary = sessionList.sessions.get(id);
  if (summary === undefined || ownSessionBusy()) return;
  hideNotice();
  resetSession();
  state.view = { id, own: false, phone: isPhone(summary), caller: summary.caller_id };
  showFacts(summary);
  renderOpenRow();
  if (canWatch(summary)) startWatching(summary);
  else await showStoredSession(summary);
  updateControls();
}

async function loadDetail(id) {
  try {
    return await fetchJson(`/api/sessions/${id}`);
  } catch (error) {
    showNotice(`Could not load session ${shortId(id)}: ${error.message}`);
    return null;
  }
}

function describeSession(session) {
  const what = isPhone(session) ? `phone call · ${callerName(session)}` : "web session";
  return `${what} · ${statusText(session)}`;
}

async function showStoredSession(summary) {
  const view = state.view;
  setStatus("connecting", `loading the ${describeSession(summary)}…`);
  const detail = await loadDetail(summary.id);
  if (state.view !== view) return; // another session was opened meanwhile
  if (detail === null) {
    setStatus("idle", "idle · the session could not be shown");
    return;
  }
  showFacts(detail);
  if (detail.utterances.length === 0) addNote("Nothing was said in this session.");
  replayStored(detail);
  setStatus("showing", `showing ${describeSession(detail)}`);
}

/** The stored transcript, oldest first. `buffered`: live events that arrived while the detail
 * loaded; the turns among them that the store already holds add only their event-list line. */
function showStored(detail, buffered = []) {
  keepScrolled(ui.transcript, () => detail.utterances.forEach(showStoredUtterance));
  detail.utterances
    .filter((utterance) => utterance.role === "agent")
    .forEach(({ turn_metrics: metrics }, index) => {
      if (metrics) showTurnMetrics({ turn: index + 1, metrics });
    });
  for (const event of buffered) {
    const storedReply = event.type === "agent_response" && event.final;
    if (storedReply && state.storedUtterances.has(event.utterance_id)) {
      state.storedTurns.add(event.turn);
    }
  }
}

/** A stored session shown as it was shown live: its events rebuilt from the store (marked
 * `rebuilt`) go through the same event list and the same transcript effects. */
function replayStored(detail) {
  for (const event of rebuiltEvents(detail)) {
    keepScrolled(ui.eventList, () => renderEvent(event));
    keepScrolled(ui.transcript, () => STORED_EFFECTS[event.type]?.(event));
  }
}

const BARGE_IN_SOURCES = new Set([
  "speech",
  "text",
  "dtmf",
  "interrupt",
  "operator",
  "continuation",
]);

/** The events a stored session's records tell of, in order. What the store does not keep
 * (partials, audio, playback, errors) is not invented. */
function rebuiltEvents(detail) {
  const rebuilt = [];
  const add = (type, ts, fields) =>
    rebuilt.push({ type, session_id: detail.id, ts, rebuilt: true, ...fields });
  const { agent, channel, sample_rate: sampleRate, turn_budget: turnBudget } = detail;
  add("session_started", detail.created_at, {
    agent: { name: agent.name, strategy: agent.strategy },
    channel,
    sample_rate: sampleRate,
    turn_budget: turnBudget,
  });
  const toolCalls = new Map(); // user utterance id → the tool calls of the turn it started
  for (const task of detail.tasks ?? []) {
    const calls = toolCalls.get(task.utterance_id) ?? [];
    toolCalls.set(task.utterance_id, calls.concat(task.tool_invocations));
  }
  let turn = 0;
  for (const utterance of detail.utterances) {
    const { id, text, created_at: ts } = utterance;
    if (utterance.role === "user") {
      const { seq: utteranceSeq, final } = utterance;
      add("transcript_final", ts, { text, utterance_id: id, utterance_seq: utteranceSeq, final });
      for (const call of toolCalls.get(id) ?? []) {
        add("tool_invocation", call.created_at, { ...call, turn: turn + 1 });
      }
      continue;
    }
    turn += 1;
    const heard = utterance.heard_text;
    const cutBy = utterance.interrupted ? utterance.interrupted_by || "unknown" : "";
    const bargeIn = BARGE_IN_SOURCES.has(cutBy);
    // A reply cut by an error or by the session's end had no barge_in event: say what cut it.
    const cut = cutBy && !bargeIn ? { cut_by: cutBy, heard_text: heard } : {};
    add("agent_response", ts, { turn, final: true, text, utterance_id: id, ...cut });
    if (bargeIn) add("barge_in", ts, { turn, heard_text: heard, source: cutBy });
    if (utterance.turn_metrics) {
      add("turn_metrics", ts, { turn, utterance_id: id, metrics: utterance.turn_metrics });
    }
  }
  if (detail.status !== "active") {
    add("session_ended", detail.ended_at, { reason: detail.end_reason || detail.status });
  }
  return rebuilt;
}

// What a stored session's rebuilt events do to the transcript: what the live ones do, without
// touching the controls, the microphone or the speaker of a live session.
const STORED_EFFECTS = {
  transcript_final: (e) => {
    const bubble = addMessage("user", e.text);
    if (e.final === false) bubble.classList.add("message--partial");
  },
  agent_response: (e) => {
    finishAgentReply(e);
    if (e.cut_by) showInterruption(agentBubble(e.turn), e.heard_text, `Interrupted (${e.cut_by})`);
  },
  barge_in: markInterrupted,
  turn_metrics: showTurnMetrics,
  tool_invocation: addToolChip,
  session_ended: ({ reason }) => addNote(`Session ended: ${reason}`),
};

function showStoredUtterance(utterance) {
  const { id, role, text, final, interrupted, heard_text: heard, interrupted_by: cutBy } =
    utterance;
  const bubble = addMessage(role, text);
  bubble.dataset.utteranceId = id;
  if (!final) bubble.classList.add("message--partial");
  if (role === "agent") {
    bubble.dataset.state = "final";
    const label = cutBy ? `Interrupted (${cutBy})` : "Interrupted";
    if (interrupted) showInterruption(bubble, heard, label);
  }
  state.storedUtterances.add(id);
}

function watchUrl(sessionId) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/ws/sessions/${sessionId}/watch/`;
}

/** Follow a live phone call. Its events reach the socket from the moment it opens, so the
 * stored transcript is read only then: what came before is stored, nothing falls between. */
function startWatching(summary) {
  const socket = new WebSocket(watchUrl(summary.id));
  const watch = { socket, sessionId: summary.id, loaded: false, buffer: [], endTimer: null };
  state.watch = watch;
  setStatus("connecting", `connecting to the ${describeSession(summary)}…`);
  socket.addEventListener("open", () => loadWatched(watch));
  socket.addEventListener("message", (message) => onWatchMessage(watch, message));
  socket.addEventListener("close", (close) => onWatchClose(watch, close));
}

async function loadWatched(watch) {
  const detail = await loadDetail(watch.sessionId);
  if (state.watch !== watch) return; // stopped, or another session opened meanwhile
  if (detail === null) {
    stopWatching();
    setStatus("closed", "stopped watching: the call's stored transcript could not be read");
    updateControls();
    return;
  }
  showFacts(detail);
  showStored(detail, watch.buffer);
  watch.loaded = true;
  showWatching();
  for (const event of watch.buffer.splice(0)) handleEvent(event);
  if (detail.status !== "active") awaitEndEvent(watch, detail.end_reason || detail.status);
  updateControls();
}

function showWatching() {
  setStatus("watching", `watching phone call · ${state.view?.caller || "unknown caller"}`);
  updateControls();
}

function onWatchMessage(watch, { data }) {
  if (state.watch !== watch) return;
  const event = parseEvent(data);
  if (event === null) return;
  if (watch.loaded) handleEvent(event);
  else watch.buffer.push(event);
}

function onWatchClose(watch, { code, reason }) {
  if (state.watch !== watch) return; // this page closed it, and has said why
  state.watch = null;
  clearTimeout(watch.endTimer);
  Object.assign(state, { agentSpeaking: false, callerSpeaking: false });
  const detail = reason ? `code ${code}, ${reason}` : `code ${code}`;
  setStatus("closed", `stopped watching: the socket closed (${detail})`);
  if (code === 4401 || code === 4403) {
    showNotice("Watching a call needs an operator login with the view permission.");
  } else if (!watch.loaded) {
    showNotice("Could not follow the call live. Show it to read what was stored.");
  }
  updateControls();
  refreshSessions();
}

/** Close the watch socket, if one is open; the caller says why in the status. */
function stopWatching() {
  const watch = state.watch;
  if (watch === null) return;
  state.watch = null;
  clearTimeout(watch.endTimer);
  const { socket } = watch;
  // Closed while connecting, Chromium logs an error: let it open first.
  if (socket.readyState === WebSocket.CONNECTING) socket.onopen = () => socket.close(1000);
  else socket.close(1000);
  Object.assign(state, { agentSpeaking: false, callerSpeaking: false });
}

/** Interrupt or end the watched call through the REST API: the watch socket only listens. */
async function controlWatchedCall(action) {
  const watch = state.watch;
  try {
    const session = await fetchJson(`/api/sessions/${watch.sessionId}/${action}`, {
      method: "POST",
    });
    hideNotice();
    if (action === "end") awaitEndEvent(watch, session.end_reason);
  } catch (error) {
    showNotice(`Could not ${action} the call: ${error.message}`);
  }
  if (action === "end") refreshSessions();
}

/** The watched call has ended (the REST API or the list says so). Its media socket tells
 * watchers too, a moment later; when there is none (ACS never connected the media, or the
 * caller hung up first) nothing will, so after a grace period the page says so itself. */
function awaitEndEvent(watch, reason) {
  if (state.watch !== watch || watch.endTimer !== null) return;
  watch.endTimer = setTimeout(() => {
    if (state.watch === watch && state.endReason === null) onSessionEnded({ reason });
  }, END_GRACE_MS);
}

function onInterruptClick() {
  if (isWatching()) controlWatchedCall("interrupt");
  else send({ type: "interrupt" });
}

function onEndClick() {
  if (isWatching()) controlWatchedCall("end");
  else send({ type: "end" });
}

// --- The composer ----------------------------------------------------------------------------

function clearPartialTimer() {
  clearTimeout(state.partialTimer);
  state.partialTimer = null;
}

function onComposerSubmit(event) {
  event.preventDefault();
  clearPartialTimer();
  const text = ui.textInput.value.trim();
  if (text && send({ type: "text", text, final: true })) ui.textInput.value = "";
}

/** While the user types, send what they have so far as non-final text (debounced). */
function onComposerInput() {
  clearPartialTimer();
  const text = ui.textInput.value.trim();
  if (!ui.liveTyping.checked || !text) return;
  const sendPartial = () => send({ type: "text", text, final: false });
  state.partialTimer = setTimeout(sendPartial, PARTIAL_DELAY_MS);
}

function bindControls() {
  ui.startButton.addEventListener("click", startSession);
  ui.micButton.addEventListener("click", toggleMicrophone);
  ui.interruptButton.addEventListener("click", onInterruptClick);
  ui.endButton.addEventListener("click", onEndClick);
  ui.agentSelect.addEventListener("change", updateControls);
  ui.composer.addEventListener("submit", onComposerSubmit);
  ui.textInput.addEventListener("input", onComposerInput);
  for (const gesture of ["click", "keydown"]) document.addEventListener(gesture, resumeAudio);
  document.addEventListener("visibilitychange", onVisibilityChange);
}

bindControls();
setStatus("idle", "idle · choose an agent and start a session");
loadAgents();
refreshSessions();
