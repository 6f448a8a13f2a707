"""The incident desk (ADR 0029) on a real archive the perimeter wrote: each playbook, each
failure, and what the archive keeps of each step.

Real parts: the archive (``kontur demo`` on PETS09), the inventory, the export desk, the
verification, and for the CPU move a real supervisor, health block and process; only the
placement of that process ("gpu") stands in for an accelerator this machine does not have.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kontur.archive import Archive, Record, Signing
from kontur.clock import SystemClock
from kontur.config import load_config
from kontur.degrade import DegradationMachine, Watchdog
from kontur.evidence.bundle import verify_file
from kontur.ingest.inventory import Inventory
from kontur.runtime.exports import SiteExports
from kontur.runtime.health import Health
from kontur.runtime.incidents import IncidentDesk, SiteHooks
from kontur.runtime.recorder import CameraStats, Recorder
from kontur.runtime.supervisor import Block, Supervisor
from kontur.runtime.wiring import Wiring
from kontur.wire.channel import Outbox
from kontur.wire.messages import IncidentRequest


def request(kind: str, **fields: Any) -> IncidentRequest:
    """A request as the API or the CLI makes it."""
    rid = os.urandom(16).hex()
    return IncidentRequest(request_id=rid, kind=kind, by="ana", at=time.time(), **fields)


def revoke_in(data: Path, writer: Archive) -> Callable[[str, str], None]:
    """``kontur camera revoke``'s path: the inventory, then its record in the archive."""

    def revoke(camera: str, reason: str) -> None:
        with Inventory.open(data) as inv:
            inv.revoke(camera, reason)
            inv.drain_to_archive(writer)

    return revoke


@dataclass
class Desk:
    """A desk on a writer of the data dir, and the export desk it uses."""

    data: Path
    archive: Archive
    exports: SiteExports
    desk: IncidentDesk

    def run(self, req: IncidentRequest, via: str = "api") -> str:
        """Submit, tick until it ends; the published outcome."""
        self.desk.submit(req, via=via)
        deadline = time.monotonic() + 120
        while self.desk.status[req.request_id] == "pending":
            assert time.monotonic() < deadline, "expected the request to end"
            self.exports.tick()
            self.desk.tick(time.monotonic())
            time.sleep(0.02)
        return self.desk.status[req.request_id]

    def incidents(self, rid: str) -> list[dict[str, Any]]:
        self.archive.flush()
        return [
            r.payload
            for r in self.archive.iter_records(kind="incident")
            if r.payload["request_id"] == rid
        ]

    def record(self, index: int) -> Record:
        return next(self.archive.iter_records(index))


def make_desk(data: Path, signing: Signing | None = None, **hooks: Any) -> Desk:
    archive = Archive.open(data, signing=signing)
    clock = SystemClock()
    exports = SiteExports(archive, data, clock)
    defaults: dict[str, Any] = {
        "revoke": revoke_in(data, archive),
        "worker_platform": lambda: None,
        "cpu_allowed": lambda: True,
        "move_to_cpu": lambda why: None,
        "exports": exports,
        "spool": False,
    }
    desk = IncidentDesk(archive, data, clock, SiteHooks(**{**defaults, **hooks}))
    return Desk(data, archive, exports, desk)


@pytest.fixture
def site(data: Path) -> Iterator[Desk]:
    d = make_desk(data)
    yield d
    d.exports.close()
    d.desk.close()
    d.archive.close()


# ---- revoke_camera ------------------------------------------------------------------------
def test_revoke_refuses_the_camera_and_holds_what_it_sent_last(site: Desk) -> None:
    last = list(site.archive.iter_records(kind="verdict"))[-1]
    req = request("revoke_camera", camera="cam1", reason="key leaked", preserve_s=300)
    status = site.run(req)
    assert status.startswith("done revoked cam1 (record "), status
    assert "its next GOP is REVOKED" in status and "last 300 s" in status
    accepted, done = site.incidents(req.request_id)
    assert (accepted["outcome"], accepted["via"], accepted["by"]) == ("accepted", "api", "ana")
    assert done["outcome"] == "done" and done["detail"] == status.removeprefix("done ")
    revocation = site.record(done["revocation"])
    assert revocation.kind == "camera" and revocation.payload["action"] == "revoke"
    assert revocation.payload["reason"] == "key leaked"
    hold = site.record(done["hold"])
    assert hold.kind == "hold" and hold.payload["reason"] == "revoked: key leaked"
    assert hold.payload["to"] - hold.payload["from"] == 300 and hold.payload["by"] == "ana"
    assert done["held_segments"] >= 1
    assert done["last_gop"] == {
        "record": last.index,
        "gop_index": last.payload["verdict"]["gop_index"],
        "verdict": "AUTHENTIC",
        "segment_sha256": last.payload["segment_sha256"],
    }
    with Inventory.open(site.data) as inv:
        cam = inv.camera("cam1")
    assert cam is not None and cam.revoked_reason == "key leaked"


