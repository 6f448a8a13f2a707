"""The recorder: decide, record, then act (issue 8 points 9 and 10) on a real archive."""

from __future__ import annotations

from pathlib import Path

import pytest
from committed_sink import CommittedCheckingSink

from kontur.archive import Archive
from kontur.clock import ManualClock
from kontur.runtime.recorder import CameraStats, Recorder
from kontur.wire import Decision, DetectionBatch, GopClosed, Outcome, SegmentStored
from kontur.wire.verdict import GopVerdict, Verdict


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Recorder, CommittedCheckingSink, Archive]:
    # a long batch interval: nothing is committed unless the recorder commits it
    archive = Archive.open(tmp_path, ManualClock(), batch_size=10_000, batch_interval_s=3600)
    sink = CommittedCheckingSink(tmp_path)
    rec = Recorder(archive, {"cam1": CameraStats(source="test")}, [sink])
    yield rec, sink, archive
    archive.close()


def _decision(outcome: Outcome) -> Decision:
    return Decision(
        camera_id="cam1", rule="r", action="alarm", critical=True, track_id=7, frame_index=40,
        outcome=outcome, reasons=("why",), gops=(1,), executed=None, at=1.0,
    )  # fmt: skip


def _gop(verdict: Verdict) -> GopClosed:
    return GopClosed(
        verdict=GopVerdict(camera_id="cam1", gop_index=1, verdict=verdict, reasons=("r",)),
        first_frame=10, last_frame=19, start_pts_s=1.0, end_pts_s=1.9,
        segment_sha256="0" * 64, segment_size=1,
    )  # fmt: skip


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_decision_is_committed_before_any_sink_fires(
    setup: tuple[Recorder, CommittedCheckingSink, Archive], outcome: Outcome
) -> None:
    """Point 9: actions fired before their decision was recorded."""
    rec, sink, _ = setup
    rec.on_message("gate", _decision(outcome))
    ((event, committed),) = sink.seen
    assert event.type == "decision" and event.outcome is outcome  # type: ignore[union-attr]
    assert committed == ["decision"]
    assert event.archive_index == 0


def test_failing_verdicts_reach_the_sinks_committed_authentic_ones_do_not(
    setup: tuple[Recorder, CommittedCheckingSink, Archive],
) -> None:
    """Point 10: NOT_AUTHENTIC, MISSING and the others reached no sink."""
    rec, sink, _ = setup
    rec.on_message("ingest:cam1", _gop(Verdict.AUTHENTIC))
    assert sink.seen == []
    rec.on_message("ingest:cam1", _gop(Verdict.NOT_AUTHENTIC))
    ((event, committed),) = sink.seen
    assert event.type == "gop_verdict" and committed == ["verdict", "verdict"]


def test_a_detection_batch_for_a_gop_ingest_never_stored_is_a_violation(
    setup: tuple[Recorder, CommittedCheckingSink, Archive],
) -> None:
    rec, _, archive = setup
    ref = archive.segments.put(b"gop 0 bytes")
    rec.on_message(
        "ingest:cam1",
        SegmentStored(
            camera_id="cam1", gop_index=0, segment_sha256=ref.sha256, segment_size=ref.size
        ),
    )
    batch = DetectionBatch(
        camera_id="cam1", gop_index=5, model_id="m", config_id="c", platform="cpu", frames=1,
        detections=1, track_ids=(1,),
    )  # fmt: skip
    v = rec.on_message("worker", batch)
    assert v is not None and v.sender == "worker"
    assert v.detail == "expected a GOP ingest stored for cam1 (max 0), got GOP 5"
    assert rec.stats["cam1"].detections == 0
    ok = rec.on_message("worker", batch.model_copy(update={"gop_index": 0}))
    assert ok is None and rec.stats["cam1"].detections == 1


def test_an_action_carries_its_proof_and_checkpoints_reach_the_sinks(tmp_path: Path) -> None:
    """Issue 10 §6: every action names its leaf and the tree size to prove it in; every
    signed checkpoint also goes to the sinks (the webhook is a witness)."""
    from kontur.archive import Signing, open_checkpoint, verify_inclusion

    sink = CommittedCheckingSink(tmp_path)
    holder: list[Recorder] = []
    archive = Archive.open(
        tmp_path,
        ManualClock(),
        signing=Signing(every_records=2),
        on_checkpoint=lambda note: holder[0].on_checkpoint(note),
    )
    rec = Recorder(archive, {"cam1": CameraStats(source="test")}, [sink])
    holder.append(rec)
    archive.append("event", {"n": 0})
    rec.on_message("gate", _decision(Outcome.DENY))
    events = [e for e, _ in sink.seen]
    decision = next(e for e in events if e.type == "decision")
    assert (decision.archive_index, decision.archive_tree_size) == (1, 2)
    proof = archive.inclusion_proof(1, 2)
    leaf = bytes.fromhex(decision.archive_hash or "")
    verify_inclusion(leaf, 1, 2, proof, archive.root_at(2))
    (cp_event,) = [e for e in events if e.type == "checkpoint"]
    cp = open_checkpoint(cp_event.note, archive.verifier_key)  # type: ignore[union-attr]
    assert (cp.size, cp.root) == (2, archive.root_at(2))
    archive.close()
