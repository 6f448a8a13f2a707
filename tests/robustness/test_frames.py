"""The audit's frames: even picking over the clip, gt boxes lined up, and the inputs refused."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from tests.conftest import shared

from kontur.eval.errors import EvalInputError, FrameCountError, GroundTruthError, VideoDecodeError
from kontur.eval.gt import parse_gt
from kontur.robustness.errors import AuditFramesError
from kontur.robustness.frames import AuditFrame, clip_boxes, load_audit_frames, pick_frames


def _pets() -> tuple[Path, Path]:
    return (
        shared("video", "pets09_s2l1_480x360.avi"),
        shared("mot15", "PETS09-S2L1", "gt", "gt.txt"),
    )


def _tud() -> tuple[Path, Path]:
    return (
        shared("mot15", "TUD-Campus", "TUD-Campus.mp4"),
        shared("mot15", "TUD-Campus", "gt", "gt.txt"),
    )


def _gt_rows(gt: Path, frame: int, scale: float) -> np.ndarray:
    """Kept gt boxes of 1-based ``frame`` read straight from the text, as xyxy."""
    rows = np.loadtxt(gt, delimiter=",", ndmin=2)
    rows = rows[(rows[:, 0] == frame) & (rows[:, 6] != 0)]
    rows = rows[np.argsort(rows[:, 1])]
    xywh = rows[:, 2:6] * scale
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)


def test_pets09_frames_are_evenly_spaced_with_scaled_gt() -> None:
    video, gt = _pets()
    frames = load_audit_frames(video, gt, scale=0.625, count=6)
    assert [f.index for f in frames] == [0, 159, 318, 476, 635, 794]
    for f in frames:
        assert f.image.shape == (360, 480, 3) and f.image.dtype == np.uint8
        assert len(f.boxes) > 0
        assert (f.boxes[:, [0, 1]] >= 0).all()
        assert (f.boxes[:, 2] <= 480).all() and (f.boxes[:, 3] <= 360).all()
    # gt frame 160 is decoded frame 159; 768x576 gt coordinates times 0.625
    np.testing.assert_allclose(frames[1].boxes, clip_boxes(_gt_rows(gt, 160, 0.625), 480, 360))


def test_tud_all_frames_when_count_exceeds_the_clip() -> None:
    video, gt = _tud()
    frames = load_audit_frames(video, gt, count=500)
    assert [f.index for f in frames] == list(range(71))
    assert frames[0].image.shape == (480, 640, 3)
    np.testing.assert_allclose(frames[10].boxes, clip_boxes(_gt_rows(gt, 11, 1.0), 640, 480))


def test_min_persons_keeps_only_crowded_frames() -> None:
    video, gt = _tud()
    rows = np.loadtxt(gt, delimiter=",", ndmin=2)
    per_frame = np.bincount(rows[rows[:, 6] != 0, 0].astype(int) - 1, minlength=71)
    crowded = np.flatnonzero(per_frame >= 6)
    assert 0 < len(crowded) < 71
    frames = load_audit_frames(video, gt, count=500, min_persons=6)
    assert [f.index for f in frames] == crowded.tolist()
    assert all(len(_gt_rows(gt, f.index + 1, 1.0)) >= 6 for f in frames)


def test_pick_frames_spreads_over_eligible_frames() -> None:
    text = (
        "\n".join(f"{f},1,10,10,5,5,1" for f in range(1, 11)) + "\n5,2,30,30,5,5,1\n9,2,1,1,5,5,1"
    )
    gt = parse_gt(text)
    assert pick_frames(gt, count=3).tolist() == [0, 4, 9]
    assert pick_frames(gt, count=3, min_persons=2).tolist() == [4, 8]
    with pytest.raises(
        AuditFramesError, match="expected a frame with at least 3 gt persons, got at most 2"
    ):
        pick_frames(gt, count=3, min_persons=3)
    with pytest.raises(AuditFramesError, match="expected at least 1 frame, got 0"):
        pick_frames(gt, count=0)


def test_clip_boxes_clips_to_the_picture_and_drops_slivers() -> None:
    boxes = np.array([[-10, 5, 20, 40], [95, 0, 130, 10], [99, 0, 110, 10], [10, 10, 11, 30]])
    out = clip_boxes(boxes, 100, 50)
    np.testing.assert_allclose(out, [[0, 5, 20, 40], [95, 0, 100, 10]])


def test_audit_frame_refuses_a_bad_image() -> None:
    with pytest.raises(ValueError, match="expected a BGR uint8"):
        AuditFrame(0, np.zeros((4, 4), np.uint8), np.zeros((0, 4)))
    with pytest.raises(ValueError, match=r"expected \(n, 4\) boxes"):
        AuditFrame(0, np.zeros((4, 4, 3), np.uint8), np.zeros((2, 5)))


def test_missing_files_are_input_errors(tmp_path: Path) -> None:
    video, gt = _tud()
    with pytest.raises(EvalInputError, match=r"expected a MOTChallenge gt\.txt, found nothing"):
        load_audit_frames(video, tmp_path / "gt.txt")
    with pytest.raises(EvalInputError, match="expected a video file, found nothing"):
        load_audit_frames(tmp_path / "nope.mp4", gt)


def test_undecodable_video(tmp_path: Path) -> None:
    _, gt = _tud()
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(VideoDecodeError, match="expected a video"):
        load_audit_frames(junk, gt)


def test_gt_of_another_clip_is_a_frame_count_error() -> None:
    video, _ = _pets()
    _, gt = _tud()
    with pytest.raises(FrameCountError, match=r"expected 71 frames .* got 795 in the container"):
        load_audit_frames(video, gt)


def test_decoded_frames_are_counted_when_the_header_does_not_say(tmp_path: Path) -> None:
    raw = tmp_path / "five.h264"  # an elementary stream: no frame count in any header
    with av.open(str(raw), "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="bgr24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    gt = tmp_path / "gt.txt"
    gt.write_text("".join(f"{f},1,10,10,8,8,1\n" for f in range(1, 7)))
    with pytest.raises(FrameCountError, match=r"expected 6 frames .* decoded 5"):
        load_audit_frames(raw, gt)
    gt.write_text("".join(f"{f},1,10,10,8,8,1\n" for f in range(1, 6)))
    assert len(load_audit_frames(raw, gt)) == 5


def test_wrong_scale_is_caught() -> None:
    video, gt = _tud()
    with pytest.raises(GroundTruthError, match=r"check --scale, now 2\).*outside"):
        load_audit_frames(video, gt, scale=2.0)
