"""Issue 15 §3: the recorder stamps every decision record with the run manifest's digest."""

from __future__ import annotations

from pathlib import Path

from kontur.archive import Archive
from kontur.clock import ManualClock
from kontur.runtime.recorder import CameraStats, Recorder
from kontur.wire import Decision, Outcome


def _decision() -> Decision:
    return Decision(
        camera_id="cam1", rule="r", action="alarm", critical=True, track_id=7, frame_index=40,
        outcome=Outcome.OPERATOR, reasons=("why",), gops=(1,), executed=None, at=1.0,
    )  # fmt: skip


def test_decision_record_names_the_manifest_and_keeps_the_gates_fields(tmp_path: Path) -> None:
    with Archive.open(tmp_path, ManualClock()) as arc:
        rec = Recorder(arc, {"cam1": CameraStats(source="test")}, [])
        rec.on_message("gate", _decision())  # before the manifest: nothing to name
        rec.manifest_sha256 = "ab" * 32
        rec.on_message("gate", _decision())
        arc.flush()
        before, after = (r.payload for r in arc.iter_records(kind="decision"))
    gate = _decision().model_dump(mode="json")
    assert before == gate
    assert after == {**gate, "manifest_sha256": "ab" * 32}
