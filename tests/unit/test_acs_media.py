"""The ACS media-streaming frames: every inbound kind parsed, every malformed one refused
without echoing its content, and the outbound frames exactly as ACS expects them."""

from __future__ import annotations

import base64
import json

import pytest

from sessions_app.acs.media import (
    STOP_AUDIO_FRAME,
    AudioChunk,
    AudioMetadata,
    DtmfTone,
    MediaFormatError,
    Transcription,
    audio_data_frame,
    parse_media_message,
)

PCM = bytes(range(256)) * 2 + bytes(128)  # 640 bytes: one 20 ms frame at 16 kHz
SECRET_TEXT = "my card number is four one one one"
SECRET_DATA = base64.b64encode(b"\x01\x02secret-audio\x03\x04").decode()


def frame(kind: str, body: object) -> str:
    return json.dumps({"kind": kind, kind[0].lower() + kind[1:]: body})


def transcription(**fields: object) -> str:
    body = {
        "text": "hello there",
        "format": "display",
        "confidence": 0.69,
        "offset": 12_500_000,
        "duration": 7_500_000,
        "words": [],
        "participantRawID": "4:+14255550123",
        "resultStatus": "Final",
    }
    body.update(fields)
    return frame("TranscriptionData", {k: v for k, v in body.items() if v is not ...})


# Inbound: what parses


def test_audio_metadata():
    text = frame(
        "AudioMetadata",
        {
            "subscriptionId": "89e8cb59-b991-48b0-b154-1db84f16a077",
            "encoding": "PCM",
            "sampleRate": 16000,
            "channels": 1,
            "length": 640,
        },
    )
    assert parse_media_message(text) == AudioMetadata(
        encoding="PCM", sample_rate=16000, channels=1, length=640
    )


def test_audio_data_decodes_the_pcm():
    text = frame(
        "AudioData",
        {
            "timestamp": "2024-11-15T19:16:12.925Z",
            "participantRawID": "8:acs:abc",
            "data": base64.b64encode(PCM).decode(),
            "silent": False,
        },
    )
    assert parse_media_message(text) == AudioChunk(pcm=PCM, silent=False)


def test_audio_data_without_silent_flag_is_not_silent():
    text = frame("AudioData", {"data": base64.b64encode(PCM).decode()})
    assert parse_media_message(text) == AudioChunk(pcm=PCM, silent=False)


def test_silent_audio_data_without_data_is_empty():
    text = frame("AudioData", {"timestamp": "2024-11-15T19:16:12.925Z", "silent": True})
    assert parse_media_message(text) == AudioChunk(pcm=b"", silent=True)


def test_silent_audio_data_with_null_data_is_empty():
    text = frame("AudioData", {"data": None, "silent": True})
    assert parse_media_message(text) == AudioChunk(pcm=b"", silent=True)


def test_silent_audio_data_with_data_keeps_it():
    zeros = bytes(640)
    text = frame("AudioData", {"data": base64.b64encode(zeros).decode(), "silent": True})
    assert parse_media_message(text) == AudioChunk(pcm=zeros, silent=True)


@pytest.mark.parametrize(
    "tone",
    [*"0123456789", "*", "#", *"ABCD"],
    ids=lambda tone: f"tone-{tone}",
)
def test_dtmf_tones(tone):
    assert parse_media_message(frame("DtmfData", {"data": tone})) == DtmfTone(tone)


@pytest.mark.parametrize(
    ("status", "final"),
    [
        ("Final", True),
        ("final", True),
        ("FINAL", True),
        ("Intermediate", False),
        ("intermediate", False),
        ("INTERMEDIATE", False),
    ],
    ids=["Final", "final", "FINAL", "Intermediate", "intermediate", "INTERMEDIATE"],
)
def test_transcription_status_is_case_insensitive(status, final):
    message = parse_media_message(transcription(resultStatus=status))
    assert isinstance(message, Transcription)
    assert message.final is final
    assert message.text == "hello there"


