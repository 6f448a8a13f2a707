"""The run's memory figures count what each block started, not only the block itself.

Ingest starts a sandboxed decoder per camera (ADR 0038); the summary's ``processes[]`` gives
each block's own peak (``peak_rss_mb``) and, next to it, the summed peaks of its descendants
(``children_peak_rss_mb``), so the perimeter's memory is not under-reported by them.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import wait_for

from kontur.runtime.supervisor import Block, Supervisor, descendants


def test_a_blocks_child_is_counted_in_the_table(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    sup = Supervisor(tmp_path / "run")
    spec = {"child_mb": 64, "ready_path": str(ready)}
    sup.start([Block("ingest:cam1", "tests.runtime.forking_block", spec, ())])
    try:
        wait_for("the stand-in block's child", ready.exists, timeout=30)
        child = int(ready.read_text())
        root = sup.running["ingest:cam1"].proc.pid
        assert descendants({root}) == {child: root}
        sup.sample_memory(force=True)
    finally:
        sup.stop_all(grace_s=5)
    (row,) = sup.table()
    assert row["children_peak_rss_mb"] >= 64, row
    assert row["peak_rss_mb"] < row["children_peak_rss_mb"], row


def test_descendants_of_no_process_are_none() -> None:
    assert descendants(set()) == {}
    assert os.getpid() not in descendants({os.getpid()})
