"""Client→server messages: parsed and validated at the edge into typed values."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings

from sessions_app.events import ErrorCode
from sessions_app.text import clean_text

SUPPORTED_SAMPLE_RATES = (8000, 16000, 24000, 48000)


class ProtocolError(Exception):
    """A client message the server cannot use; becomes an `error` event."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ConfigMessage:
    sample_rate: int


@dataclass(frozen=True)
class TextMessage:
    text: str
    final: bool


@dataclass(frozen=True)
class InterruptMessage:
    pass


@dataclass(frozen=True)
class EndMessage:
    pass


ClientMessage = ConfigMessage | TextMessage | InterruptMessage | EndMessage


def parse_client_message(raw: str) -> ClientMessage:
    """Turn one text frame into a typed message, or raise ProtocolError saying what is wrong."""
    if len(raw.encode(errors="surrogatepass")) > settings.WS_MAX_TEXT_BYTES:
        raise ProtocolError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"text frame is larger than {settings.WS_MAX_TEXT_BYTES} bytes",
        )
    data = decode_json(raw)
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError(ErrorCode.INVALID_EVENT, "expected a JSON object with a string 'type'")
    kind = data["type"]
    parser = _PARSERS.get(kind)
    if parser is None:
        known = ", ".join(sorted(_PARSERS))
        raise ProtocolError(
            ErrorCode.UNKNOWN_EVENT_TYPE,
            f"unknown event type {kind[:40]!r}; expected one of {known}",
        )
    return parser(data)


def decode_json(raw: str | bytes) -> object:
    """Parse JSON, or raise ProtocolError(invalid_json) saying why.

    Only a JSONDecodeError has a `msg`: nesting too deep raises RecursionError and a number
    over Python's 4,300-digit limit a plain ValueError, and both get a message of their own.
    """
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ProtocolError(ErrorCode.INVALID_JSON, f"not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise ProtocolError(ErrorCode.INVALID_JSON, "not valid JSON: nested too deeply") from None
    except ValueError:  # a number with too many digits, or bytes that are not UTF-8
        raise ProtocolError(ErrorCode.INVALID_JSON, "not valid JSON: unreadable value") from None


def check_audio(frame: bytes, sample_rate: int) -> bytes:
    """A binary frame of PCM16 mono at the session's rate: whole samples, up to a second."""
    if not frame:
        raise ProtocolError(ErrorCode.INVALID_AUDIO, "empty audio frame")
    if len(frame) % 2:
        raise ProtocolError(
            ErrorCode.INVALID_AUDIO, "audio frames are 16-bit samples: the byte count must be even"
        )
    longest = sample_rate * 2 * settings.AUDIO_MAX_FRAME_MS // 1000
    if len(frame) > longest:
        raise ProtocolError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"an audio frame holds at most {settings.AUDIO_MAX_FRAME_MS} ms "
            f"({longest} bytes at {sample_rate} Hz)",
        )
    return frame


def check_sample_rate(rate: object) -> int:
    """A supported sample rate as an int (16000.0 and true are not sample rates)."""
    if type(rate) is not int or rate not in SUPPORTED_SAMPLE_RATES:
        raise ProtocolError(
            ErrorCode.INVALID_EVENT,
            f"'sample_rate' must be one of {', '.join(map(str, SUPPORTED_SAMPLE_RATES))}",
        )
    return rate


def _parse_config(data: dict) -> ConfigMessage:
    return ConfigMessage(sample_rate=check_sample_rate(data.get("sample_rate", 16000)))


def _parse_text(data: dict) -> TextMessage:
    text = data.get("text")
    final = data.get("final", True)
    if not isinstance(text, str):
        raise ProtocolError(ErrorCode.INVALID_EVENT, "'text' must be a string")
    if not isinstance(final, bool):
        raise ProtocolError(ErrorCode.INVALID_EVENT, "'final' must be true or false")
    if len(text) > settings.MAX_UTTERANCE_CHARS:
        raise ProtocolError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"'text' is longer than {settings.MAX_UTTERANCE_CHARS} characters",
        )
    if final and not text.strip():
        raise ProtocolError(ErrorCode.INVALID_EVENT, "a final 'text' must not be empty")
    return TextMessage(text=clean_text(text.strip()), final=final)


_PARSERS = {
    "config": _parse_config,
    "text": _parse_text,
    "interrupt": lambda data: InterruptMessage(),
    "end": lambda data: EndMessage(),
}
