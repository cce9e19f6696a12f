// The dashboard: start a session, talk to the agent by voice or text, watch every server event.
// Protocol: /work/shared/DESIGN.md §3 and contracts/stream-event.schema.json.

import { AgentSpeaker, Microphone, frameLevel } from "./voice.js";

const PARTIAL_DELAY_MS = 400;
const SCROLL_SLACK_PX = 48;
const DEFAULT_SAMPLE_RATE = 16000;
// Per microphone frame (20 ms), the meter falls to this share of its last value at most.
const LEVEL_DECAY = 0.85;

const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);

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
  partialBubble: null,
  partialTimer: null,
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

function updateControls() {
  const busy = state.starting || state.socket !== null;
  const live = isLive();
  ui.agentSelect.disabled = busy || ui.agentSelect.options.length === 0;
  ui.startButton.disabled = busy || !ui.agentSelect.value;
  const sessionControls = [
    ui.textInput,
    ui.sendButton,
    ui.micButton,
    ui.interruptButton,
    ui.endButton,
  ];
  for (const control of sessionControls) control.disabled = !live;
  renderVoiceState();
}

// --- The event list: the one place that renders a server event -----------------------------

const DESCRIBERS = {
  session_started: (e) => `${e.agent?.name} (${e.agent?.strategy}) · ${e.sample_rate} Hz`,
  speech_started: (e) => `at ${e.offset_ms} ms`,
  speech_stopped: (e) => `at ${e.offset_ms} ms · ${e.duration_ms} ms long`,
  transcript_partial: (e) => quote(e.text),
  transcript_final: (e) => quote(e.text),
  agent_response: (e) => (e.final ? `final ${quote(e.text)}` : quote(e.delta)),
  playback_started: (e) => `turn ${e.turn} · ${e.sample_rate} Hz`,
  playback_completed: (e) => `turn ${e.turn} · ${e.played_ms} ms played`,
  barge_in: (e) => `turn ${e.turn} by ${e.source} · heard ${quote(e.heard_text)}`,
  tool_invocation: (e) => `${e.tool} ${e.status} · ${e.duration_ms} ms`,
  context_truncated: (e) => `dropped ${e.dropped_turns} · kept ${e.kept_turns} turns`,
  session_ended: (e) => e.reason,
  error: (e) => `${e.code}: ${e.message}`,
};