def test_transcription_ticks_become_milliseconds():
    # 1.25 s offset, 0.75 s duration, in 100 ns ticks
    message = parse_media_message(transcription(offset=12_500_000, duration=7_500_000))
    assert message == Transcription(
        text="hello there", final=True, confidence=0.69, start_ms=1250, end_ms=2000
    )


def test_transcription_ticks_round_down_to_whole_milliseconds():
    message = parse_media_message(transcription(offset=19_999, duration=1))
    assert (message.start_ms, message.end_ms) == (1, 2)


def test_transcription_at_offset_zero_is_timed():
    message = parse_media_message(transcription(offset=0, duration=0))
    assert (message.start_ms, message.end_ms) == (0, 0)


@pytest.mark.parametrize(
    "fields",
    [
        {"offset": ...},
        {"duration": ...},
        {"offset": ..., "duration": ...},
        {"offset": None},
        {"duration": None},
        {"offset": 1.5e7},
        {"offset": "12500000"},
        {"duration": True},
        {"offset": -1},
        {"duration": -10_000},
    ],
    ids=[
        "no-offset",
        "no-duration",
        "neither",
        "null-offset",
        "null-duration",
        "float-offset",
        "string-offset",
        "bool-duration",
        "negative-offset",
        "negative-duration",
    ],
)
def test_transcription_without_usable_timing_has_none(fields):
    message = parse_media_message(transcription(**fields))
    assert isinstance(message, Transcription)
    assert message.start_ms is None and message.end_ms is None
    assert message.text == "hello there"


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [
        (0.69, 0.69),
        (1, 1.0),
        (0, 0.0),
        (..., None),
        (None, None),
        ("0.9", None),
        (True, None),
    ],
    ids=["float", "int-one", "int-zero", "missing", "null", "string", "bool"],
)
def test_transcription_confidence(confidence, expected):
    message = parse_media_message(transcription(confidence=confidence))
    assert message.confidence == expected
    if expected is not None:
        assert type(message.confidence) is float


def test_transcription_may_be_empty_text():
    message = parse_media_message(transcription(text="", resultStatus="Intermediate"))
    assert message.text == "" and message.final is False


def test_unknown_fields_are_ignored():
    text = json.dumps(
        {"kind": "DtmfData", "dtmfData": {"data": "5", "extra": [1, 2]}, "other": {"x": 1}}
    )
    assert parse_media_message(text) == DtmfTone("5")


# Inbound: what is refused, and how


