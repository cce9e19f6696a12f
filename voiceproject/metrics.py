"""Every Prometheus metric of the server, declared once; GET /metrics exposes them.

One registry per process (prometheus_client's default): each daphne process serves its own
/metrics, and Prometheus scrapes every process (README, Observability). Durations are in
seconds, from the monotonic clock.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Latency buckets from a few milliseconds (an echo reply, a cached voice) to tens of seconds
# (a slow cloud model), dense where a conversation's turns live: 0.1 to 2 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30)
# The event loop's lag: a healthy loop overshoots its sleeps by well under 10 ms.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

ERRORS = Counter(
    "voice_errors",
    "Error events and REST error answers, by error code (contracts/error-event.schema.json).",
    ["code"],
)
LIVE_SESSIONS = Gauge(
    "voice_live_sessions",
    "Sessions live in this process now (connected and not ended).",
)
EVENT_LOOP_LAG = Histogram(
    "voice_event_loop_lag_seconds",
    "How late this process's event loop woke from a short sleep: time every session waits.",
    buckets=LAG_BUCKETS,
)
STT_SECONDS = Histogram(
    "voice_stt_seconds",
    "From the end of an utterance to its final transcript, by STT engine.",
    ["engine"],
    buckets=LATENCY_BUCKETS,
)
TTS_SECONDS = Histogram(
    "voice_tts_seconds",
    "Synthesising one sentence of a reply, by TTS engine.",
    ["engine"],
    buckets=LATENCY_BUCKETS,
)
AGENT_FIRST_TOKEN_SECONDS = Histogram(
    "voice_agent_first_token_seconds",
    "From asking the agent to its first piece of reply, by agent strategy.",
    ["strategy"],
    buckets=LATENCY_BUCKETS,
)
# Declared for the turn-taking pipeline to feed.
TURN_STAGE_SECONDS = Histogram(
    "voice_turn_stage_seconds",
    "Duration of one stage of an agent turn (end of speech to final, to first token, ...).",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
BARGE_IN_STOP_SECONDS = Histogram(
    "voice_barge_in_stop_seconds",
    "From the caller's barge-in onset to the agent's last audio frame sent.",
    buckets=LATENCY_BUCKETS,
)
BARGE_INS = Counter(
    "voice_barge_ins",
    "Barge-ins by outcome: confirmed (the reply stopped), resumed, or backchannel.",
    ["outcome"],
)