function renderEvent(event) {
  const summary = el(
    "summary",
    {},
    el("span", { class: "event__type" }, String(event.type)),
    el("span", { class: "event__seq" }, `#${event.seq ?? "?"}`),
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
  ui.eventList.append(item);
  ui.eventCount.textContent = String(++state.eventCount);
}

// --- The transcript --------------------------------------------------------------------------

function addMessage(role, text) {
  const item = el(
    "li",
    { class: `message message--${role}`, dataset: { testid: `${role}-bubble` } },
    el("span", { class: "message__role" }, role === "user" ? "You" : "Agent"),
    el("p", { class: "message__text" }, text),
  );
  ui.transcript.append(item);
  return item;
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

/** Strike out what the caller never heard and say what they did hear. */
function markInterrupted({ turn, heard_text: heard = "", source }) {
  const bubble = agentBubble(turn);
  const body = bubble.querySelector(".message__text");
  const shown = body.textContent;
  if (shown.startsWith(heard) && shown.length > heard.length) {
    const unheard = el("s", { class: "unheard", title: "not heard" }, shown.slice(heard.length));
    body.replaceChildren(heard, unheard);
  }
  bubble.dataset.state = "interrupted";
  const note = heard
    ? `Interrupted (${source}). Heard: ${quote(heard)}`
    : `Interrupted (${source}) before anything was heard.`;
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

function onSessionStarted(event) {
  state.sampleRate = event.sample_rate;
  voice.speaker.prepare(event.sample_rate);
  setStatus("live", `live · agent ${event.agent?.name}`);
  updateControls();
  ui.textInput.focus();
}

function onSessionEnded({ reason }) {
  state.endReason = reason;
  stopMicrophone();
  setStatus("ended", `ended: ${reason}`);
  addNote(`Session ended: ${reason}`);
  updateControls();
}

// What each event does to the page besides its line in the event list.
const EVENT_EFFECTS = {
  session_started: onSessionStarted,
  speech_started: () => setSpeaking("callerSpeaking", true),
  speech_stopped: () => setSpeaking("callerSpeaking", false),
  transcript_partial: (e) => showPartial(e.text),
  transcript_final: (e) => {
    clearPartial();
    addMessage("user", e.text);
  },
  agent_response: (e) => (e.final ? finishAgentReply(e) : extendAgentReply(e)),
  playback_started: onPlaybackStarted,
  playback_completed: () => setSpeaking("agentSpeaking", false),
  barge_in: (e) => {
    stopAgentAudio();
    markInterrupted(e);
  },
  tool_invocation: addToolChip,
  context_truncated: (e) => addNote(`Context trimmed: ${e.dropped_turns} older turn(s) dropped.`),
  error: (e) => addNote(`Error ${e.code}: ${e.message}`, "error"),
  session_ended: onSessionEnded,
};

function handleEvent(event) {
  keepScrolled(ui.eventList, () => renderEvent(event));
  keepScrolled(ui.transcript, () => EVENT_EFFECTS[event.type]?.(event));
}

// --- Voice: the microphone, the level meter and the agent's audio ---------------------------

const VOICE_STATES = {
  idle: "idle",
  listening: "listening",
  caller: "you are speaking",
  agent: "agent speaking",
};

function newSpeaker() {
  return new AgentSpeaker({
    onProgress: showPlayed,
    onError: (error) => showNotice(`Could not play the agent's audio: ${error.message}`),
  });
}

function renderVoiceState() {
  let phase = isLive() ? "listening" : "idle";
  if (state.callerSpeaking) phase = "caller";
  else if (state.agentSpeaking) phase = "agent";
  ui.voiceState.dataset.state = phase;
  ui.voiceState.textContent = VOICE_STATES[phase];
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
  voice.speaker.prepare(rate);
  setSpeaking("agentSpeaking", true);
}

function stopAgentAudio() {
  voice.speaker.clear();
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

function onSocketMessage({ data }) {
  if (data instanceof ArrayBuffer) {
    playAgentAudio(data);
    return;
  }
  let event;
  try {
    event = JSON.parse(data);
  } catch {
    showNotice("The server sent a text frame that is not JSON.");
    return;
  }
  handleEvent(event);
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
    const option = (agent) =>
      el("option", { value: agent.name }, `${agent.name} (${agent.strategy})`);
    ui.agentSelect.replaceChildren(...agents.map(option));
    const preferred =
      agents.find((agent) => agent.name === "echo") ??
      agents.find((agent) => agent.strategy === "echo");
    if (preferred) ui.agentSelect.value = preferred.name;
    if (agents.length === 0) showNotice("No agents are configured.");
  } catch (error) {
    ui.agentSelect.replaceChildren();
    showNotice(`Could not load agents: ${error.message}`);
  }
  updateControls();
}

function resetSession() {
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
  ui.eventList.replaceChildren();
  ui.transcript.replaceChildren();
  ui.eventCount.textContent = "0";
  ui.audioFrames.textContent = "0";
  showPlayed({ samples: 0, ms: 0, buffered: 0 });
  ui.sessionId.textContent = "—";
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
    ui.sessionId.textContent = session.id;
    state.sampleRate = session.sample_rate;
    voice.speaker.prepare(session.sample_rate);
    openSocket(session.ws_url);
  } catch (error) {
    setStatus("idle", "idle · the session could not start");
    showNotice(`Could not start a session: ${error.message}`);
  } finally {
    state.starting = false;
    updateControls();
  }
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
  ui.interruptButton.addEventListener("click", () => send({ type: "interrupt" }));
  ui.endButton.addEventListener("click", () => send({ type: "end" }));
  ui.agentSelect.addEventListener("change", updateControls);
  ui.composer.addEventListener("submit", onComposerSubmit);
  ui.textInput.addEventListener("input", onComposerInput);
  for (const gesture of ["click", "keydown"]) document.addEventListener(gesture, resumeAudio);
}

bindControls();
setStatus("idle", "idle · choose an agent and start a session");
loadAgents();
