"""GopChecker, Verdict severity and GopVerdict: the pure per-GOP checks of ingest.

The vectors in ``vectors/gop_checks.json`` are named after what happened to the stream
(frames dropped, reordered, damaged, profile swapped). Until Media Signing lands every GOP
carries the UNSIGNED finding, and UNSIGNED outranks MISSING in ``SEVERITY``, so a GOP with
lost frames reports UNSIGNED as its verdict and keeps "frame(s) missing" among its reasons.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from kontur.config import Profile
from kontur.ingest.checks import GopChecker, StreamInfo
from kontur.ingest.verdict import SEVERITY, GopVerdict, Verdict, most_severe

_VECTORS = json.loads((Path(__file__).parent / "vectors" / "gop_checks.json").read_text())
PROFILE = Profile(**_VECTORS["profile"])
GOOD = StreamInfo(codec="h264", width=480, height=360, fps=10.0)


def _run(checker: GopChecker, info: StreamInfo, frames: list[tuple[float, bool]]) -> GopVerdict:
    checker.begin(info)
    for pts, decoded in frames:
        checker.frame(pts, decoded)
    return checker.close()


@pytest.mark.parametrize("vector", _VECTORS["vectors"], ids=lambda v: v["name"])
def test_gop_vector(vector: dict[str, Any]) -> None:
    checker = GopChecker("cam-1", PROFILE)
    result = _run(checker, StreamInfo(**vector["info"]), [tuple(f) for f in vector["frames"]])
    assert result.verdict is Verdict(vector["verdict"])
    assert result.camera_id == "cam-1"
    assert result.gop_index == 0
    for fragment in vector["reasons"]:
        assert any(fragment in r for r in result.reasons), (fragment, result.reasons)


def test_clean_gop_has_exactly_the_unsigned_reason() -> None:
    result = _run(GopChecker("cam-1", PROFILE), GOOD, [(0.0, True), (0.1, True), (0.2, True)])
    assert result.verdict is Verdict.UNSIGNED
    assert not result.verdict.trusted
    assert len(result.reasons) == 1
    assert "source carries no signature" in result.reasons[0]


def test_gap_counts_the_lost_frames_and_names_the_expected_time() -> None:
    result = _run(GopChecker("cam-1", PROFILE), GOOD, [(0.0, True), (0.1, True), (0.5, True)])
    (gap,) = [r for r in result.reasons if "missing" in r]
    assert gap == "expected the next frame at 0.200 s, got 0.500 s (about 3 frame(s) missing)"


def test_jitter_below_one_and_a_half_periods_is_not_a_gap() -> None:
    result = _run(GopChecker("cam-1", PROFILE), GOOD, [(0.0, True), (0.14, True), (0.28, True)])
    assert result.reasons == ("source carries no signature (no Media Signing SEI)",)


def test_small_fps_drift_within_one_percent_is_not_a_profile_change() -> None:
    drift = StreamInfo(codec="h264", width=480, height=360, fps=10.05)
    result = _run(GopChecker("cam-1", PROFILE), drift, [(0.0, True)])
    assert result.verdict is Verdict.UNSIGNED
    assert not any("fps" in r for r in result.reasons)


def test_most_severe_wins_and_its_reasons_come_first() -> None:
    bad = StreamInfo(codec="mpeg4", width=640, height=360, fps=10.0)
    result = _run(GopChecker("cam-1", PROFILE), bad, [(0.0, True), (0.1, False)])
    assert result.verdict is Verdict.NOT_AUTHENTIC
    assert result.reasons[0] == "frame at 0.100 s does not decode (damaged bitstream)"
    assert set(result.reasons[1:]) == {
        "source carries no signature (no Media Signing SEI)",
        "expected codec h264, got mpeg4",
        "expected resolution 480x360, got 640x360",
    }


def test_gap_across_gop_boundary_is_missing_in_the_second_gop() -> None:
    checker = GopChecker("cam-1", PROFILE)
    first = _run(checker, GOOD, [(0.0, True), (0.1, True)])
    second = _run(checker, GOOD, [(0.6, True), (0.7, True)])
    assert (first.gop_index, second.gop_index) == (0, 1)
    assert not any("missing" in r for r in first.reasons)
    assert any("about 4 frame(s) missing" in r for r in second.reasons)


def test_gop_replayed_after_a_later_one_is_reordered() -> None:
    checker = GopChecker("cam-1", PROFILE)
    _run(checker, GOOD, [(1.0, True), (1.1, True)])
    replayed = _run(checker, GOOD, [(0.0, True), (0.1, True)])
    assert replayed.verdict is Verdict.NOT_AUTHENTIC
    assert "expected a timestamp after 1.100 s, got 0.000 s (reordered)" in replayed.reasons


def test_begin_twice_is_a_caller_bug() -> None:
    checker = GopChecker("cam-1", PROFILE)
    checker.begin(GOOD)
    with pytest.raises(RuntimeError, match="begin\\(\\) called while a GOP is open"):
        checker.begin(GOOD)


def test_frame_before_begin_is_a_caller_bug() -> None:
    with pytest.raises(RuntimeError, match="frame\\(\\) called with no open GOP"):
        GopChecker("cam-1", PROFILE).frame(0.0, True)


def test_close_without_begin_is_a_caller_bug() -> None:
    checker = GopChecker("cam-1", PROFILE)
    _run(checker, GOOD, [(0.0, True)])
    with pytest.raises(RuntimeError, match="close\\(\\) called with no open GOP"):
        checker.close()


def test_most_severe_refuses_an_empty_list() -> None:
    with pytest.raises(ValueError, match="expected at least one verdict, got none"):
        most_severe([])


def test_severity_order_covers_every_verdict_once() -> None:
    assert sorted(SEVERITY) == sorted(Verdict)
    assert len(SEVERITY) == len(set(SEVERITY))
    assert most_severe([Verdict.AUTHENTIC, Verdict.MISSING, Verdict.UNSIGNED]) is Verdict.UNSIGNED
    assert most_severe((Verdict.STALE, Verdict.NOT_AUTHENTIC)) is Verdict.NOT_AUTHENTIC


def test_only_authentic_is_trusted() -> None:
    assert [v for v in Verdict if v.trusted] == [Verdict.AUTHENTIC]


def test_gop_verdict_refuses_empty_reasons() -> None:
    with pytest.raises(ValidationError, match="expected at least one reason, got none"):
        GopVerdict(camera_id="cam-1", gop_index=0, verdict=Verdict.AUTHENTIC, reasons=())


def test_gop_verdict_is_frozen_and_refuses_extra_fields() -> None:
    v = GopVerdict(camera_id="cam-1", gop_index=0, verdict=Verdict.UNSIGNED, reasons=("x",))
    with pytest.raises(ValidationError, match="frozen"):
        v.verdict = Verdict.AUTHENTIC  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        GopVerdict(
            camera_id="c", gop_index=0, verdict=Verdict.UNSIGNED, reasons=("x",), trusted=True
        )


def test_cause_verdicts_outrank_the_broken_content_they_explain() -> None:
    # ADR 0012: a spliced GOP signed with a foreign key also breaks the chain; the headline must
    # name the key change, a duplicated GOP the replay, stripped signatures the downgrade.
    assert most_severe((Verdict.NOT_AUTHENTIC, Verdict.KEY_CHANGED)) is Verdict.KEY_CHANGED
    assert most_severe((Verdict.NOT_AUTHENTIC, Verdict.REPLAYED)) is Verdict.REPLAYED
    assert most_severe((Verdict.NOT_AUTHENTIC, Verdict.DOWNGRADE)) is Verdict.DOWNGRADE
    assert most_severe((Verdict.KEY_CHANGED, Verdict.REVOKED)) is Verdict.REVOKED
    assert most_severe((Verdict.PROFILE_CHANGED, Verdict.NOT_AUTHENTIC)) is Verdict.NOT_AUTHENTIC


def test_resync_after_a_gop_not_decoded_reports_no_gap() -> None:
    checker = GopChecker("cam-1", PROFILE)
    _run(checker, GOOD, [(0.0, True), (0.1, True)])
    checker.resync()  # strict mode kept the next GOP (0.2 .. 2.1 s) from the decoder
    later = _run(checker, GOOD, [(2.2, True), (2.3, True)])
    assert not any("missing" in r for r in later.reasons)
    c2 = GopChecker("cam-1", PROFILE)  # without resync the same gap is reported
    _run(c2, GOOD, [(0.0, True), (0.1, True)])
    assert any("missing" in r for r in _run(c2, GOOD, [(2.2, True)]).reasons)


def test_a_run_of_frames_that_do_not_decode_is_one_reason() -> None:
    """A decoder lost mid-GOP leaves every later frame of it undecoded: one reason per run,
    not hundreds."""
    frames = [(0.0, True), (0.1, False), (0.2, False), (0.3, False), (0.4, True), (0.5, False)]
    result = _run(GopChecker("cam-1", PROFILE), GOOD, frames)
    assert result.verdict is Verdict.NOT_AUTHENTIC
    undecoded = [r for r in result.reasons if "decode" in r]
    assert undecoded == [
        "3 frames from 0.100 s to 0.300 s do not decode (damaged bitstream)",
        "frame at 0.500 s does not decode (damaged bitstream)",
    ]
