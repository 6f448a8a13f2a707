"""The message codec: every type round-trips, and anything else is a WireError."""

from __future__ import annotations

import json
import re

import pytest

from kontur.ingest.verdict import GopVerdict, Verdict
from kontur.wire import (
    AuditEvent,
    ControlMessage,
    Decision,
    DecoderEvent,
    DetectionBatch,
    Evidence,
    ExportRequest,
    Finding,
    FrameReady,
    FrameStamp,
    GopClosed,
    Outcome,
    ProtocolViolation,
    SegmentStored,
    SourceEnded,
    StateChanged,
    TrackedObject,
    TrackFrame,
    WireError,
    WorkerReady,
    decode,
    encode,
)
from kontur.wire.messages import MAX_MESSAGE_BYTES, IncidentRequest, OperatorVerdict, TamperAlarm

FRAME = FrameReady(
    camera_id="cam-1", seq=41, frame_index=40, pts_s=4.0, gop_index=1, slot=1, width=480, height=360
)
TRACKS = TrackFrame(
    camera_id="cam-1",
    frame_index=40,
    pts_s=4.0,
    model_id="sha256:" + "ab" * 32,
    config_id="cfg-1",
    platform="cpu",
    objects=(
        TrackedObject(
            track_id=3, class_id=0, class_name="person", confidence=0.9, xyxy=(1.0, 2.0, 30.5, 80)
        ),
    ),
    detections=2,
)
FINDING = Finding(
    camera_id="cam-1",
    frame_index=40,
    agree=False,
    reasons=("box jumped",),
    track_reasons={3: ("speed 40 m/s",)},
)
ALL = [
    FRAME,
    GopClosed(
        verdict=GopVerdict(
            camera_id="cam-1", gop_index=1, verdict=Verdict.UNSIGNED, reasons=("no sig",)
        ),
        first_frame=10,
        last_frame=19,
        start_pts_s=1.0,
        end_pts_s=1.9,
        segment_sha256="0" * 64,
        segment_size=1234,
        signature={"signed": True, "gop_counter": 2},
        decoded=False,
    ),
    SegmentStored(camera_id="cam-1", gop_index=1, segment_sha256="1" * 64, segment_size=99),
    SourceEnded(camera_id="cam-1", frames=795, gops=4, error=None),
    SourceEnded(camera_id="cam-1", frames=3, gops=1, error="truncated"),
    TRACKS,
    DetectionBatch(
        camera_id="cam-1",
        gop_index=1,
        model_id="m",
        config_id="c",
        platform="cpu",
        frames=10,
        detections=25,
        track_ids=(1, 3),
    ),
    WorkerReady(model_id="m", platform="cpu", detector="yolox-onnx"),
    FINDING,
    Evidence(
        frame=FrameStamp(camera_id="cam-1", frame_index=40, gop_index=1, pts_s=4.0),
        tracks=TRACKS,
        finding=FINDING,
    ),
    ProtocolViolation(
        sender="worker", receiver="verifier", message_type="decision", detail="not allowed"
    ),
    Decision(
        camera_id="cam-1",
        rule="door",
        action="open",
        critical=True,
        track_id=3,
        frame_index=40,
        outcome=Outcome.OPERATOR,
        reasons=("gop 1 is UNSIGNED",),
        gops=(1,),
        executed=None,
        at=1700000000.5,
    ),
    StateChanged(at=12.5, from_state="NORMAL", to_state="DEGRADED", trigger="latency"),
    TamperAlarm(
        camera_id="cam-1",
        transition="start",
        kind="covered",
        score=4.2,
        reason="83% of the textured view lost its texture and layout",
        start_s=3.2,
        at_s=4.2,
        first_frame=31,
        quality_ok=True,
    ),
    TamperAlarm(
        camera_id="cam-1",
        transition="end",
        kind="low_quality",
        score=1.0,
        reason="too dark: mean grey 12 < 25",
        start_s=3.2,
        end_s=9.0,
        at_s=9.0,
        first_frame=31,
        last_frame=89,
        quality_ok=True,
    ),
    DecoderEvent(camera_id="cam-1", kind="started", detail="start 1, pid 42", isolation="full"),
    DecoderEvent(camera_id="cam-1", kind="hung", detail="expected an answer within 10 s"),
    ControlMessage(command="analysis_stride", camera_id="cam-1", value=2),
    ControlMessage(command="stop"),
    AuditEvent(actor="ana", action="video:archive", outcome="ok", target="cam-1", at=5.0),
    OperatorVerdict(request_id="op-812", operator="ana", confirm=True, reason="seen", at=6.0),
    ExportRequest(
        request_id="0123456789abcdef" * 2,
        requested_by="ivy",
        camera="cam-1",
        from_at=1700000000.0,
        to_at=1700000060.0,
        at=7.0,
    ),
    IncidentRequest(
        request_id="0123456789abcdef" * 2,
        kind="preserve",
        by="ivy",
        reason="case 42",
        camera="cam-1",
        from_at=1700000000.0,
        to_at=1700000060.0,
        at=8.0,
    ),
]


def _frame_dict() -> dict[str, object]:
    return json.loads(encode(FRAME))


