"""Settings for the voice agent server, read from the environment.

Every value has an embedded default so that a fresh clone runs with SQLite, the in-memory
channel layer, offline speech engines and the echo agent. `.env.example` lists them all.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from voiceproject.channel_layers import in_memory_layer, redis_layer
from voiceproject.secret_key import load_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Off unless asked for: debug pages are for a developer's machine (README "Security").
DEBUG = env_bool("DEBUG", False)
# Unset: a key generated for this install, kept in SECRET_KEY_FILE (git ignores it).
SECRET_KEY = load_secret_key(
    os.environ.get("SECRET_KEY", ""),
    Path(os.environ.get("SECRET_KEY_FILE") or BASE_DIR / ".secret_key"),
)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "agents_app",
    "sessions_app",
    "operators_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Debug pages and error reports mask every credential (voiceproject/error_reports.py).
DEFAULT_EXCEPTION_REPORTER = "voiceproject.error_reports.CredentialMaskingReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "voiceproject.error_reports.CredentialMaskingFilter"
# Operators log in through the admin's login page (README "Security").
LOGIN_URL = "admin:login"

ROOT_URLCONF = "voiceproject.urls"
ASGI_APPLICATION = "voiceproject.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        # Seconds a connection is reused; 60 suits PostgreSQL under load (see README).
        conn_max_age=env_int("CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent writers queue up instead of failing with "database is locked": WAL lets
    # readers run beside the writer, IMMEDIATE takes the write lock when a transaction
    # begins (no deadlocked upgrade), and a busy writer is waited for up to `timeout` s.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": env_float("SQLITE_BUSY_TIMEOUT_S", 20.0),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
CHANNEL_LAYERS = {"default": redis_layer(REDIS_URL) if REDIS_URL else in_memory_layer()}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve /static/ from the ASGI app itself (fine for development and small deployments).
SERVE_STATIC = env_bool("SERVE_STATIC", True)

# LOG_FORMAT: plain (a line of text) or json (one object a line, with the session's ids).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "voiceproject.logs.JsonFormatter"},
    },
    # No credential reaches a log line: the webhook's ?secret=, a socket's ?token=, keys;
    # nor a digit run (redacted), and each line names the session it was written for.
    "filters": {
        "mask_credentials": {"()": "voiceproject.access_log.MaskCredentialsFilter"},
        "session_context": {"()": "voiceproject.logs.SessionContextFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["mask_credentials", "session_context"],
        }
    },
    "loggers": {
        "sessions_app": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
        "agents_app": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
        # runserver's access log (daphne's), DEBUG or not.
        "django.channels.server": {
            "handlers": ["console"],
            "level": "INFO",
            "filters": ["mask_credentials"],
            "propagate": False,
        },
    },
}

# --- The voice agent ---------------------------------------------------------------------
AGENT_STRATEGY = os.environ.get("AGENT_STRATEGY", "echo")

# Speech: engines (see README), voice detection, playback.
STT_ENGINE = os.environ.get("STT_ENGINE", "whisper")  # whisper | pocketsphinx | openai | none
# Whisper (offline, one model per process): tiny.en, or base (slower, more accurate).
WHISPER_MODEL = os.environ.get("WHISPER_MODEL", "tiny.en")
WHISPER_BEAM_SIZE = env_int("WHISPER_BEAM_SIZE", 5)
# Encoder window in seconds (longer utterances get their own length): 30 is Whisper's own and
# costs a 30 s pass for every "yes"; 10 measured as accurate at a third of the CPU (README).
WHISPER_WINDOW_S = env_float("WHISPER_WINDOW_S", 10)
WHISPER_NO_SPEECH_THRESHOLD = env_float("WHISPER_NO_SPEECH_THRESHOLD", 0.6)
WHISPER_LOG_PROB_THRESHOLD = env_float("WHISPER_LOG_PROB_THRESHOLD", -1.0)
# Recognition threads shared by every session of the process, and how many decodes may wait.
STT_WORKERS = env_int("STT_WORKERS", os.cpu_count() or 1)
STT_QUEUE_LIMIT = env_int("STT_QUEUE_LIMIT", 64)
# Partials at most this often, and only while a recognition thread is spare.
STT_PARTIAL_INTERVAL_MS = env_int("STT_PARTIAL_INTERVAL_MS", 500)
# Start the final when the caller pauses (VAD_PAUSE_MS), not when the turn ends.
STT_SPECULATIVE_FINAL = env_bool("STT_SPECULATIVE_FINAL", True)
# piper: a neural voice (first audio ~0.1 s after a clause is ready); espeak: robotic, instant.
TTS_ENGINE = os.environ.get("TTS_ENGINE", "piper")  # piper | espeak | openai | silent | none
TTS_VOICE = os.environ.get("TTS_VOICE", "")  # blank: the engine's default voice
TTS_RATE_WPM = env_int("TTS_RATE_WPM", 175)
VAD_ENGINE = os.environ.get("VAD_ENGINE", "hybrid")  # hybrid | silero | webrtc
VAD_THRESHOLD = env_float("VAD_THRESHOLD", 0.5)
# Speech must last this long to count (and to barge in): coughs and clicks do not.
VAD_MIN_SPEECH_MS = env_int("VAD_MIN_SPEECH_MS", 200)
VAD_HANGOVER_MS = env_int("VAD_HANGOVER_MS", 1500)
# A silence this long inside speech is a pause: the end-of-turn model and the speculative final
# are asked then. The hangover is the longest silence a turn may hold when they say "not yet".
VAD_PAUSE_MS = env_int("VAD_PAUSE_MS", 200)
# Voiced audio that pauses the agent's reply at once (confirmed or resumed afterwards).
VAD_ONSET_MS = env_int("VAD_ONSET_MS", 64)
# Speech over a reply no longer than this, saying only these, lets the reply go on.
BACKCHANNEL_MAX_MS = env_int("BACKCHANNEL_MAX_MS", 800)
BACKCHANNELS = env_list(
    "BACKCHANNELS",
    "mhm,mm hmm,uh huh,okay,ok,yeah,yes,yep,right,sure,alright,all right,i see,got it",
)
# A short interjection recognised with less confidence than this is a murmur ("mhm" heard as
# "Can I make him?"): the reply goes on. Clear words ("stop", "wait": 0.5-0.8) cut it.
INTERJECTION_MIN_CONFIDENCE = env_float("INTERJECTION_MIN_CONFIDENCE", 0.45)
# The caller going on this soon after their turn ended continues it (the reply is dropped).
CONTINUATION_MS = env_int("CONTINUATION_MS", 1000)
MAX_UTTERANCE_S = env_int("MAX_UTTERANCE_S", 15)
# The end-of-turn model asked at each pause: smart_turn (offline) | none.
TURN_MODEL = os.environ.get("TURN_MODEL", "smart_turn")
TURN_MODEL_THRESHOLD = env_float("TURN_MODEL_THRESHOLD", 0.5)
PLAYBACK_FRAME_MS = 20
PLAYBACK_LEAD_MS = env_int("PLAYBACK_LEAD_MS", 80)
AUDIO_MAX_FRAME_MS = 1000
OPENAI_STT_MODEL = os.environ.get("OPENAI_STT_MODEL", "gpt-4o-mini-transcribe")
OPENAI_TTS_MODEL = os.environ.get("OPENAI_TTS_MODEL", "gpt-4o-mini-tts")
OPENAI_TTS_VOICE = os.environ.get("OPENAI_TTS_VOICE", "alloy")

OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "")
OPENAI_BASE_URL = os.environ.get("OPENAI_BASE_URL", "") or None
OPENAI_MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
OPENAI_TIMEOUT_S = env_float("OPENAI_TIMEOUT_S", 30.0)

# Our retry policy (agents_app.retry); SDK-internal retries are switched off.
PROVIDER_RETRY_ATTEMPTS = env_int("PROVIDER_RETRY_ATTEMPTS", 3)
PROVIDER_RETRY_DEADLINE_S = env_float("PROVIDER_RETRY_DEADLINE_S", 20.0)
PROVIDER_RETRY_BASE_S = env_float("PROVIDER_RETRY_BASE_S", 0.25)
PROVIDER_RETRY_MAX_WAIT_S = env_float("PROVIDER_RETRY_MAX_WAIT_S", 4.0)

# Telephony through Azure Communication Services (sessions_app/acs/; README "Phone calls").
# Blank connection string, callback base or webhook secret: the ACS endpoints answer 503.
ACS_CONNECTION_STRING = os.environ.get("ACS_CONNECTION_STRING", "")
ACS_CALLBACK_BASE_URL = os.environ.get("ACS_CALLBACK_BASE_URL", "").rstrip("/")
ACS_WEBHOOK_SECRET = os.environ.get("ACS_WEBHOOK_SECRET", "")
ACS_AUDIO_FORMAT = os.environ.get("ACS_AUDIO_FORMAT", "pcm16k")  # pcm16k | pcm24k
# ACS signs callbacks and the media WebSocket; only local testing may switch this off.
ACS_VERIFY_JWT = env_bool("ACS_VERIFY_JWT", True)
ACS_JWT_AUDIENCE = os.environ.get("ACS_JWT_AUDIENCE", "")  # the resource's immutable id
ACS_JWKS_URL = os.environ.get(
    "ACS_JWKS_URL", "https://acscallautomation.communication.azure.com/calling/keys"
)
# Keypad entries end with "#" or after this long without another key.
DTMF_ENTRY_TIMEOUT_MS = env_int("DTMF_ENTRY_TIMEOUT_MS", 2000)

CONTEXT_TURN_BUDGET = env_int("CONTEXT_TURN_BUDGET", 20)
REDACT_MIN_DIGITS = env_int("REDACT_MIN_DIGITS", 12)

# Call recordings (README "Recordings"): a stereo WAV per session, saved through STORAGES.
RECORD_SESSIONS = env_bool("RECORD_SESSIONS", False)
RECORDING_MAX_S = env_int("RECORDING_MAX_S", 3600)  # a longer call's recording stops there
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))

SESSION_TOKEN_MAX_AGE_S = env_int("SESSION_TOKEN_MAX_AGE_S", 900)
# How long a session token still reads and ends its session over REST (README "Security").
SESSION_ACCESS_MAX_AGE_S = env_int("SESSION_ACCESS_MAX_AGE_S", 86400)
# Anyone may start a session (the dashboard's talk panel); off: operators only.
PUBLIC_SESSIONS = env_bool("PUBLIC_SESSIONS", True)
# Sessions one client address may start, per process: COUNT/PERIOD (s, min, hour); blank: no limit.
SESSION_CREATE_RATE = os.environ.get("SESSION_CREATE_RATE", "30/min")
# On SIGTERM, end this process's live sessions (reason server_shutdown) before exiting.
GRACEFUL_SHUTDOWN = env_bool("GRACEFUL_SHUTDOWN", True)
# How long a session's writes ride out a database outage before the caller is told.
STORAGE_RETRY_DEADLINE_S = env_float("STORAGE_RETRY_DEADLINE_S", 5.0)
WS_MAX_TEXT_BYTES = env_int("WS_MAX_TEXT_BYTES", 16 * 1024)
MAX_UTTERANCE_CHARS = env_int("MAX_UTTERANCE_CHARS", 4000)
# daphne drops the TCP connection of a frame over its limit, with no close code: ours
# (WS_MAX_TEXT_BYTES, AUDIO_MAX_FRAME_MS) answer first. runserver reads this; daphne's CLI
# takes --websocket_max_message_size.
DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE = 1024 * 1024

# Bounds per session and per process (README "Limits").
# Caller audio may run this far ahead of real time (since its first frame); beyond, dropped.
AUDIO_AHEAD_BUDGET_MS = env_int("AUDIO_AHEAD_BUDGET_MS", 2000)
# Bytes a client may leave unread on its socket before its session ends (client_not_reading).
OUTBOUND_BACKLOG_MAX_BYTES = env_int("OUTBOUND_BACKLOG_MAX_BYTES", 1024 * 1024)
# Live sessions one process holds; more are refused with at_capacity.
MAX_LIVE_SESSIONS = env_int("MAX_LIVE_SESSIONS", 50)
# Each process refreshes its sessions' heartbeat this often, and ends those of a process
# that missed LIVENESS_MISSED_BEATS of them (server_lost) or never connected (never_connected).
LIVENESS_INTERVAL_S = env_float("LIVENESS_INTERVAL_S", 30.0)
LIVENESS_MISSED_BEATS = env_int("LIVENESS_MISSED_BEATS", 3)
