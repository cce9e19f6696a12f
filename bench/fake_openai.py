"""A fake OpenAI-compatible server for load runs, in its own process, answering forever.

Every request gets the same answer with a real service's delays: a transcription replies after
300 ms; a chat completion streams its first token after 200 ms, then one every 20 ms; speech
streams a quiet tone (60 ms a character, raw 24 kHz PCM), its first bytes after 200 ms and the
rest ten times faster than real time. Nothing is recorded, so memory stays flat.

    python bench/fake_openai.py [--port 0] [--watch-pid PID]

It prints `ready <base URL>` once it listens, and stops on SIGTERM or SIGINT, or once the
process `--watch-pid` names is gone (so a benchmark killed hard leaves nothing behind).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import threading

import harness  # noqa: F401  (puts the repository root on the path)

from tests.fakes.openai_server import (
    CHAT_COMPLETIONS,
    SPEECH,
    TRANSCRIPTIONS,
    Delayed,
    FakeOpenAIServer,
    PacedTextReply,
    StreamedSpeech,
    TranscriptionReply,
)

TRANSCRIPT = "what is my account balance please"
REPLY = "Your balance is 120 dollars. Anything else?"
STT_DELAY_S = 0.3
FIRST_TOKEN_S = 0.2
TOKEN_INTERVAL_S = 0.02


def reply_pieces(text: str) -> list[str]:
    """The reply cut like a tokenizer might: one word (with its leading space) a piece."""
    words = text.split(" ")
    return [words[0]] + [f" {word}" for word in words[1:]]


def start(port: int = 0) -> FakeOpenAIServer:
    server = FakeOpenAIServer(port=port, record_requests=False)
    server.always(Delayed(TranscriptionReply(TRANSCRIPT), STT_DELAY_S), path=TRANSCRIPTIONS)
    server.always(
        PacedTextReply(reply_pieces(REPLY), FIRST_TOKEN_S, TOKEN_INTERVAL_S), path=CHAT_COMPLETIONS
    )
    server.always(StreamedSpeech(), path=SPEECH)
    return server.start()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument("--watch-pid", type=int, help="stop once this process is gone")
    args = parser.parse_args()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = start(args.port)
    print(f"ready {server.base_url}", flush=True)
    try:
        while not stop.wait(1.0) and (args.watch_pid is None or alive(args.watch_pid)):
            pass
    finally:
        with contextlib.suppress(Exception):
            server.stop()


if __name__ == "__main__":
    main()
