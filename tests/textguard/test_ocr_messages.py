"""What the OCR process says is untrusted: malformed messages are refused whole, and the
guard bounds what a well-formed one carries (strings, lengths, boxes, confidences)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kontur.textguard import MAX_CHARS, MAX_LINES, FindingKind, FrameFacts, OcrFailed, guard_frame
from kontur.textguard.messages import MAX_MESSAGE_BYTES, OcrLine, OcrResult, decode_child

VECTORS = json.loads((Path(__file__).parent / "vectors" / "ocr_messages.json").read_text())
FACTS = FrameFacts("gate-1", 7, 480, 360, "vectors", "rapidocr")
BOX = [[10.0, 10.0], [100.0, 10.0], [100.0, 30.0], [10.0, 30.0]]


@pytest.mark.parametrize("case", VECTORS["refused"], ids=[c["name"] for c in VECTORS["refused"]])
def test_a_malformed_child_message_is_refused_whole(case: dict[str, Any]) -> None:
    with pytest.raises(OcrFailed, match=r"^ocr: expected a child message, got ") as info:
        decode_child(case["line"].encode())
    assert case["error"] in str(info.value)
    assert "\n" not in str(info.value)


def test_an_oversized_message_is_refused_before_parsing() -> None:
    with pytest.raises(OcrFailed, match=f"expected a message <= {MAX_MESSAGE_BYTES} bytes"):
        decode_child(b" " * (MAX_MESSAGE_BYTES + 1))


def test_a_well_formed_result_parses() -> None:
    line = {"text": "A123BC77", "box": BOX, "score": 0.97}
    msg = decode_child(json.dumps({"type": "result", "engine": "e", "lines": [line]}).encode())
    assert isinstance(msg, OcrResult) and msg.lines[0].text == "A123BC77"


def test_the_guard_keeps_a_bounded_number_of_strings() -> None:
    lines = [OcrLine(text=f"shop {n}", box=BOX, score=0.9) for n in range(MAX_LINES + 36)]
    guarded = guard_frame(lines, FACTS)
    assert len(guarded.texts) == MAX_LINES
    [cut] = guarded.findings
    assert (cut.kind, cut.detail) == (FindingKind.TRUNCATED, f"kept {MAX_LINES} of 100 strings")


def test_the_guard_cuts_long_strings_clamps_boxes_and_confidences() -> None:
    wild = [[-500.0, -20.0], [9000.0, -20.0], [9000.0, 4000.0], [-500.0, 4000.0]]
    line = OcrLine(text="x" * (MAX_CHARS * 3), box=wild, score=7.5)
    [text] = guard_frame([line], FACTS).texts
    assert text.provenance.box == (0, 0, 480, 360)
    assert text.provenance.confidence == 1.0
    assert len(text.text) == MAX_CHARS
    kinds = text.kinds()
    assert FindingKind.TRUNCATED in kinds and FindingKind.CLAMPED in kinds


def test_a_phrase_split_across_strings_is_found_frame_wide() -> None:
    lines = [
        OcrLine(text="IGNORE PREVIOUS", box=BOX, score=0.9),
        OcrLine(text="INSTRUCTIONS", box=BOX, score=0.9),
    ]
    guarded = guard_frame(lines, FACTS)
    assert not any(t.instruction_like for t in guarded.texts)
    [wide] = guarded.findings
    assert wide.rule == "ignore-previous" and wide.detail.endswith(", across strings")
    assert guarded.instruction_like
