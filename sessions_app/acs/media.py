"""The ACS media-streaming protocol: typed inbound messages, and the outbound ones we send.

No released azure-communication-callautomation parses these frames, so this module does.
Inbound frames are camelCase JSON; outbound ones PascalCase (../shared/ACS.md). A frame that
does not parse raises MediaFormatError, naming what was wrong but never echoing its content
(it may hold audio or a transcript).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from sessions_app.text import clean_text

TICKS_PER_MS = 10_000  # ACS offsets and durations count 100 ns ticks
DTMF_TONES = frozenset("0123456789*#ABCD")


class MediaFormatError(ValueError):
    """An inbound media frame is not one this server understands."""


@dataclass(frozen=True)
class AudioMetadata:
    encoding: str
    sample_rate: int
    channels: int
    length: int  # bytes per AudioData frame


@dataclass(frozen=True)
class AudioChunk:
    pcm: bytes  # empty when ACS marks the frame silent and sends no data
    silent: bool


@dataclass(frozen=True)
class DtmfTone:
    tone: str


@dataclass(frozen=True)
class Transcription:
    text: str
    final: bool
    confidence: float | None
    start_ms: int | None
    end_ms: int | None


MediaMessage = AudioMetadata | AudioChunk | DtmfTone | Transcription


def parse_media_message(text: str) -> MediaMessage:
    """One inbound frame → its typed message; raises MediaFormatError."""
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError) as exc:  # bad JSON, too deep, too long a number
        raise MediaFormatError("the frame is not JSON") from exc
    if not isinstance(frame, dict):
        raise MediaFormatError("the frame is not a JSON object")
    kind = frame.get("kind")
    parse = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parse is None:
        raise MediaFormatError(f"unknown kind {_shown(kind)}")
    body = frame.get(kind[0].lower() + kind[1:])
    if not isinstance(body, dict):
        raise MediaFormatError(f"{kind} has no {kind[0].lower() + kind[1:]} object")
    return parse(body)


def _shown(value: object) -> str:
    return repr(value)[:40] if isinstance(value, str) else type(value).__name__


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise MediaFormatError(f"'{name}' is missing or of the wrong type")
    return value


def _audio_metadata(body: dict[str, Any]) -> AudioMetadata:
    return AudioMetadata(
        encoding=_field(body, "encoding", str),
        sample_rate=_field(body, "sampleRate", int),
        channels=_field(body, "channels", int),
        length=_field(body, "length", int),
    )


def _audio_data(body: dict[str, Any]) -> AudioChunk:
    silent = body.get("silent", False)
    if not isinstance(silent, bool):
        raise MediaFormatError("'silent' must be true or false")
    data = body.get("data")
    if data is None and silent:
        return AudioChunk(pcm=b"", silent=True)
    if not isinstance(data, str):
        raise MediaFormatError("'data' is missing or of the wrong type")
    try:
        pcm = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MediaFormatError("'data' is not base64") from exc
    return AudioChunk(pcm=pcm, silent=silent)


def _dtmf_data(body: dict[str, Any]) -> DtmfTone:
    tone = _field(body, "data", str)
    if tone not in DTMF_TONES:
        raise MediaFormatError("'data' is not a DTMF tone")
    return DtmfTone(tone)


def _transcription_data(body: dict[str, Any]) -> Transcription:
    status = _field(body, "resultStatus", str).lower()  # "Final", "final", "Intermediate"
    if status not in ("final", "intermediate"):
        raise MediaFormatError("'resultStatus' is neither Final nor Intermediate")
    confidence = body.get("confidence")
    offset, duration = body.get("offset"), body.get("duration")
    timed = all(type(value) is int and value >= 0 for value in (offset, duration))
    return Transcription(
        text=clean_text(_field(body, "text", str)),
        final=status == "final",
        confidence=float(confidence) if type(confidence) in (int, float) else None,
        start_ms=offset // TICKS_PER_MS if timed else None,
        end_ms=(offset + duration) // TICKS_PER_MS if timed else None,
    )


_PARSERS = {
    "AudioMetadata": _audio_metadata,
    "AudioData": _audio_data,
    "DtmfData": _dtmf_data,
    "TranscriptionData": _transcription_data,
}


_AUDIO_DATA_HEAD = '{"Kind": "AudioData", "AudioData": {"Data": "'
_AUDIO_DATA_TAIL = '"}, "StopAudio": null}'


def audio_data_frame(pcm: bytes) -> str:
    """Agent audio for ACS to play: PCM16 mono at the negotiated rate. Built by hand, 50 times
    a second a call: base64 needs no JSON escaping, so the frame is `json.dumps`'s text."""
    return _AUDIO_DATA_HEAD + base64.b64encode(pcm).decode("ascii") + _AUDIO_DATA_TAIL


STOP_AUDIO_FRAME = json.dumps({"Kind": "StopAudio", "AudioData": None, "StopAudio": {}})
