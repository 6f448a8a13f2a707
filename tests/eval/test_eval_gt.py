"""MOTChallenge gt parsing: scaling, the conf flag, 1-based frames, and malformed input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from kontur.eval.errors import EvalInputError, GroundTruthError
from kontur.eval.gt import load_gt, parse_gt, read_seq_length

GT = """\
1,1,100,50,20,40,1,-1,-1,-1
1,2,200,60,30,60,1,-1,-1,-1
2,1,104,50,20,40,1,-1,-1,-1
2,3,10,10,8,8,0,-1,-1,-1
4,2,210,60,30,60,1,-1,-1,-1
"""


def test_boxes_are_scaled_and_frames_stay_one_based() -> None:
    gt = parse_gt(GT, scale=0.5)
    assert gt.num_frames == 4
    ids, xywh = gt.at(0)  # decoded frame 0 is gt frame 1
    assert ids.tolist() == [1, 2]
    np.testing.assert_allclose(xywh, [[50, 25, 10, 20], [100, 30, 15, 30]])
    ids, xywh = gt.at(1)
    assert ids.tolist() == [1]
    np.testing.assert_allclose(xywh, [[52, 25, 10, 20]])
    assert gt.at(2)[0].size == 0  # gt frame 3 has no boxes
    assert gt.at(3)[0].tolist() == [2]


def test_rows_flagged_zero_are_dropped_as_in_mot15() -> None:
    gt = parse_gt(GT)
    assert 3 not in gt.ids.tolist()
    assert len(gt.frame) == 4 and gt.num_ids == 2


def test_mot16_keeps_only_pedestrians() -> None:
    text = "1,1,0,0,10,10,1,1,1.0\n1,2,0,0,10,10,1,7,1.0\n1,3,0,0,10,10,0,1,1.0\n"
    assert parse_gt(text, fmt="mot16").ids.tolist() == [1]
    # Under mot15 column 8 is a world coordinate, not a class.
    assert parse_gt(text, fmt="mot15").ids.tolist() == [1, 2]


def test_seq_length_beyond_the_last_box_counts() -> None:
    assert parse_gt(GT, num_frames=10).num_frames == 10


def test_head_keeps_the_first_frames() -> None:
    gt = parse_gt(GT).head(2)
    assert gt.num_frames == 2 and gt.frame.max() == 2


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1,1,100,50,20,40\n", "line 1: expected at least 7 comma-separated numbers"),
        ("1,1,100,50,20,40,1\n2,x,1,1,1,1,1\n", "line 2: expected at least 7 comma-separated"),
        ("0,1,100,50,20,40,1\n", "line 1: expected a 1-based integer frame, got '0'"),
        ("1.5,1,100,50,20,40,1\n", "expected a 1-based integer frame, got '1.5'"),
        ("1,1.5,100,50,20,40,1\n", "expected an integer id, got '1.5'"),
        ("1,1,100,50,0,40,1\n", "expected a positive width and height, got 0x40"),
        ("1,1,1,1,5,5,1\n1,1,2,2,5,5,1\n", "line 2: expected id 1 once in frame 1, got twice"),
        ("1,1,1,1,5,5,0\n", "expected at least one kept gt box, got none"),
    ],
    ids=["too_few_fields", "not_a_number", "frame_zero", "fractional_frame",
         "fractional_id", "zero_width", "duplicate_id", "nothing_kept"],
)  # fmt: skip
def test_malformed_gt_is_refused_with_the_line(text: str, fragment: str) -> None:
    with pytest.raises(GroundTruthError) as exc:
        parse_gt(text, source="gt.txt")
    assert fragment in str(exc.value)
    assert str(exc.value).startswith("gt.txt")


def test_frame_beyond_seq_length_is_refused() -> None:
    with pytest.raises(GroundTruthError, match=r"line 5: expected a frame in 1\.\.3 .*got 4"):
        parse_gt(GT, num_frames=3)


def test_bad_scale_is_refused() -> None:
    with pytest.raises(GroundTruthError, match="expected a positive --scale, got 0"):
        parse_gt(GT, scale=0)


def test_missing_gt_file(tmp_path: Path) -> None:
    with pytest.raises(EvalInputError, match=r"expected a MOTChallenge gt\.txt, found nothing"):
        load_gt(tmp_path / "nope.txt")


def test_seqinfo_beside_gt_sets_the_length(tmp_path: Path) -> None:
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "gt.txt").write_text(GT)
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nname=x\nseqLength=7\n")
    assert load_gt(tmp_path / "gt" / "gt.txt").num_frames == 7
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nname=x\n")
    with pytest.raises(GroundTruthError, match=r"expected a \[Sequence\] section with seqLength"):
        load_gt(tmp_path / "gt" / "gt.txt")


def test_real_pets09_gt(shared_file: Callable[[str], Path]) -> None:
    path = shared_file("mot15/PETS09-S2L1/gt/gt.txt")
    assert read_seq_length(path.parent.parent / "seqinfo.ini") == 795
    gt = load_gt(path, scale=0.625)
    assert gt.num_frames == 795 and gt.num_ids == 19
    assert len(gt.frame) == 4650 - 174  # 174 rows carry the conf flag 0
    first_ids, first = gt.at(0)
    assert {9, 15, 19} <= set(first_ids.tolist())
    # "1,9,499,158,31.03,75.17,1,..." in 768x576 → 480x360 pixels
    row = first[first_ids.tolist().index(9)]
    np.testing.assert_allclose(row, [499 * 0.625, 158 * 0.625, 31.03 * 0.625, 75.17 * 0.625])


def test_real_tud_campus_gt(shared_file: Callable[[str], Path]) -> None:
    gt = load_gt(shared_file("mot15/TUD-Campus/gt/gt.txt"))
    assert gt.num_frames == 71 and gt.num_ids == 8 and len(gt.frame) == 359
