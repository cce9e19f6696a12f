// The dashboard's audio: the microphone to the server, the agent's voice to the speakers.
// Both run in AudioWorklets (audio-worklet.js) inside AudioContexts at the session's sample
// rate, so the page never resamples: Chromium converts the microphone to the context's rate.

const WORKLET_URL = new URL("./audio-worklet.js", import.meta.url);

export const MIC_CONSTRAINTS = {
  audio: { echoCancellation: true, noiseSuppression: true, channelCount: 1 },
};

// The level meter's floor: quieter than this reads as zero.
const LEVEL_FLOOR_DB = -60;

/** How loud a frame of Int16 samples is, from 0 (at or below the floor) to 1 (full scale). */
export function frameLevel(samples) {
  let sum = 0;
  for (const sample of samples) sum += sample * sample;
  const rms = Math.sqrt(sum / Math.max(1, samples.length)) / 0x8000;
  const db = 20 * Math.log10(rms || Number.MIN_VALUE);
  return Math.min(1, Math.max(0, 1 - db / LEVEL_FLOOR_DB));
}

/**
 * The agent's voice: an "agent-playback" worklet in an AudioContext at the audio's rate.
 *
 * Frames and clears are queued behind the worklet's loading, so they keep their order.
 * `onProgress({ samples, ms, buffered })` reports how much has been played in total.
 */
export class AgentSpeaker {
  constructor({ onProgress, onError }) {
    this.onProgress = onProgress;
    this.onError = onError;
    this.current = null; // { context, rate, samples, node: a promise of the node or null }
    this.earlierSamples = 0; // played by contexts since closed
    this.earlierMs = 0;
  }

  /** Be ready to play audio at `rate`; a different rate replaces the context. */
  prepare(rate) {
    if (this.current?.rate === rate) return;
    this.close();
    const context = new AudioContext({ sampleRate: rate, latencyHint: "interactive" });
    const current = { context, rate, samples: 0 };
    current.node = context.audioWorklet
      .addModule(WORKLET_URL)
      .then(() => this.connect(current))
      .catch((error) => {
        if (current === this.current) this.onError(error);
        return null;
      });
    this.current = current;
  }

  connect(current) {
    const { context } = current;
    const node = new AudioWorkletNode(context, "agent-playback", { outputChannelCount: [1] });
    node.port.onmessage = ({ data }) => this.progress(current, data);
    node.connect(context.destination);
    return node;
  }

  progress(current, { played, buffered }) {
    if (current !== this.current) return; // a late report from a closed context
    current.samples = played;
    this.onProgress({
      samples: this.earlierSamples + played,
      ms: this.earlierMs + (played / current.rate) * 1000,
      buffered,
    });
  }

  /** Queue one frame of Int16 PCM (the buffer is transferred to the worklet). */
  play(buffer) {
    const message = { type: "pcm", pcm: buffer };
    this.current?.node.then((node) => node?.port.postMessage(message, [buffer]));
  }

  /** Drop everything buffered: the caller barged in. */
  clear() {
    this.current?.node.then((node) => node?.port.postMessage({ type: "clear" }));
  }

  resume() {
    if (this.current?.context.state === "suspended") this.current.context.resume();
  }

  close() {
    if (this.current === null) return;
    const { context, rate, samples } = this.current;
    this.earlierSamples += samples;
    this.earlierMs += (samples / rate) * 1000;
    this.current = null;
    context.close();
  }
}

function stopTracks(stream) {
  for (const track of stream?.getTracks() ?? []) track.stop();
}

/**
 * The caller's microphone: a "mic-capture" worklet posting 20 ms Int16 frames to `onFrame`.
 * Call `start` from a click handler: the AudioContext is created before anything is awaited,
 * so the click lets it start.
 */
export class Microphone {
  constructor(onFrame) {
    this.onFrame = onFrame;
    this.context = null;
    this.stream = null;
  }

  get active() {
    return this.context !== null;
  }

  async start(rate) {
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new Error("this page cannot use a microphone (it needs https or localhost)");
    }
    const context = new AudioContext({ sampleRate: rate, latencyHint: "interactive" });
    this.context = context;
    try {
      const [stream] = await Promise.all([
        navigator.mediaDevices.getUserMedia(MIC_CONSTRAINTS),
        context.audioWorklet.addModule(WORKLET_URL),
      ]);
      if (this.context !== context) {
        stopTracks(stream); // the microphone was switched off while we waited
        return;
      }
      this.stream = stream;
      this.capture(context, stream);
      await context.resume();
    } catch (error) {
      if (this.context !== context) return; // switched off meanwhile: the failure no longer matters
      this.stop();
      throw error;
    }
  }

  capture(context, stream) {
    const node = new AudioWorkletNode(context, "mic-capture", {
      numberOfOutputs: 0,
      channelCount: 1,
      channelCountMode: "explicit",
    });
    node.port.onmessage = ({ data }) => this.onFrame(new Int16Array(data));
    context.createMediaStreamSource(stream).connect(node);
  }

  stop() {
    stopTracks(this.stream);
    this.context?.close();
    this.context = null;
    this.stream = null;
  }

  resume() {
    if (this.context?.state === "suspended") this.context.resume();
  }
}
