"""Crash safety of evidence export (issue 10 part 7): ``kill -9`` of ``kontur archive export``.

The archive-writer kill harness (``tests/archive/test_archive_kill_harness.py``) covers
appends, checkpoints and retention on a synthetic archive; an export needs real signed GOPs,
so it is killed here, on copies of the archive the real perimeter wrote (``demo_archive``:
PETS09, YOLOX-nano, signed on the fly). Each kill runs the real CLI entry point in a fresh
process with the kill point's wrappers from ``benchmarks/archive_kill.py`` (its export phase,
``--_export-child``) and SIGKILLs it there; the export is of the whole stream (four GOPs).
After each kill, on a fresh copy of the data dir:

- ``kontur archive verify`` exits 0;
- every record committed before is there under the same root, the acknowledged ``export``
  record too, and the kill added nothing else;
- a file at ``--out`` exists only if a committed ``export`` record names it and its SHA-256;
- what the kill left is the kill point's state (``EXPORT_POINTS``), and the only other files
  are temporary bundles ``.<name>.<random>.tmp``;
- the export re-run with the same ``--out`` succeeds, and ``verify-export`` passes.

A kill before the rename leaves its temporary bundle behind. After ``export.written`` or
``export.appended`` it is a complete bundle that ``verify-export`` passes although the
archive logs no export of it; after ``export.flushed`` it is exactly the bundle the archive
logged. The next export removes such files under the writer lock (the last test).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from tests.conftest import REPO, run_kontur
from tests.evidence.conftest import DemoArchive

from kontur.archive import Archive

pytestmark = pytest.mark.e2e


def _load_harness() -> ModuleType:
    path = REPO / "benchmarks" / "archive_kill.py"
    spec = importlib.util.spec_from_file_location("archive_kill", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


ak = sys.modules.get("archive_kill") or _load_harness()

#: export.zip pauses after this many zip members: README, manifest, checkpoint, key (of 14)
ZIP_MEMBERS = 4
#: timed kills, as fractions of a clean export's time from ready to exit
TIMED = (0.2, 0.5, 0.8)


def _harness(demo: DemoArchive, tmp: Path) -> object:
    data = demo.copy(tmp / "d")
    camera, span = ak.whole_stream(data)
    return ak.ExportHarness(data, tmp / "out", camera, span)


def _verify_clean(data: Path) -> None:
    r = run_kontur("archive", "verify", str(data), "--json", "-")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert json.loads(r.stdout)["ok"] is True


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _logged(data: Path) -> dict[str, int]:
    """bundle SHA-256 -> the export record that logs it."""
    with Archive.open_readonly(data) as arc:
        return {r.payload["bundle_sha256"]: r.index for r in arc.iter_records(kind="export")}


@pytest.fixture(scope="module")
def calibrated(demo_archive: DemoArchive, tmp_path_factory: pytest.TempPathFactory) -> float:
    """A clean export through the same wrapper: the time its timed kills are scaled to."""
    h = _harness(demo_archive, tmp_path_factory.mktemp("calibrate"))
    seconds, out = h.calibrate()
    assert out.violations == []
    assert (out.killed_at, out.record, out.placed, out.temps) == ("completed", True, True, 0)
    return seconds


@pytest.mark.parametrize("point", list(ak.EXPORT_POINTS))
def test_export_killed_at_each_step_loses_nothing_and_reruns(
    point: str, demo_archive: DemoArchive, tmp_path: Path
) -> None:
    h = _harness(demo_archive, tmp_path)

    out = h.kill_once(ak.ExportKill(kill=0, point=point, nth=ZIP_MEMBERS))

    assert out.violations == []
    assert out.killed_at == point
    record, placed = ak.EXPORT_POINTS[point]
    assert (out.record, out.placed) == (record, placed)
    assert (out.acked is not None) == record  # acknowledged exactly when committed
    _verify_clean(h.data)
    temps = sorted(h.out_dir.glob(f".{out.bundle}.*.tmp"))
    assert len(temps) == (0 if placed else 1), (
        temps
    )  # left behind by the kill (the re-run removes it)
    logged = _logged(h.data)
    if placed:
        assert logged[_sha(h.out_dir / out.bundle)] == out.acked
    elif record:  # export.flushed: the temp is the very bundle the archive logged
        assert logged[_sha(temps[0])] == out.acked
    else:  # not logged: half a zip, or a complete bundle no record names
        assert _sha(temps[0]) not in logged

    h.recover(out)

    assert out.violations == []
    assert out.rerun == ("in place" if placed else "exported")
    assert out.verify_export_rc == 0
    assert (h.out_dir / out.bundle).exists()
    _verify_clean(h.data)


@pytest.mark.parametrize("fraction", TIMED)
def test_export_killed_at_a_random_moment_loses_nothing_and_reruns(
    fraction: float, calibrated: float, demo_archive: DemoArchive, tmp_path: Path
) -> None:
    h = _harness(demo_archive, tmp_path)

    out = h.kill_once(ak.ExportKill(kill=0, point="timed", delay_s=fraction * calibrated))

    print(f"timed kill at {fraction * calibrated:.3f} s: {out.killed_at}, "
          f"record {out.record}, bundle {out.placed}, temp left {out.left_temp}")  # fmt: skip
    assert out.violations == []
    assert out.killed_at in ("timed", "completed")
    assert (out.record, out.placed) in set(ak.EXPORT_POINTS.values())
    _verify_clean(h.data)
    h.recover(out)
    assert out.violations == []
    assert out.verify_export_rc == 0


def test_the_rerun_removes_the_temporary_bundle_a_kill_left(
    demo_archive: DemoArchive, tmp_path: Path
) -> None:
    # killed after the temporary bundle was fsynced, before its export record: that file is a
    # complete, genuine bundle no record names, which an operator could take for evidence;
    # the next export removes it under the writer lock and logs its own bundle
    h = _harness(demo_archive, tmp_path)
    out = h.kill_once(ak.ExportKill(kill=0, point="export.written"))
    assert out.violations == []
    (stale,) = h.out_dir.glob(f".{out.bundle}.*.tmp")
    assert _sha(stale) not in _logged(h.data)
    h.recover(out)
    assert out.violations == []
    assert not stale.exists()
    assert list(h.out_dir.glob(f".{out.bundle}.*.tmp")) == []
    assert _sha(h.out_dir / out.bundle) in _logged(h.data)