MALFORMED = {
    "empty": "",
    "not-json": "kind=AudioData",
    "truncated-json": '{"kind": "AudioData", "audioData": {"data": "AAAA"',
    "json-array": json.dumps([{"kind": "DtmfData", "dtmfData": {"data": "1"}}]),
    "json-string": json.dumps("DtmfData"),
    "json-number": "42",
    "json-null": "null",
    "no-kind": json.dumps({"dtmfData": {"data": "1"}}),
    "unknown-kind": json.dumps({"kind": "VideoData", "videoData": {}}),
    "empty-kind": json.dumps({"kind": "", "": {}}),
    "kind-case": json.dumps({"kind": "dtmfData", "dtmfData": {"data": "1"}}),
    "outbound-pascal-case": json.dumps({"Kind": "AudioData", "AudioData": {"Data": "AAAA"}}),
    "kind-number": json.dumps({"kind": 3, "dtmfData": {"data": "1"}}),
    "kind-list": json.dumps({"kind": ["DtmfData"], "dtmfData": {"data": "1"}}),
    "kind-null": json.dumps({"kind": None}),
    "missing-body": json.dumps({"kind": "DtmfData"}),
    "body-null": frame("DtmfData", None),
    "body-string": frame("DtmfData", "1"),
    "body-list": frame("DtmfData", ["1"]),
    "body-pascal-case": json.dumps({"kind": "DtmfData", "DtmfData": {"data": "1"}}),
    "metadata-missing-rate": frame(
        "AudioMetadata", {"encoding": "PCM", "channels": 1, "length": 640}
    ),
    "metadata-string-rate": frame(
        "AudioMetadata", {"encoding": "PCM", "sampleRate": "16000", "channels": 1, "length": 640}
    ),
    "metadata-float-rate": frame(
        "AudioMetadata", {"encoding": "PCM", "sampleRate": 16000.0, "channels": 1, "length": 640}
    ),
    "metadata-bool-channels": frame(
        "AudioMetadata", {"encoding": "PCM", "sampleRate": 16000, "channels": True, "length": 640}
    ),
    "metadata-bool-length": frame(
        "AudioMetadata", {"encoding": "PCM", "sampleRate": 16000, "channels": 1, "length": False}
    ),
    "metadata-null-encoding": frame(
        "AudioMetadata", {"encoding": None, "sampleRate": 16000, "channels": 1, "length": 640}
    ),
    "metadata-number-encoding": frame(
        "AudioMetadata", {"encoding": 1, "sampleRate": 16000, "channels": 1, "length": 640}
    ),
    "audio-no-data": frame("AudioData", {"silent": False}),
    "audio-no-data-no-flag": frame("AudioData", {"timestamp": "2024-11-15T19:16:12.925Z"}),
    "audio-null-data": frame("AudioData", {"data": None, "silent": False}),
    "audio-number-data": frame("AudioData", {"data": 12345, "silent": False}),
    "audio-list-data": frame("AudioData", {"data": [1, 2], "silent": False}),
    "audio-bad-base64": frame("AudioData", {"data": "not base64!!", "silent": False}),
    "audio-base64-bad-padding": frame("AudioData", {"data": "AAA", "silent": False}),
    "audio-base64-url-alphabet": frame("AudioData", {"data": "_-_-", "silent": False}),
    "audio-silent-string": frame("AudioData", {"data": SECRET_DATA, "silent": "false"}),
    "audio-silent-int": frame("AudioData", {"data": SECRET_DATA, "silent": 0}),
    "audio-silent-null": frame("AudioData", {"data": SECRET_DATA, "silent": None}),
    "dtmf-no-data": frame("DtmfData", {}),
    "dtmf-number": frame("DtmfData", {"data": 3}),
    "dtmf-two-tones": frame("DtmfData", {"data": "12"}),
    "dtmf-empty": frame("DtmfData", {"data": ""}),
    "dtmf-letter": frame("DtmfData", {"data": "E"}),
    "dtmf-lowercase": frame("DtmfData", {"data": "a"}),
    "dtmf-word": frame("DtmfData", {"data": "pound"}),
    "transcription-no-status": transcription(resultStatus=...),
    "transcription-null-status": transcription(resultStatus=None),
    "transcription-number-status": transcription(resultStatus=1),
    "transcription-unknown-status": transcription(resultStatus="Partial"),
    "transcription-padded-status": transcription(resultStatus=" Final"),
    "transcription-no-text": transcription(text=...),
    "transcription-null-text": transcription(text=None),
    "transcription-number-text": transcription(text=42),
    "transcription-list-text": transcription(text=["hello"]),
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_frames_are_refused(text):
    with pytest.raises(MediaFormatError) as caught:
        parse_media_message(text)
    assert str(caught.value)  # says what was wrong


@pytest.mark.parametrize(
    "text",
    [
        frame("AudioData", {"data": SECRET_DATA + "!", "silent": False}),
        frame("AudioData", {"data": SECRET_DATA, "silent": "yes"}),
        frame("AudioData", {"data": SECRET_DATA[:-1], "silent": False}),
        frame("DtmfData", {"data": SECRET_TEXT}),
        transcription(text=SECRET_TEXT, resultStatus="Unknown"),
        transcription(text=SECRET_TEXT, resultStatus=None),
        transcription(text=[SECRET_TEXT]),
        frame("AudioMetadata", {"encoding": SECRET_TEXT, "sampleRate": "16k"}),
        json.dumps({"kind": "TranscriptionData", "TranscriptionData": {"text": SECRET_TEXT}}),
        json.dumps({"kind": {"text": SECRET_TEXT}}),
        json.dumps([SECRET_TEXT, SECRET_DATA]),
        f'{{"kind": "TranscriptionData", "transcriptionData": {{"text": "{SECRET_TEXT}"',
        f"{SECRET_TEXT} {SECRET_DATA}",
    ],
    ids=[
        "bad-base64",
        "bad-silent",
        "truncated-base64",
        "bad-tone",
        "bad-status",
        "null-status",
        "text-not-string",
        "metadata-wrong-types",
        "body-wrong-case",
        "kind-object",
        "array",
        "truncated-json",
        "not-json",
    ],
)
def test_refusals_never_echo_the_payload(text):
    with pytest.raises(MediaFormatError) as caught:
        parse_media_message(text)
    message = str(caught.value)
    assert SECRET_TEXT not in message
    assert SECRET_DATA not in message
    assert SECRET_DATA[:8] not in message
    assert "four one one" not in message


def test_unknown_kind_is_named_but_cut_short():
    kind = "X" * 500
    with pytest.raises(MediaFormatError, match="unknown kind") as caught:
        parse_media_message(json.dumps({"kind": kind}))
    assert kind not in str(caught.value)
    assert len(str(caught.value)) < 100


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5000,
        '{"kind": ' * 2000,
        json.dumps({"kind": "DtmfData", "dtmfData": {"data": "1"}, "x": 0}).replace(
            '"x": 0', '"x": ' + "1" * 5000
        ),
        frame("AudioMetadata", {"encoding": "PCM", "channels": 1, "length": 640}).replace(
            '"length": 640', '"length": ' + "9" * 5000
        ),
    ],
    ids=["deeply-nested-array", "deeply-nested-object", "huge-int-elsewhere", "huge-int-field"],
)
def test_pathological_json_is_a_format_error(text):
    # A frame that the JSON decoder itself gives up on (Python's recursion limit, its
    # 4300-digit limit on int conversion) is as malformed as any other: it must not escape
    # as RecursionError or a bare ValueError, which the media consumer does not catch.
    with pytest.raises(MediaFormatError):
        parse_media_message(text)


