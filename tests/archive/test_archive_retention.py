"""Retention and legal hold: tombstones, holds, shared bytes, crashes and the CLI (issue 10).

Every test works on a real archive on disk with real segment files; only the clock is manual.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from kontur.archive import (
    Archive,
    ArchiveCorrupt,
    ArchiveInputError,
    SegmentStore,
    verify_archive,
)
from kontur.archive.cli import archive_app
from kontur.archive.retention import (
    Hold,
    LogView,
    RetentionPolicy,
    apply_retention,
    format_time,
    parse_time,
    place_hold,
    plan_retention,
    release_hold,
)
from kontur.clock import ManualClock

DAY = 86400.0
WEEK = RetentionPolicy(default_days=7)


def gop(tag: str) -> bytes:
    """Distinct segment bytes for ``tag``."""
    return f"gop {tag} ".encode() * 300


def add_segment(arc: Archive, camera: str, gop_index: int, data: bytes | None = None) -> int:
    """Store a segment as the recorder does (SegmentStored's fields); its record index."""
    meta = {"type": "segment", "camera_id": camera, "gop_index": gop_index, "end_of_stream": False}
    return arc.append_segment(data or gop(f"{camera}/{gop_index}"), meta).index


def kinds(arc: Archive, kind: str) -> list[dict[str, object]]:
    return [r.payload for r in arc.iter_records() if r.kind == kind]


def sha_of(arc: Archive, index: int) -> str:
    if not arc.readonly:
        arc.flush()
    return str(next(arc.iter_records(index)).payload["sha256"])


# --- removal with tombstones ----------------------------------------------------------------------


def test_old_segments_are_removed_with_a_tombstone_each(data_dir: Path, clock: ManualClock) -> None:
    with Archive.open(data_dir, clock) as arc:
        old = [add_segment(arc, "cam-1", g) for g in range(3)]
        arc.append("verdict", {"camera_id": "cam-1", "gop_index": 0})
        clock.advance(10 * DAY)
        young = add_segment(arc, "cam-1", 3)
        report = apply_retention(arc, WEEK, clock.wall())
        stones = kinds(arc, "tombstone")
        shas = [sha_of(arc, i) for i in old]
        assert [r.segments for r in report.removed] == [(i,) for i in old]
        assert report.tombstones == 3 and report.ok and not report.dry_run
        assert [(t["segment_index"], t["sha256"]) for t in stones] == list(
            zip(old, shas, strict=True)
        )
        assert all(t["reason"] == "retention" and t["retention_days"] == 7 for t in stones)
        assert not any(arc.segments.path(s).exists() for s in shas)
        assert arc.segments.path(sha_of(arc, young)).exists()
    result = verify_archive(data_dir)
    assert result.ok, result.first_bad
    assert (result.segments, result.removed) == (4, 3)


def test_per_camera_days_override_the_default(data_dir: Path, clock: ManualClock) -> None:
    with Archive.open(data_dir, clock) as arc:
        add_segment(arc, "door", 0)
        lobby = add_segment(arc, "lobby", 0)
        clock.advance(10 * DAY)
        policy = RetentionPolicy(default_days=30, per_camera={"lobby": 7})
        report = apply_retention(arc, policy, clock.wall())
    assert [r.segments for r in report.removed] == [(lobby,)]
    assert verify_archive(data_dir).removed == 1


def test_a_dry_run_changes_nothing(data_dir: Path, clock: ManualClock) -> None:
    with Archive.open(data_dir, clock) as arc:
        idx = add_segment(arc, "cam-1", 0)
        clock.advance(10 * DAY)
        arc.flush()
        size = arc.records
        report = apply_retention(arc, WEEK, clock.wall(), dry_run=True)
        assert [r.segments for r in report.removed] == [(idx,)]
        assert report.tombstones == 0 and arc.records == size
        assert arc.segments.path(sha_of(arc, idx)).exists()


# --- legal hold -----------------------------------------------------------------------------------


def test_a_held_segment_survives_and_goes_after_release(data_dir: Path, clock: ManualClock) -> None:
    t0 = clock.wall()
    with Archive.open(data_dir, clock) as arc:
        first = add_segment(arc, "cam-1", 0)  # spans (-inf, t0]
        clock.advance(60)
        held = add_segment(arc, "cam-1", 1)  # spans (t0, t0+60]: holds what was filmed then
        clock.advance(60)
        after = add_segment(arc, "cam-1", 2)  # spans (t0+60, t0+120]
        other = add_segment(arc, "cam-2", 0)  # another camera, same time
        hold, _ = place_hold(arc, "cam-1", t0 + 30, t0 + 40, "case 17", "alice")
        clock.advance(10 * DAY)
        report = apply_retention(arc, WEEK, clock.wall())
        assert sorted(r.segments[0] for r in report.removed) == [first, after, other]
        assert (report.kept_by_hold, report.holds) == (1, 1)
        assert arc.segments.path(sha_of(arc, held)).exists()

        release_hold(arc, hold.index, "case closed", "bob")
        report = apply_retention(arc, WEEK, clock.wall())
        assert [r.segments for r in report.removed] == [(held,)]
        assert (report.kept_by_hold, report.holds) == (0, 0)
    result = verify_archive(data_dir)
    assert result.ok and result.removed == 4


def test_a_hold_covers_the_segment_stored_just_after_its_end(
    data_dir: Path, clock: ManualClock
) -> None:
    t0 = clock.wall()
    with Archive.open(data_dir, clock) as arc:
        add_segment(arc, "cam-1", 0)
        clock.advance(2)
        add_segment(arc, "cam-1", 1)  # holds the video of (t0, t0+2], stored at t0+2
        clock.advance(2)
        later = add_segment(arc, "cam-1", 2)  # (t0+2, t0+4]: after the hold
        place_hold(arc, "cam-1", t0 - 100, t0 + 1, "incident ended at t0+1", "alice")
        clock.advance(10 * DAY)
        report = apply_retention(arc, WEEK, clock.wall())
    assert [r.segments for r in report.removed] == [(later,)] and report.kept_by_hold == 2


def test_a_hold_placed_after_a_crashed_run_keeps_the_tombstoned_bytes(
    data_dir: Path, clock: ManualClock
) -> None:
    t0 = clock.wall()
    with Archive.open(data_dir, clock) as arc:
        idx = add_segment(arc, "cam-1", 0)
        sha = sha_of(arc, idx)
        clock.advance(10 * DAY)
        # the state a run killed between its tombstone commit and its unlink leaves behind
        arc.append("tombstone", {"segment_index": idx, "sha256": sha, "reason": "retention"})
        place_hold(arc, "cam-1", t0 - 1, t0, "late subpoena", "alice")
        report = apply_retention(arc, WEEK, clock.wall())
        assert report.removed == [] and arc.segments.path(sha).exists()
    assert verify_archive(data_dir).ok


def test_release_names_what_is_wrong_with_the_index(data_dir: Path, clock: ManualClock) -> None:
    with Archive.open(data_dir, clock) as arc:
        seg = add_segment(arc, "cam-1", 0)
        hold, _ = place_hold(arc, "cam-1", 0, 1, "case", "alice")
        release = release_hold(arc, hold.index, "done", "bob")[1]
        for index, why in [
            (hold.index, f"released by record {release.index}"),
            (seg, "not a hold record"),
            (99, "the archive holds records 0..2"),
        ]:
            with pytest.raises(
                ArchiveInputError, match="expected the index of an active hold"
            ) as e:
                release_hold(arc, index, "again", "bob")
            assert why in str(e.value)
        with pytest.raises(ArchiveInputError, match="reason: expected non-empty text"):
            release_hold(arc, hold.index, "  ", "bob")


def test_a_malformed_hold_record_stops_retention(data_dir: Path, clock: ManualClock) -> None:
    with Archive.open(data_dir, clock) as arc:
        idx = add_segment(arc, "cam-1", 0)
        arc.append("hold", {"camera": "cam-1", "reason": "no window", "by": "eve"})
        clock.advance(10 * DAY)
        with pytest.raises(ArchiveCorrupt, match=r"record 1: hold: from: expected a time"):
            apply_retention(arc, WEEK, clock.wall())
        assert arc.segments.path(sha_of(arc, idx)).exists() and kinds(arc, "tombstone") == []


# --- missing vs removed, shared bytes -------------------------------------------------------------


def test_a_segment_deleted_without_a_tombstone_is_still_reported_missing(
    data_dir: Path, clock: ManualClock
) -> None:
    with Archive.open(data_dir, clock) as arc:
        idx = add_segment(arc, "cam-1", 0)
        sha = sha_of(arc, idx)
        arc.segments.path(sha).unlink()  # deleted behind the archive's back
        clock.advance(10 * DAY)
        report = apply_retention(arc, WEEK, clock.wall())
        assert report.missing == [sha] and report.removed == [] and not report.ok
        assert kinds(arc, "tombstone") == []  # retention never launders a deletion
    result = verify_archive(data_dir)
    assert not result.ok and result.first_bad is not None
    assert result.first_bad.index == idx
    assert f"segment {sha[:12]}…: expected file segments/{sha[:2]}/{sha}, got none" in (
        result.first_bad.reason
    )


def test_shared_bytes_named_by_a_young_record_stay(data_dir: Path, clock: ManualClock) -> None:
    with Archive.open(data_dir, clock) as arc:
        old = add_segment(arc, "cam-1", 0, gop("still scene"))
        clock.advance(10 * DAY)
        young = add_segment(arc, "cam-1", 1, gop("still scene"))  # same bytes, deduplicated
        report = apply_retention(arc, WEEK, clock.wall())
        assert report.removed == [] and report.kept_shared == 1
        assert arc.segments.path(sha_of(arc, old)).exists()

        clock.advance(10 * DAY)
        report = apply_retention(arc, WEEK, clock.wall())
        assert [r.segments for r in report.removed] == [(old, young)]
        assert [t["segment_index"] for t in kinds(arc, "tombstone")] == [old, young]
    assert verify_archive(data_dir).removed == 2


# --- crashes --------------------------------------------------------------------------------------

_KILLED_RUN = """
import os, sys
from pathlib import Path
from kontur.archive import Archive, SegmentStore
from kontur.archive.retention import RetentionPolicy, apply_retention

where = sys.argv[3]
if where == "unlink":
    SegmentStore.remove = lambda self, sha: os._exit(9)
else:
    append = Archive.append
    def append_then_die(self, kind, payload):
        record = append(self, kind, payload)
        if kind == "tombstone":
            os._exit(9)
        return record
    Archive.append = append_then_die
with Archive.open(Path(sys.argv[1])) as arc:
    apply_retention(arc, RetentionPolicy(7), float(sys.argv[2]))
"""


def _killed_run(data_dir: Path, now: float, where: str) -> None:
    code = textwrap.dedent(_KILLED_RUN)
    run = subprocess.run(
        [sys.executable, "-c", code, str(data_dir), repr(now), where],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 9, run.stderr


def _three_old_segments(data_dir: Path, clock: ManualClock) -> list[str]:
    with Archive.open(data_dir, clock) as arc:
        shas = [sha_of(arc, add_segment(arc, "cam-1", g)) for g in range(3)]
    clock.advance(10 * DAY)
    return shas


def test_a_kill_between_tombstones_and_unlink_is_finished_by_the_next_run(
    data_dir: Path, clock: ManualClock
) -> None:
    shas = _three_old_segments(data_dir, clock)
    _killed_run(data_dir, clock.wall(), "unlink")
    result = verify_archive(data_dir)
    assert result.ok and (result.segments, result.removed) == (3, 0)
    with Archive.open(data_dir, clock) as arc:
        assert len(kinds(arc, "tombstone")) == 3
        assert all(arc.segments.path(s).exists() for s in shas)
        report = apply_retention(arc, WEEK, clock.wall())
        assert [r.resumed for r in report.removed] == [True] * 3 and report.tombstones == 0
        assert len(kinds(arc, "tombstone")) == 3
        assert not any(arc.segments.path(s).exists() for s in shas)
    result = verify_archive(data_dir)
    assert result.ok and result.removed == 3


def test_a_kill_before_the_tombstone_commit_removes_nothing(
    data_dir: Path, clock: ManualClock
) -> None:
    shas = _three_old_segments(data_dir, clock)
    _killed_run(data_dir, clock.wall(), "tombstone")
    result = verify_archive(data_dir)
    assert result.ok and (result.segments, result.removed) == (3, 0)
    with Archive.open(data_dir, clock) as arc:
        assert kinds(arc, "tombstone") == []
        assert all(arc.segments.path(s).exists() for s in shas)
        assert apply_retention(arc, WEEK, clock.wall()).tombstones == 3
    assert verify_archive(data_dir).removed == 3


# --- pure parts -----------------------------------------------------------------------------------


def test_the_plan_is_pure_and_reads_only_records(data_dir: Path, clock: ManualClock) -> None:
    with Archive.open(data_dir, clock) as arc:
        idx = add_segment(arc, "cam-1", 0)
        place_hold(arc, "cam-2", 0, 2e9, "other camera", "alice")
        arc.segments.path(sha_of(arc, idx)).unlink()  # the plan does not look at files
        plan = plan_retention(LogView.scan(arc.iter_records()), WEEK, clock.wall() + 8 * DAY)
    assert [p.segments for p in plan.removals] == [(idx,)]
    assert plan.removals[0].to_tombstone == ((idx, 7),)
    assert [h.camera for h in plan.holds] == ["cam-2"] and isinstance(plan.holds[0], Hold)


@pytest.mark.parametrize(
    ("days", "fragment"),
    [(0, "got 0"), (-1, "got -1"), (float("nan"), "got nan"), (True, "got True")],
)
def test_a_policy_refuses_days_that_are_not_positive(days: float, fragment: str) -> None:
    with pytest.raises(ArchiveInputError, match=r"expected a .*number of days") as e:
        RetentionPolicy(default_days=days)
    assert fragment in str(e.value)
    with pytest.raises(ArchiveInputError, match="days for camera 'door'"):
        RetentionPolicy(per_camera={"door": days})


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2026-12-05T03:00:00Z", 1796439600.0),
        ("2026-12-05T04:00:00+01:00", 1796439600.0),
        ("1796439600", 1796439600.0),
        ("1796439600.5", 1796439600.5),
    ],
)
def test_times_are_iso_8601_with_a_zone_or_unix_seconds(text: str, want: float) -> None:
    assert parse_time(text) == want


