"""The verifier on real footage and real pedestrian tracks (../shared/data, DESIGN.md §5).

- PETS 2009 S2L1 (480×360, 10 fps) and TUD-Campus (640×480, 25 fps) are decoded with PyAV
  here in the test (never in kontur.verifier) and reduced with :func:`make_thumbnail`.
- Their MOTChallenge ground-truth tracks stand in for an ideal worker: real people walking,
  occluding each other, entering and leaving. The verifier must agree with all of it, and
  must still catch one of those real tracks when it is teleported.

pts are frame index / frame rate: PyAV reports B-frame-shuffled pts for the AVI container.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from verifier_sim import DATA, person, track_frame

from kontur.config import VerifierConfig
from kontur.verifier import Verifier, make_thumbnail
from kontur.wire import Finding, TrackedObject

PETS_VIDEO = DATA / "video" / "pets09_s2l1_480x360.avi"
PETS_GT = DATA / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
TUD_VIDEO = DATA / "mot15" / "TUD-Campus" / "TUD-Campus.mp4"
TUD_GT = DATA / "mot15" / "TUD-Campus" / "gt" / "gt.txt"
CAR_VIDEO = DATA / "video" / "car_traffic_640x360.mp4"

#: (video, ground truth, frame rate, scale from gt coordinates to the video's pixels)
CLIPS = {
    "pets09_s2l1": (PETS_VIDEO, PETS_GT, 10.0, 0.625),
    "tud_campus": (TUD_VIDEO, TUD_GT, 25.0, 1.0),
}


def _require(*paths: Path) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        pytest.skip(f"real test data not found (see ../shared/data/MANIFEST.md): {missing}")


@functools.cache
def thumbnails(video: Path, limit: int | None = None) -> tuple[np.ndarray, ...]:
    """The first ``limit`` frames of ``video`` (all when None) as 48×64 grey thumbnails."""
    av = pytest.importorskip("av")
    out = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            out.append(make_thumbnail(frame.to_ndarray(format="bgr24")))
            if limit is not None and len(out) >= limit:
                break
    return tuple(out)


def gt_tracks(path: Path, scale: float) -> dict[int, list[TrackedObject]]:
    """MOTChallenge gt (frame, id, x, y, w, h, ...) as tracked people per 0-based frame."""
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    frames: dict[int, list[TrackedObject]] = defaultdict(list)
    for f, tid, x, y, w, h in rows[:, :6]:
        xyxy = (x * scale, y * scale, (x + w) * scale, (y + h) * scale)
        frames[int(f) - 1].append(person(int(tid), xyxy, confidence=0.9))
    return frames


def run(
    thumbs: tuple[np.ndarray, ...], fps: float, tracks: dict[int, list[TrackedObject]]
) -> list[Finding]:
    verifier = Verifier(VerifierConfig())
    findings = []
    for i, thumb in enumerate(thumbs):
        verifier.observe_frame("cam-1", i, i / fps, thumb)
        findings.append(verifier.check(track_frame(i, i / fps, tracks.get(i, []))))
    return findings


def test_real_footage_is_not_called_frozen() -> None:
    _require(PETS_VIDEO)
    findings = run(thumbnails(PETS_VIDEO, 60), 10.0, {})
    assert [f.reasons for f in findings if not f.agree] == []


@pytest.mark.parametrize(
    ("video", "fps"), [(PETS_VIDEO, 10.0), (CAR_VIDEO, 30.0)], ids=["pets", "car"]
)
def test_whole_real_clips_are_neither_frozen_nor_looped(video: Path, fps: float) -> None:
    _require(video)
    findings = run(thumbnails(video), fps, {})
    assert len(findings) > 700
    assert [(f.frame_index, f.reasons) for f in findings if not f.agree] == []


def test_a_real_frame_shown_again_and_again_is_called_frozen() -> None:
    _require(PETS_VIDEO)
    live = thumbnails(PETS_VIDEO, 60)
    held = live[-1]
    findings = run((*live, *[held] * 50), 10.0, {})
    # Still since frame 59 (pts 5.9); frozen once more than 3 s have passed, at frame 90.
    assert all(f.agree for f in findings[:90])
    assert findings[90].reasons == ("scene frozen for 3.1 s (mean abs diff 0.00 < 0.5)",)
    assert not any(f.agree for f in findings[90:])


def test_real_footage_replayed_is_flagged_as_a_loop() -> None:
    _require(PETS_VIDEO)
    clip = thumbnails(PETS_VIDEO, 60)
    findings = run((*clip, *clip), 10.0, {})
    assert all(f.agree for f in findings[:60])
    assert findings[60].reasons == ("picture repeats frame 0 seen 60 frames ago (replay or loop)",)
    assert not any(f.agree for f in findings[60:])


@pytest.mark.parametrize("clip", list(CLIPS))
def test_real_pedestrian_tracks_agree_for_the_whole_clip(clip: str) -> None:
    video, gt, fps, scale = CLIPS[clip]
    _require(video, gt)
    findings = run(thumbnails(video), fps, gt_tracks(gt, scale))
    assert len(findings) > 70
    assert [(f.frame_index, f.reasons) for f in findings if not f.agree] == []


def test_a_real_track_teleported_is_caught_with_its_id() -> None:
    _require(PETS_VIDEO, PETS_GT)
    tracks = gt_tracks(PETS_GT, 0.625)
    victim = tracks[100][0]
    x1, y1, x2, y2 = victim.xyxy
    tracks[100][0] = victim.model_copy(update={"xyxy": (x1 + 200, y1, x2 + 200, y2)})
    findings = run(thumbnails(PETS_VIDEO), 10.0, tracks)
    bad = [f for f in findings if not f.agree]
    # the jump there, the jump back, and the speed measured 0.3 s across the jump
    assert [f.frame_index for f in bad] == [100, 101, 103]
    assert set(bad[0].track_reasons) == {victim.track_id}
    assert any("trajectory discontinuity" in r for r in bad[0].track_reasons[victim.track_id])