def test_format_error_is_a_value_error():
    assert issubclass(MediaFormatError, ValueError)


# Outbound


def test_audio_data_frame_is_exactly_what_acs_expects():
    sent = json.loads(audio_data_frame(PCM))
    assert sent == {
        "Kind": "AudioData",
        "AudioData": {"Data": base64.b64encode(PCM).decode()},
        "StopAudio": None,
    }
    assert list(sent) == ["Kind", "AudioData", "StopAudio"]


@pytest.mark.parametrize(
    "pcm",
    [PCM, bytes(960), b"\xff\x7f\x00\x80", b""],
    ids=["16k-frame", "24k-silence", "extremes", "empty"],
)
def test_audio_data_frame_round_trips_the_pcm(pcm):
    sent = json.loads(audio_data_frame(pcm))
    assert base64.b64decode(sent["AudioData"]["Data"], validate=True) == pcm


def test_audio_data_frame_is_not_parsed_as_inbound():
    # Outbound frames are PascalCase: they must not be mistaken for ACS's camelCase ones.
    with pytest.raises(MediaFormatError):
        parse_media_message(audio_data_frame(PCM))


def test_stop_audio_frame_is_exactly_what_acs_expects():
    assert isinstance(STOP_AUDIO_FRAME, str)
    assert json.loads(STOP_AUDIO_FRAME) == {"Kind": "StopAudio", "AudioData": None, "StopAudio": {}}
    assert list(json.loads(STOP_AUDIO_FRAME)) == ["Kind", "AudioData", "StopAudio"]