@pytest.mark.parametrize("msg", ALL, ids=lambda m: f"{type(m).__name__}")
def test_round_trip(msg: object) -> None:
    data = encode(msg)  # type: ignore[arg-type]
    assert b"\n" not in data  # one message, one line
    back = decode(data)
    assert type(back) is type(msg)
    assert back == msg


def test_every_message_type_is_covered() -> None:
    from kontur.wire import messages

    types = {
        cls
        for cls in vars(messages).values()
        if isinstance(cls, type) and issubclass(cls, messages._Msg) and "type" in cls.model_fields
    }
    assert types == {type(m) for m in ALL}


def test_extra_field_smuggled_in_is_refused() -> None:
    data = json.dumps({**_frame_dict(), "exec": "rm -rf /"}).encode()
    with pytest.raises(WireError, match=re.escape("malformed message at frame.exec: Extra inputs")):
        decode(data)


def test_nested_extra_field_is_refused() -> None:
    d = json.loads(encode(TRACKS))
    d["objects"][0]["hidden"] = 1
    with pytest.raises(WireError, match=re.escape("malformed message at tracks.objects.0.hidden")):
        decode(json.dumps(d).encode())


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("camera_id", 5, "frame.camera_id: Input should be a valid string"),
        ("seq", [1], "frame.seq: Input should be a valid integer"),
        ("seq", "forty", "frame.seq: Input should be a valid integer"),
        ("seq", -1, "frame.seq: Input should be greater than or equal to 0"),
        ("width", 100000, "frame.width: Input should be less than or equal to 8192"),
        ("analyse", "maybe", "frame.analyse: Input should be a valid boolean"),
    ],
)
def test_wrong_types_and_ranges_are_refused(field: str, value: object, fragment: str) -> None:
    with pytest.raises(WireError, match=fragment):
        decode(json.dumps({**_frame_dict(), field: value}).encode())


@pytest.mark.parametrize(("field", "value"), [("seq", "41"), ("analyse", "true"), ("seq", 41.0)])
def test_coercible_wrong_types_are_refused(field: str, value: object) -> None:
    with pytest.raises(WireError, match=f"malformed message at frame.{field}"):
        decode(json.dumps({**_frame_dict(), field: value}).encode())


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_numbers_are_refused(literal: bytes) -> None:
    data = encode(FRAME).replace(b'"pts_s":4.0', b'"pts_s":' + literal)
    assert literal in data
    with pytest.raises(WireError, match=re.escape("frame.pts_s: Input should be a finite number")):
        decode(data)


def test_oversize_message_is_refused_before_parsing() -> None:
    data = b"{" + b" " * MAX_MESSAGE_BYTES + b"}"
    with pytest.raises(WireError, match=f"at most {MAX_MESSAGE_BYTES} bytes, got {len(data)}"):
        decode(data)


def test_message_of_exactly_the_limit_is_parsed() -> None:
    data = encode(FRAME)
    padded = data[:-1] + b" " * (MAX_MESSAGE_BYTES - len(data)) + b"}"
    assert len(padded) == MAX_MESSAGE_BYTES
    assert decode(padded) == FRAME


def test_unknown_type_is_refused() -> None:
    with pytest.raises(WireError, match="Input tag 'pickle' found using 'type' does not match"):
        decode(json.dumps({**_frame_dict(), "type": "pickle"}).encode())


def test_missing_type_is_refused() -> None:
    d = _frame_dict()
    del d["type"]
    with pytest.raises(WireError, match="Unable to extract tag using discriminator 'type'"):
        decode(json.dumps(d).encode())


def test_not_json_is_refused() -> None:
    with pytest.raises(WireError, match="malformed message at <root>: Invalid JSON"):
        decode(b"\x80\x04\x95pickle")


def test_unknown_verdict_in_gop_closed_is_refused() -> None:
    d = json.loads(encode(ALL[1]))
    d["verdict"]["verdict"] = "TRUST_ME"
    with pytest.raises(WireError, match=re.escape("malformed message at gop.verdict.verdict")):
        decode(json.dumps(d).encode())


def test_confidence_out_of_range_is_refused() -> None:
    d = json.loads(encode(TRACKS))
    d["objects"][0]["confidence"] = 1.5
    with pytest.raises(
        WireError, match=re.escape("tracks.objects.0.confidence: Input should be less")
    ):
        decode(json.dumps(d).encode())


def test_a_class_mix_flood_from_the_worker_is_refused() -> None:
    """The worker's class mix is bounded at the wire: 256 names of 64 characters at most."""
    batch = {
        "type": "detection_batch", "camera_id": "cam-1", "gop_index": 0, "model_id": "m",
        "config_id": "c", "platform": "cpu", "frames": 1, "detections": 1, "track_ids": [],
    }  # fmt: skip
    assert decode(json.dumps({**batch, "classes": {"person": 2}}).encode()).classes == {  # type: ignore[union-attr]
        "person": 2
    }
    for classes in ({f"c{i}": 1 for i in range(257)}, {"x" * 65: 1}, {"person": -1}):
        with pytest.raises(WireError, match="malformed message"):
            decode(json.dumps({**batch, "classes": classes}).encode())