@pytest.mark.parametrize("text", ["2026-12-05T03:00:00", "yesterday", "", "-5", "1e9"])
def test_other_times_are_refused(text: str) -> None:
    with pytest.raises(ArchiveInputError, match="expected ISO 8601 with a time zone"):
        parse_time(text)


# --- CLI ------------------------------------------------------------------------------------------

app = typer.Typer()
app.add_typer(archive_app, name="archive")


def kontur(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("kontur: error: ") and "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def site(data_dir: Path) -> Path:
    """A stopped archive: cam-1 and cam-2 filmed 30 days ago, cam-1 filmed now too."""
    clock = ManualClock(wall=time.time() - 30 * DAY)
    with Archive.open(data_dir, clock) as arc:
        add_segment(arc, "cam-1", 0)
        add_segment(arc, "cam-2", 0)
        clock.advance(30 * DAY - 60)
        add_segment(arc, "cam-1", 1)
    return data_dir


def test_cli_hold_retention_release_retention(site: Path) -> None:
    t_old = time.time() - 30 * DAY
    code, out, err = kontur(
        "archive", "hold", site, "--camera", "cam-2", "--from", format_time(t_old - 3600),
        "--to", f"{t_old + 3600:.0f}", "--reason", "case 17", "--by", "alice", "--json", "-",
    )  # fmt: skip
    assert code == 0, err
    placed = json.loads(out)
    assert placed["hold"]["camera"] == "cam-2" and placed["hold"]["by"] == "alice"
    assert (placed["covered"], placed["already_removed"], placed["camera_known"]) == (1, 0, True)

    code, out, err = kontur("archive", "retention", site, "--days", "7", "--json", "-")
    assert code == 0, err
    first = json.loads(out)
    assert (first["files_removed"], first["tombstones"], first["kept_by_hold"]) == (1, 1, 1)

    index = placed["hold"]["index"]
    code, out, err = kontur(
        "archive", "release", site, "--hold", index, "--reason", "closed", "--json", "-"
    )
    assert code == 0, err
    assert json.loads(out)["release"]["reason"] == "closed"

    code, out, err = kontur("archive", "retention", site, "--days", "7", "--json", "-")
    assert code == 0, err
    assert json.loads(out)["files_removed"] == 1
    result = verify_archive(site)
    assert result.ok and (result.segments, result.removed) == (3, 2)


def test_cli_retention_per_camera_and_dry_run(site: Path) -> None:
    code, out, err = kontur(
        "archive", "retention", site, "--days", "7", "--camera", "cam-2=60", "--dry-run",
        "--json", "-",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["dry_run"] and report["files_removed"] == 1 and report["tombstones"] == 0
    assert report["policy"] == {"default_days": 7.0, "per_camera": {"cam-2": 60.0}}
    assert "dry run: nothing changed" in err
    assert verify_archive(site).removed == 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["hold", "--camera", "cam-1", "--from", "2026-12-05T03:00:00", "--to", "1",
          "--reason", "r"], "--from: expected ISO 8601 with a time zone"),
        (["hold", "--camera", "cam-1", "--from", "5", "--to", "1", "--reason", "r"],
         "window: expected from <= to"),
        (["release", "--hold", "99", "--reason", "r"],
         "hold: expected the index of an active hold, got 99"),
        (["release", "--hold", "x", "--reason", "r"], "--hold: expected a record index"),
        (["retention", "--days", "0"], "--days: expected a number of days > 0, got '0'"),
        (["retention", "--days", "7", "--camera", "cam-1"], "--camera: expected CAMERA=DAYS"),
        # a newline or a terminal escape would be replayed on every screen showing the hold
        (["hold", "--camera", "x\n\x1b[31mred", "--from", "1", "--to", "2", "--reason", "r"],
         "camera: expected one line of at most 1000 characters without control characters"),
        (["hold", "--camera", "cam-1", "--from", "1", "--to", "2", "--reason", "a\rb"],
         "reason: expected one line of at most 1000 characters without control characters"),
        (["hold", "--camera", "cam-1", "--from", "1", "--to", "2", "--reason", "pay \u202egnp"],
         "reason: expected one line"),  # a bidi override reorders what a screen shows
        (["hold", "--camera", "cam-1", "--from", "1", "--to", "2", "--reason", "r" * 1001],
         "reason: expected one line of at most 1000 characters without control characters, "
         "got 1001 characters"),
        (["hold", "--camera", "cam-1", "--from", "1", "--to", "2", "--reason", "r",
          "--by", "\x1b]0;owned\x07"], "by: expected one line"),
    ],
)  # fmt: skip
def test_cli_bad_input_is_one_line_and_exit_2(site: Path, args: list[str], fragment: str) -> None:
    code, out, err = kontur("archive", args[0], site, *args[1:])
    assert code == 2 and out == ""
    assert fragment in one_error_line(err)


def test_cli_refuses_a_locked_archive(site: Path) -> None:
    with Archive.open(site):
        for args in (
            ["hold", site, "--camera", "cam-1", "--from", "1", "--to", "2", "--reason", "r"],
            ["retention", site, "--days", "7"],
        ):
            code, _, err = kontur("archive", *args)
            assert code == 2
            assert "expected no other writer" in one_error_line(err)


def test_cli_needs_an_existing_archive(tmp_path: Path) -> None:
    code, _, err = kontur("archive", "retention", tmp_path / "none", "--days", "7")
    assert code == 2 and "expected an archive, got no archive.sqlite" in one_error_line(err)
    assert not (tmp_path / "none").exists()


def test_cli_retention_exits_1_when_an_expired_file_is_missing(site: Path) -> None:
    with Archive.open_readonly(site) as arc:
        sha = sha_of(arc, 1)
    os.unlink(SegmentStore(site).path(sha))
    code, out, err = kontur("archive", "retention", site, "--days", "7", "--json", "-")
    assert code == 1
    assert json.loads(out)["missing"] == [sha]
    assert f"segment {sha[:12]}…: expected an intact file, got it missing" in err
