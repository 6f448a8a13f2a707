"""The running site's export desk (``kontur.runtime.exports.SiteExports``), its paths one by
one on a real archive of PETS09 (the ``demo_archive`` fixture): ready, refused when too many
wait, a bad span, a repeated id, a failed plan, an archive closed under the seal, a bundle
that cannot be written, and work still waiting at stop.

Each outcome is what the API shows in the run state; whatever happens, no bundle exists that
the archive does not name, and the archive still verifies.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.evidence.conftest import DemoArchive, verify

from kontur.archive import Archive, verify_archive
from kontur.clock import ManualClock, SystemClock
from kontur.runtime.exports import MAX_QUEUED, SETTLE_S, SiteExports, bundle_path
from kontur.wire.messages import ExportRequest

WAIT_S = 120.0


def drive(exports: SiteExports, rid: str) -> str:
    """Run the supervisor's side (``tick``) until request ``rid`` ended; its status."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        exports.tick()
        status = exports.status[rid]
        if status != "pending":
            return status
        time.sleep(0.02)
    raise AssertionError(f"export {rid} still pending after {WAIT_S} s")


def _span(archive: DemoArchive) -> tuple[float, float]:
    """The whole recorded run."""
    return archive.records[0].at, archive.records[-1].at


def _request(n: int, span: tuple[float, float], camera: str = "cam1") -> ExportRequest:
    return ExportRequest(
        request_id=f"{n:032x}", requested_by=f"ivy-{n}", camera=camera,
        from_at=span[0], to_at=span[1], at=time.time(),
    )  # fmt: skip


@pytest.fixture
def desk(demo_archive: DemoArchive, tmp_path: Path) -> Iterator[tuple[SiteExports, Path]]:
    data = demo_archive.copy(tmp_path / "d")
    arc = Archive.open(data)
    exports = SiteExports(arc, data, SystemClock())
    try:
        yield exports, data
    finally:
        exports.close()
        arc.close()


def _export_records(data: Path) -> dict[str, dict]:
    with Archive.open_readonly(data) as arc:
        return {Path(r.payload["bundle"]).stem: r.payload for r in arc.iter_records(kind="export")}


def test_a_ready_export_is_named_by_the_archive_and_verifies_offline(
    desk: tuple[SiteExports, Path], demo_archive: DemoArchive
) -> None:
    exports, data = desk
    msg = _request(1, _span(demo_archive))
    exports.submit(msg)
    assert exports.status[msg.request_id] == "pending"
    status = drive(exports, msg.request_id)
    assert status.startswith("ready ")
    bundle = bundle_path(data, msg.request_id)
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() == status.split()[1]
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o400
    logged = _export_records(data)[msg.request_id]
    assert (logged["by"], logged["bundle_sha256"]) == ("ivy-1", status.split()[1])
    code, report = verify(bundle)
    assert code == 0, report


def test_more_than_the_queue_holds_is_refused_in_one_line(
    desk: tuple[SiteExports, Path], demo_archive: DemoArchive
) -> None:
    exports, _data = desk
    span = _span(demo_archive)
    for n in range(MAX_QUEUED + 1):
        exports.submit(_request(100 + n, span))
    refused = exports.status[f"{100 + MAX_QUEUED:032x}"]
    assert refused == f"failed expected at most {MAX_QUEUED} exports waiting, got more"


def test_a_bad_span_and_a_repeated_id_change_nothing(
    desk: tuple[SiteExports, Path], demo_archive: DemoArchive
) -> None:
    exports, data = desk
    lo, hi = _span(demo_archive)
    exports.submit(_request(2, (hi, lo)))
    assert exports.status[f"{2:032x}"] == f"failed expected to after from ({hi}), got {lo}"
    exports.submit(_request(2, (lo, hi)))  # the same id again: ignored, not a second job
    assert exports.status[f"{2:032x}"].startswith("failed expected to after")
    assert _export_records(data) == {}