def test_revoking_an_unknown_camera_fails_and_is_archived(site: Desk) -> None:
    req = request("revoke_camera", camera="cam9", reason="stolen")
    assert site.run(req) == "failed camera cam9: expected an enrolled camera, got none"
    assert [p["outcome"] for p in site.incidents(req.request_id)] == ["accepted", "failed"]
    assert not list(site.archive.iter_records(kind="hold"))


def test_a_second_revocation_fails_naming_the_first(site: Desk) -> None:
    assert site.run(request("revoke_camera", camera="cam1", reason="one")).startswith("done")
    status = site.run(request("revoke_camera", camera="cam1", reason="two"))
    assert status.startswith("failed camera cam1: expected a camera not yet revoked, got one")


# ---- failover_cpu -------------------------------------------------------------------------
@dataclass
class Worker:
    supervisor: Supervisor
    health: Health


@pytest.fixture
def worker(site: Desk, tmp_path: Path) -> Iterator[Worker]:
    """A real supervisor running a real stand-in worker placed on "gpu", and real health."""
    cfg = load_config(None)
    clock = SystemClock()
    stats = {"cam1": CameraStats(source="test")}
    r, w = os.pipe()
    wiring = Wiring(blocks=[], inboxes={}, to_gate=Outbox(w), to_ingest={}, rings={})
    sup = Supervisor(tmp_path / "run")
    sup.start([Block("worker", "tests.incident.idle_block", {}, (), platform="gpu")])
    health = Health(
        cfg, DegradationMachine(cfg.degradation, clock),
        Watchdog(clock, cfg.degradation.watchdog_timeout_s), [], sup, wiring, site.archive,
        Recorder(site.archive, stats, []), stats, lambda: "cpu",
    )  # fmt: skip
    yield Worker(sup, health)
    sup.stop_all(grace_s=2.0)
    os.close(r)
    os.close(w)


def _hooks(site: Desk, w: Worker, cpu_allowed: bool) -> None:
    site.desk.hooks = SiteHooks(
        revoke=revoke_in(site.data, site.archive),
        worker_platform=lambda: w.supervisor.running["worker"].block.platform,
        cpu_allowed=lambda: cpu_allowed,
        move_to_cpu=w.health.move_worker_to_cpu,
        exports=site.exports,
        spool=False,
    )


def test_failover_moves_the_worker_to_the_cpu_and_records_why(site: Desk, worker: Worker) -> None:
    _hooks(site, worker, cpu_allowed=True)
    running = worker.supervisor.running["worker"]
    first_pid = running.proc.pid
    req = request("failover_cpu", reason="GPU driver suspected")
    status = site.run(req)
    assert status == "done moved the analytics worker from gpu to the CPU for the rest of the run"
    assert running.block.platform == "cpu" and running.restarts == 1
    assert running.proc.pid != first_pid and running.proc.poll() is None
    site.archive.flush()
    [event] = [r.payload for r in site.archive.iter_records(kind="event")
               if r.payload.get("event") == "worker_restarted"]  # fmt: skip
    assert event["platform"] == "cpu"
    assert event["why"] == f"incident {req.request_id} by ana: GPU driver suspected"
    done = site.incidents(req.request_id)[-1]
    assert (done["platform_before"], done["moved"], done["reason"]) == (
        "gpu",
        True,
        "GPU driver suspected",
    )
    # already there: said so, nothing restarted
    status = site.run(request("failover_cpu", reason="again"))
    assert status == "done the analytics worker already runs on the CPU: it stays there for the run"
    assert running.restarts == 1


def test_failover_fails_when_the_release_forbids_the_cpu(site: Desk, worker: Worker) -> None:
    _hooks(site, worker, cpu_allowed=False)
    status = site.run(request("failover_cpu", reason="GPU driver suspected"))
    assert status == (
        "failed expected a release that allows the CPU, got one that forbids it: the analytics "
        "worker stays on gpu"
    )
    running = worker.supervisor.running["worker"]
    assert running.block.platform == "gpu" and running.restarts == 0


def test_failover_without_a_running_site_fails(site: Desk) -> None:
    req = request("failover_cpu", reason="GPU driver suspected")
    assert site.run(req) == "failed expected a running site to move to the CPU, got none"
    assert site.incidents(req.request_id)[-1]["outcome"] == "failed"


