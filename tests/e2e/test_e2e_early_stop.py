"""A stop the run asks for while ingest is still starting is a clean stop, not a failed block.

Ingest installs its stop handler first thing in ``main``, before it opens its source; a SIGTERM
that arrives during its imports kills it by the signal's default action. That ingest had
recorded nothing, so nothing was lost: the run must end cleanly (ADR 0061), where it used to
report ``ingest:cam1 exited with code -15 (SIGTERM) before its source ended`` and exit 1 (seen
in a loaded suite on 2-second demos).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import run_kontur
from tests.e2e.pets_clip import pets09_h264, records

from kontur.config import load_config
from kontur.runtime.perimeter import Perimeter, RunOptions

pytestmark = pytest.mark.e2e


def test_a_stop_during_ingest_start_is_clean(tmp_path: Path) -> None:
    clip = pets09_h264(tmp_path / "pets.mp4", 40)
    data = tmp_path / "d"
    # asked to stop from the first turn of the run's loop: ingest was spawned a moment before
    opts = RunOptions(config=load_config(None), data_dir=data, source=str(clip), stop=lambda: True)
    summary = Perimeter(opts).run()
    cam = summary["cameras"][0]
    assert cam["error"] is None, cam["error"]
    assert cam["frames"] == 0  # it never opened its source
    transitions = summary["degradation"]["transitions"]
    assert "block_failed" not in [t["trigger"] for t in transitions]
    events = [e["event"] for e in records(data, "event")]
    assert "ingest_stopped_before_start" in events and "block_failed" not in events
    assert run_kontur("archive", "verify", str(data)).returncode == 0
