// AudioWorklet processors for the dashboard's voice: the microphone in, the agent's voice out.
// Both run at their AudioContext's rate (the global `sampleRate`), which the page sets to the
// session's rate, so neither side resamples: Chromium resamples the microphone for us.

const FRAME_MS = 20;
// How often the playback processor reports progress, in render quanta (128 samples each).
const REPORT_EVERY_QUANTA = 8;

/** Float32 in [-1, 1] → Int16, clamped. */
function toInt16(sample) {
  const clamped = Math.max(-1, Math.min(1, sample));
  return clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff;
}

/**
 * "mic-capture": microphone audio → Int16 frames of FRAME_MS, posted as transferred
 * ArrayBuffers. The node is created with channelCount 1 (explicit), so input is already mono.
 */
class MicCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.frameSize = Math.round((sampleRate * FRAME_MS) / 1000);
    this.frame = new Int16Array(this.frameSize);
    this.filled = 0;
  }

  process(inputs) {
    const samples = inputs[0]?.[0];
    if (samples) this.append(samples);
    return true;
  }

  append(samples) {
    for (const sample of samples) {
      this.frame[this.filled++] = toInt16(sample);
      if (this.filled === this.frameSize) this.post();
    }
  }

  post() {
    const buffer = this.frame.buffer;
    this.port.postMessage(buffer, [buffer]);
    this.frame = new Int16Array(this.frameSize);
    this.filled = 0;
  }
}

/**
 * "agent-playback": plays Int16 frames posted by the page, through a ring buffer of Float32.
 *
 * Messages in: `{type: "pcm", pcm: ArrayBuffer}` (Int16 samples), `{type: "clear"}` (drop all
 * buffered audio now: barge-in), `{type: "report"}`. Messages out: `{type: "played", played,
 * buffered}` (samples) every few quanta while audio plays, when the buffer runs dry, after a
 * clear and on request. Silence is output whenever the buffer is empty.
 */
class AgentPlayback extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const seconds = options.processorOptions?.bufferSeconds ?? 30;
    this.ring = new Float32Array(Math.ceil(sampleRate * seconds));
    this.read = 0;
    this.buffered = 0;
    this.played = 0;
    this.quanta = 0;
    this.port.onmessage = ({ data }) => this.receive(data);
  }

  receive(message) {
    if (message.type === "pcm") this.push(new Int16Array(message.pcm));
    else if (message.type === "clear") this.clear();
    else if (message.type === "report") this.report();
  }

  push(samples) {
    const size = this.ring.length;
    for (const sample of samples) {
      if (this.buffered === size) {
        // Full: drop the oldest sample; audio this late is worth less than the newest.
        this.read = (this.read + 1) % size;
        this.buffered -= 1;
      }
      this.ring[(this.read + this.buffered) % size] = sample / 0x8000;
      this.buffered += 1;
    }
  }

  clear() {
    this.read = 0;
    this.buffered = 0;
    this.report();
  }

  process(_inputs, outputs) {
    const output = outputs[0][0];
    const count = Math.min(output.length, this.buffered);
    for (let i = 0; i < count; i++) {
      output[i] = this.ring[this.read];
      this.read = (this.read + 1) % this.ring.length;
    }
    output.fill(0, count);
    for (const channel of outputs[0].slice(1)) channel.set(output);
    this.buffered -= count;
    this.played += count;
    this.reportProgress(count);
    return true;
  }

  reportProgress(count) {
    if (count === 0) return;
    this.quanta += 1;
    if (this.buffered === 0 || this.quanta % REPORT_EVERY_QUANTA === 0) this.report();
  }

  report() {
    this.port.postMessage({ type: "played", played: this.played, buffered: this.buffered });
  }
}

registerProcessor("mic-capture", MicCapture);
registerProcessor("agent-playback", AgentPlayback);