# ---- preserve -----------------------------------------------------------------------------
def _span(site: Desk) -> tuple[float, float]:
    segments = list(site.archive.iter_records(kind="segment"))
    return segments[1].at - 0.001, segments[3].at + 0.001


def test_preserve_holds_the_span_and_builds_a_bundle_that_verifies(site: Desk) -> None:
    t0, t1 = _span(site)
    req = request("preserve", camera="cam1", from_at=t0, to_at=t1, reason="case 42")
    status = site.run(req, via="cli")
    done = site.incidents(req.request_id)[-1]
    bundle = Path(done["bundle"])
    assert status == (
        f"done hold {done['hold']} keeps {done['held_segments']} segment(s); bundle {bundle} "
        f"sha256 {done['bundle_sha256']}"
    )
    assert bundle == site.data / "exports" / f"{req.request_id}.zip"
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o400
    hold = site.record(done["hold"])
    assert (hold.payload["from"], hold.payload["to"], hold.payload["reason"]) == (t0, t1, "case 42")
    [export] = [r.payload for r in site.archive.iter_records(kind="export")]
    assert (export["by"], export["bundle_sha256"]) == ("ana", done["bundle_sha256"])
    report = verify_file(bundle, None, datetime.now(UTC))
    assert report.ok, report.failures
    assert report.camera == "cam1"


def test_preserving_a_camera_without_footage_fails(site: Desk) -> None:
    t0, t1 = _span(site)
    req = request("preserve", camera="cam7", from_at=t0, to_at=t1, reason="case 42")
    status = site.run(req)
    assert status.startswith(
        "failed expected a camera with footage in the archive (cam1), got cam7"
    )
    assert not (site.data / "exports" / f"{req.request_id}.zip").exists()


def test_a_preserve_under_way_when_the_site_stops_still_ends(site: Desk) -> None:
    t0, t1 = _span(site)
    req = request("preserve", camera="cam1", from_at=t0, to_at=t1, reason="case 42")
    site.desk.submit(req)
    assert site.desk.status[req.request_id] == "pending"
    site.exports.close()  # the site's order at stop: the export desk ends what it has …
    site.desk.close()  # … then the incident desk settles, or fails what is left
    assert site.desk.status[req.request_id].startswith("done hold ")
    assert [p["outcome"] for p in site.incidents(req.request_id)] == ["accepted", "done"]


# ---- verify_archive -----------------------------------------------------------------------
def test_verify_with_the_witness_reports_ok_and_saves_the_report(data: Path) -> None:
    witness = data.parent / "witness.log"
    site = make_desk(data, Signing(witness=witness), witness=witness)
    try:
        site.archive.append("event", {"event": "test", "detail": "a record to checkpoint"})
        site.archive.checkpoint()  # written to the witness too
        req = request("verify_archive")
        status = site.run(req)
    finally:
        site.exports.close()
        site.desk.close()
        site.archive.close()
    path = data / "run" / f"verify-{req.request_id}.json"
    assert status.startswith("done archive OK: ")
    assert "witness: 1 checkpoint(s) agree" in status and status.endswith(f"report {path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    report = json.loads(path.read_text())
    assert report["ok"] is True and report["witness"]["path"] == str(witness)
    assert not list((data / "run").glob(".verify-*"))  # the witness copy is gone


def test_verify_of_a_tampered_archive_fails_naming_the_record(site: Desk) -> None:
    seg = list(site.archive.iter_records(kind="segment"))[2]
    path = site.data / "segments" / seg.payload["sha256"][:2] / seg.payload["sha256"]
    path.chmod(0o600)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    req = request("verify_archive")
    status = site.run(req)
    assert status.startswith(f"failed archive BROKEN at record {seg.index}: "), status
    done = site.incidents(req.request_id)[-1]
    assert (done["ok"], done["first_bad"]) == (False, seg.index)


def test_requests_are_declined_once_the_site_stops(site: Desk) -> None:
    site.desk.declining = "expected a running site, got one stopping"
    req = request("revoke_camera", camera="cam1", reason="stolen")
    assert site.run(req) == "failed expected a running site, got one stopping"
    with Inventory.open(site.data) as inv:
        cam = inv.camera("cam1")
    assert cam is not None and cam.revoked_at is None


def test_a_repeated_request_id_runs_once(site: Desk) -> None:
    req = request("verify_archive")
    site.run(req)
    site.desk.submit(req)
    assert len(site.incidents(req.request_id)) == 2