def test_a_failed_plan_fails_the_request_and_the_next_one_still_works(
    desk: tuple[SiteExports, Path], demo_archive: DemoArchive
) -> None:
    exports, data = desk
    span = _span(demo_archive)
    bad, good = _request(3, span, camera="no-such-camera"), _request(4, span)
    exports.submit(bad)
    exports.submit(good)
    failed = drive(exports, bad.request_id)
    assert failed.startswith("failed ") and "\n" not in failed and "no-such-camera" in failed
    assert drive(exports, good.request_id).startswith("ready ")
    assert not bundle_path(data, bad.request_id).exists()
    assert set(_export_records(data)) == {good.request_id}


def test_an_archive_closed_under_the_seal_fails_the_request_without_a_bundle(
    demo_archive: DemoArchive, tmp_path: Path
) -> None:
    data = demo_archive.copy(tmp_path / "d")
    arc = Archive.open(data)
    exports = SiteExports(arc, data, SystemClock())
    msg = _request(5, _span(demo_archive))
    exports.submit(msg)
    arc.close()  # the writer went away before the loop sealed the prepared bundle
    status = drive(exports, msg.request_id)
    exports.close()
    assert status.startswith("failed ") and "\n" not in status
    assert not bundle_path(data, msg.request_id).exists()
    assert _export_records(data) == {}
    assert verify_archive(data).ok


def test_a_bundle_that_cannot_be_written_is_failed_but_stays_logged(
    desk: tuple[SiteExports, Path], demo_archive: DemoArchive
) -> None:
    exports, data = desk
    msg = _request(6, _span(demo_archive))
    bundle_path(data, msg.request_id).mkdir(parents=True)  # a directory where the zip goes
    exports.submit(msg)
    status = drive(exports, msg.request_id)
    assert status.startswith("failed logged but not written: ")
    assert msg.request_id in _export_records(data)  # the archive says an export was made


def test_work_still_waiting_at_stop_fails_and_the_archive_verifies(
    demo_archive: DemoArchive, tmp_path: Path
) -> None:
    data = demo_archive.copy(tmp_path / "d")
    arc = Archive.open(data)
    exports = SiteExports(arc, data, SystemClock())
    msgs = [_request(10 + n, _span(demo_archive)) for n in range(4)]
    for m in msgs:
        exports.submit(m)
    exports.close(timeout_s=0.0)  # stop now: the thread has not got through four exports
    arc.close()
    statuses = [exports.status[m.request_id] for m in msgs]
    stopped = "failed kontur stopped before the export was done"
    assert stopped in statuses
    assert all(s == stopped or s.startswith("ready ") for s in statuses), statuses
    logged = _export_records(data)
    for m, s in zip(msgs, statuses, strict=True):
        assert bundle_path(data, m.request_id).exists() == s.startswith("ready ")
        if s.startswith("ready "):
            assert m.request_id in logged
    assert verify_archive(data).ok
    assert not [p for p in os.listdir(data / "exports") if p.endswith(".tmp")]


def test_a_span_reaching_the_gop_being_judged_waits_for_its_verdict(
    demo_archive: DemoArchive, tmp_path: Path
) -> None:
    """The newest segment's verdict comes when the next GOP begins: until then (at most
    SETTLE_S) the request stays pending and no export starts; once the verdict is recorded
    it goes on."""
    data = demo_archive.copy(tmp_path / "d")
    arc = Archive.open(data)
    clock = ManualClock(wall=time.time())
    exports = SiteExports(arc, data, clock)
    try:
        last = max(r.payload["gop_index"] for r in demo_archive.records if r.kind == "segment")
        seg = demo_archive.segment(last)
        open_gop = arc.append(
            "segment", {**seg.payload, "gop_index": last + 1, "end_of_stream": False}
        )
        arc.flush()
        msg = _request(20, (demo_archive.records[0].at, open_gop.at + 1.0))
        exports.submit(msg)
        for _ in range(3):
            exports.tick()
        assert exports.status[msg.request_id] == "pending"
        assert exports._jobs.empty() and exports._queued == 0  # nothing started yet
        clock.advance(SETTLE_S + 1)  # the verdict never came: export anyway, and say why
        status = drive(exports, msg.request_id)
        assert status.startswith("failed ") and f"GOP {last + 1}" in status, status
    finally:
        exports.close()
        arc.close()
