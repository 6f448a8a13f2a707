"""What the read routes show: status, events and their proofs, the audit trail, metrics.

Also the degraded cases: no run state or no archive yet is a one-line 503; a supervisor that
no longer reads the pipe makes audited actions refuse (503) while refusals are still answered.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from api_sim import CHEAP_HASHER, MATRIX_REQUESTS, PASSWORD, ROOMY, Site, serve
from prometheus_client.parser import text_string_to_metric_families

from kontur.api import ApiContext, PipeOutbox, UserStore, create_app
from kontur.archive import SegmentStore, VerifierKey, open_checkpoint, verify_inclusion
from kontur.clock import ManualClock


def test_status_summarises_the_run_state(site: Site) -> None:
    with site.client("viewer") as c:
        s = c.get("/status").json()
    expected = ("test-site", "DEGRADED", False, len(MATRIX_REQUESTS))  # a request per role
    assert (s["site"], s["state"], s["stale"], s["pending"]) == expected
    assert s["cameras"][0]["frames"] == 100
    assert s["cameras"][0]["verifier"] == {"agree": 30, "disagree": 2}
    assert s["blocks"][1] == {"name": "ingest:cam1", "alive": False, "restarts": 0}
    assert s["archive"] == {"records": 6, "head": "ab" * 32}
    site.clock.advance(30)
    with site.client("viewer") as c:
        assert c.get("/status").json()["stale"] is True


def test_events_are_event_kinds_only_newest_last(site: Site) -> None:
    with site.client("viewer") as c:
        page = c.get("/events").json()
        decisions = c.get("/events", params={"kind": "decision"}).json()["events"]
        follow = c.get("/events", params={"since_index": 0, "limit": 1}).json()
        rest = c.get("/events", params={"since_index": follow["next_index"]}).json()
    kinds = [e["kind"] for e in page["events"]]
    assert kinds == ["verdict", "decision", "event"]  # no segment, no audit
    assert [e["index"] for e in page["events"]] == sorted(e["index"] for e in page["events"])
    assert page["next_index"] == page["size"] == site.archived.size
    assert [d["index"] for d in decisions] == [site.archived.decision_index]
    assert decisions[0]["payload"]["outcome"] == "OPERATOR" and len(decisions[0]["leaf"]) == 64
    assert [e["kind"] for e in follow["events"]] == ["verdict"]
    assert [e["kind"] for e in rest["events"]] == ["decision", "event"]


def test_an_events_proof_verifies_against_the_signed_checkpoint(site: Site) -> None:
    index = site.archived.decision_index
    with site.client("viewer") as c:
        p = c.get(f"/events/{index}/proof").json()
        leaf = c.get("/events", params={"kind": "decision"}).json()["events"][0]["leaf"]
    assert p["leaf"] == leaf and p["tree_size"] == site.archived.size
    root = bytes.fromhex(p["root"])
    verify_inclusion(
        bytes.fromhex(leaf), index, p["tree_size"], [bytes.fromhex(h) for h in p["proof"]], root
    )
    cp = open_checkpoint(p["checkpoint"], VerifierKey.parse(p["key"]))
    assert (cp.size, cp.root) == (p["tree_size"], root)


def test_audit_is_filtered_by_user_action_outcome_and_time(site: Site) -> None:
    with site.client("auditor") as c:
        every = c.get("/audit").json()["audit"]
        ana = c.get("/audit", params={"user": "ana"}).json()["audit"]
        refused = c.get("/audit", params={"outcome": "refused"}).json()["audit"]
        video = c.get("/audit", params={"action": "video:archive"}).json()["audit"]
        later = c.get("/audit", params={"since": every[-1]["at"]}).json()["audit"]
        none = c.get("/audit", params={"until": every[0]["at"] - 1}).json()["audit"]
    assert [e["payload"]["actor"] for e in every] == ["ana", "mallory"]
    assert [e["payload"]["action"] for e in ana] == ["login"]
    assert (
        [e["payload"]["actor"] for e in refused]
        == ["mallory"]
        == [e["payload"]["actor"] for e in video]
    )
    assert [e["index"] for e in later] == [every[-1]["index"]]
    assert none == []


def _metrics(site: Site) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    with site.client("auditor") as c:
        r = c.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=")
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_metrics_follow_the_prometheus_conventions(site: Site) -> None:
    m = _metrics(site)
    cam = (("camera", "cam1"),)
    assert m["kontur_frames_total"][cam] == 100
    assert m["kontur_frames_skipped_total"][cam] == 3
    assert m["kontur_gop_verdicts_total"][(("camera", "cam1"), ("verdict", "MISSING"))] == 1
    assert m["kontur_decisions_total"][(("camera", "cam1"), ("outcome", "ALLOW"))] == 5
    assert m["kontur_verifier_disagreements_total"][cam] == 2
    assert m["kontur_verifier_agreements_total"][cam] == 30
    assert m["kontur_detections_by_class_total"][(("camera", "cam1"), ("class", "person"))] == 38
    assert m["kontur_decision_latency_seconds_bucket"][(("camera", "cam1"), ("le", "0.25"))] == 2
    assert m["kontur_decision_latency_seconds_gcount"][cam] == 4
    assert m["kontur_degradation_state"][(("state", "DEGRADED"),)] == 1
    assert m["kontur_degradation_state"][(("state", "NORMAL"),)] == 0
    assert m["kontur_degradation_transitions_total"][()] == 2
    assert m["kontur_block_restarts_total"][(("block", "worker"),)] == 1
    assert m["kontur_degradation_triggers_total"][(("trigger", "worker_crash"),)] == 1
    assert m["kontur_accelerator_resets_total"][()] == 3
    assert m["kontur_queue_depth"][(("queue", "worker"),)] == 2
    [info] = m["kontur_build_info"]
    assert dict(info)["release"] == "people-detector 1.2.0"
    for name in m:
        assert name.startswith("kontur_"), name


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bare]:
    """An API over a data dir with users only: no archive, no run state."""
    data_dir = tmp_path_factory.mktemp("bare") / "data"
    users = UserStore.open(data_dir, ManualClock(), CHEAP_HASHER)
    users.add_user("watcher", ["viewer", "investigator", "auditor"], PASSWORD)
    token = users.create_token("watcher", "t")
    read_fd, write_fd = os.pipe()
    outbox = PipeOutbox(write_fd, timeout_s=0.2)
    with serve(create_app(ApiContext(data_dir, users, outbox, ManualClock(), ROOMY))) as url:
        yield Bare(url, {"Authorization": f"Bearer {token}"}, data_dir, write_fd)
    outbox.close()
    os.close(read_fd)
    users.close()


@dataclass(frozen=True)
class Bare:
    url: str
    auth: dict[str, str]
    data_dir: Path
    write_fd: int


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/status", "expected the state of a running perimeter, got none"),
        ("/metrics", "expected the state of a running perimeter, got none"),
        ("/events", "expected an archive in the data dir, got none yet"),
        ("/events/0/proof", "expected an archive in the data dir, got none yet"),
        ("/audit", "expected an archive in the data dir, got none yet"),
    ],
)
def test_no_run_state_or_archive_yet_is_a_one_line_503(bare: Bare, path: str, detail: str) -> None:
    r = httpx.get(bare.url + path, headers=bare.auth)
    assert (r.status_code, r.json()) == (503, {"detail": detail})


def test_what_cannot_be_audited_is_not_done_but_refusals_are_answered(bare: Bare) -> None:
    sha = SegmentStore(bare.data_dir).put(b"\x00\x00\x00\x01segment").sha256
    assert httpx.get(f"{bare.url}/segments/{sha}", headers=bare.auth).status_code == 200
    with contextlib.suppress(BlockingIOError):  # a supervisor that stopped reading: pipe full
        while True:
            os.write(bare.write_fd, b"\n" * 65536)
    r = httpx.get(f"{bare.url}/segments/{sha}", headers=bare.auth)
    assert (r.status_code, r.json()) == (
        503,
        {"detail": "expected the supervisor to read the API's pipe, got no read for 0.2 s"},
    )
    r = httpx.get(bare.url + "/status", headers={"Authorization": "Bearer kontur_nobody"})
    assert r.status_code == 401  # a refusal is answered even when it cannot be audited


def test_pages_of_a_rare_kind_skip_other_kinds_within_the_scan_limit(tmp_path: Path) -> None:
    """A decision behind thousands of detections records is still found: SQLite selects the
    kinds, and ``scan_limit`` bounds only records of the asked kinds."""
    from kontur.api.archive_view import page
    from kontur.archive import Archive

    arc = Archive.open(tmp_path)
    try:
        arc.append("decision", {"n": 0})
        for i in range(3000):
            arc.append("detections", {"n": i})
        arc.append("verdict", {"n": 1})
        arc.flush()
        kinds = frozenset({"decision", "verdict"})
        tail = page(arc, kinds, start=None, limit=10, scan_limit=5)
        assert [r.kind for r in tail.records] == ["decision", "verdict"]
        assert tail.next_index == arc.records
        first = page(arc, kinds, start=0, limit=1, scan_limit=5)
        assert [r.index for r in first.records] == [0] and first.next_index == 1
        rest = page(arc, kinds, start=first.next_index, limit=5, scan_limit=5)
        assert [r.index for r in rest.records] == [3001] and rest.next_index == arc.records
        odd = page(arc, kinds, lambda r: r.payload["n"] == 1, start=None, limit=5, scan_limit=1)
        assert [r.index for r in odd.records] == [3001]
    finally:
        arc.close()
