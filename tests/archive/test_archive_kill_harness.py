"""Crash safety, proven (issue 10 part 7): the kill -9 harness, short version.

``benchmarks/archive_kill.py`` SIGKILLs a real writer process at seeded random points
(timed, and paused inside commit, segment store, checkpoint signing, witnessing, a torn
witness line, and retention's tombstone commit and unlink) and checks after each kill that
verify is clean, no acknowledged record is missing, no checkpoint covers an uncommitted
record and no held segment lost its file. Here: 20 kills on one archive (~10 s on 2 cores);
the full run (``--kills 120``) is a benchmark (docs/BENCHMARKS.md). The harness is also made
to fail on purpose, so that a clean run means something.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SEED = 20261205
KILLS = 20


def _load_harness() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "archive_kill.py"
    spec = importlib.util.spec_from_file_location("archive_kill", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


ak = _load_harness()


def test_sigkill_at_20_points_loses_nothing_acknowledged(tmp_path: Path) -> None:
    print(
        f"archive_kill seed {SEED} (replay: python benchmarks/archive_kill.py --seed {SEED} "
        f"--kills {KILLS})"
    )
    outcomes, summary = ak.run_harness(tmp_path / "kill", KILLS, SEED)

    assert summary["violations"] == []
    assert summary["kills"] == KILLS
    # every pause point of the rotation was reached and killed there, not by the fallback
    assert set(summary["points"]) == set(ak.POINTS) | set(ak.available_optional_points())
    assert set(summary["points"]) <= set(summary["killed_at"]), summary["killed_at"]
    assert summary["killed_at"].get("timed") == KILLS // 2
    # the archive is exactly every writer's committed prefix, retention's tombstones and
    # hold, and the clean close's record
    assert summary["acknowledged"] > 0
    committed = summary["acknowledged"] + summary["committed_unacknowledged"]
    retention = summary["retention_records"]
    assert summary["records"] == committed + sum(retention.values()) + 1
    assert retention["hold"] == 1 and retention["tombstone"] > 0
    assert summary["segments_removed_by_retention"] > 0
    assert summary["segments_held"] > 0
    assert summary["published_checkpoints"] > 0
    assert summary["checkpoint_size"] == summary["records"]  # the close checkpoint
    assert outcomes[-1].killed_at == "close"


def test_harness_catches_an_acknowledged_record_that_was_never_committed(
    tmp_path: Path,
) -> None:
    h = ak.Harness(tmp_path / "kill", SEED)
    h.ack_uncommitted = True  # a writer that acknowledges appends before their commit
    plan = ak.Plan(kill=0, point="commit.before", nth=2, delay_s=0.0, seed=1, batch_size=8)

    out = h.kill_once(plan)

    assert out.killed_at == "commit.before"
    assert len(out.violations) == 1, out.violations
    assert "kill 0 (commit.before): acknowledged record run 0 seq " in out.violations[0]
    assert "is missing (the archive holds " in out.violations[0]


def test_harness_catches_a_checkpoint_over_uncommitted_records(tmp_path: Path) -> None:
    h = ak.Harness(tmp_path / "kill", SEED)
    first = h.kill_once(ak.Plan(kill=0, point="timed", nth=1, delay_s=0.1, seed=2, batch_size=4))
    assert first.violations == []
    forged = ak.Outcome(
        ak.Plan(kill=1, point="timed", nth=1, delay_s=0.0, seed=3, batch_size=1),
        killed_at="timed",
        published=[first.records + 1],
    )

    h.check(forged)

    assert forged.violations == [
        f"kill 1 (timed): checkpoint of size {first.records + 1} published to on_checkpoint "
        f"covers uncommitted records (the tree holds {first.records})"
    ]


def test_torn_witness_line_survives_the_next_writer(tmp_path: Path) -> None:
    # a torn line used to become a malformed middle line once the next writer appended
    # (WitnessError "line N: expected JSON"); now the next writer ends it first
    h = ak.Harness(tmp_path / "kill", SEED, points=(ak.TORN_POINT,))
    plan = ak.Plan(kill=0, point=ak.TORN_POINT, nth=2, delay_s=0.0, seed=4, batch_size=2)
    torn = h.kill_once(plan)
    assert torn.killed_at == ak.TORN_POINT
    assert torn.torn_witness == 1  # reported, allowed
    assert torn.violations == []

    closed = h.finish()  # the next writer checkpoints at close, appending a witness line

    assert closed.violations == []
    assert closed.torn_witness == 1
    assert closed.witness_lines == torn.witness_lines + 1
