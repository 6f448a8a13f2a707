"""The archive is the authority on revocation (ADR 0021): an edited inventory un-revokes nothing.

Real keys, a real inventory and a real archive; the attacker is someone with write access to
the data dir who drops the "irreversible" triggers of ``inventory.sqlite`` with sqlite3.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from kontur.archive import Archive
from kontur.clock import ManualClock
from kontur.ingest.freshness import FreshnessPolicy, SignedGopFacts, fingerprint, spki_of
from kontur.ingest.inventory import FreshnessGuard, FreshnessStore, Inventory
from kontur.ingest.revocation import RevocationRecordInvalid, Revocations, Revoked, scan
from kontur.ingest.verdict import Verdict

T0 = 1_790_000_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(wall=T0)


@pytest.fixture
def data(tmp_path: Path, clock: ManualClock) -> Iterator[Path]:
    with Inventory.open(tmp_path / "d", clock) as inv:
        inv.init_ca()
    yield tmp_path / "d"


def _enrol(data: Path, clock: ManualClock, camera_id: str) -> x509.Certificate:
    with Inventory.open(data, clock) as inv:
        pem = inv.issue(camera_id, data.parent / "keys").chain_path.read_bytes()
        inv.enroll(camera_id, pem)
    return x509.load_pem_x509_certificates(pem)[0]


def _archive_pending(data: Path, clock: ManualClock) -> None:
    with Inventory.open(data, clock) as inv, Archive.open(data) as archive:
        inv.drain_to_archive(archive)


def _archived(data: Path) -> Revocations:
    with Archive.open_readonly(data) as archive:
        return scan(archive.iter_records(kind="camera"))


def _revoke_index(data: Path) -> int:
    with Archive.open_readonly(data) as archive:
        revokes = [
            r for r in archive.iter_records(kind="camera") if r.payload["action"] == "revoke"
        ]
    return revokes[0].index


def _tamper(data: Path, sql: str) -> None:
    """The attacker: drop the triggers that make revocation irreversible, then edit."""
    conn = sqlite3.connect(data / "inventory.sqlite")
    with conn:
        conn.execute("DROP TRIGGER cameras_no_unrevoke")
        conn.execute("DROP TRIGGER cameras_no_delete")
        conn.execute(sql)
        conn.execute('DELETE FROM events WHERE payload LIKE \'%"action": "revoke"%\'')
    conn.close()


def _facts(leaf: x509.Certificate, camera_id: str = "cam1") -> SignedGopFacts:
    end = datetime.fromtimestamp(T0, UTC) - timedelta(seconds=1)
    return SignedGopFacts(
        camera_id=camera_id,
        session_id="s1",
        gop_index=1,
        signed=True,
        signature_ok=True,
        gop_counter=1,
        gop_hash=hashlib.sha256(camera_id.encode()).digest(),
        capture_start=end - timedelta(seconds=1),
        capture_end=end,
        signer_key_der=spki_of(leaf),
        certificate_chain=(leaf.public_bytes(Encoding.DER),),
    )


def _check(data: Path, clock: ManualClock, leaf: x509.Certificate, camera_id: str) -> tuple:
    revocations = _archived(data)
    with Inventory.open(data, clock) as inv:
        store = FreshnessStore.open(data.parent / "scratch")
        guard = FreshnessGuard(inv, store, FreshnessPolicy(), clock, revocations)
        result = guard.check(_facts(leaf, camera_id))
        seen = {camera_id: inv.camera(camera_id)}
        store.close()
    return result, revocations.disagreements(seen)


def test_the_guard_holds_an_archived_revocation_the_inventory_lost(
    data: Path, clock: ManualClock
) -> None:
    leaf = _enrol(data, clock, "cam1")
    with Inventory.open(data, clock) as inv:
        inv.revoke("cam1", "stolen from pole 4")
    _archive_pending(data, clock)
    _tamper(data, "UPDATE cameras SET revoked_at = NULL, revoked_reason = NULL")
    with Inventory.open(data, clock) as inv:
        cam = inv.camera("cam1")
        assert cam is not None and cam.revoked_at is None  # the inventory alone is fooled
    result, tampered = _check(data, clock, leaf, "cam1")
    index = _revoke_index(data)
    assert result.verdict is Verdict.REVOKED
    assert f"stolen from pole 4 (archive record {index})" in result.reasons[0]
    assert "expected inventory.sqlite to show it, got no revocation there" in result.reasons[0]
    assert [(c, r.index) for c, r in tampered] == [("cam1", index)]


def test_a_deleted_camera_row_is_still_revoked(data: Path, clock: ManualClock) -> None:
    leaf = _enrol(data, clock, "cam1")
    with Inventory.open(data, clock) as inv:
        inv.revoke("cam1", "stolen")
    _archive_pending(data, clock)
    _tamper(data, "DELETE FROM cameras WHERE camera_id = 'cam1'")
    result, tampered = _check(data, clock, leaf, "cam1")
    assert result.verdict is Verdict.REVOKED and not result.commit
    assert "(archive record" in result.reasons[0]
    assert [c for c, _ in tampered] == ["cam1"]


def test_a_revoked_key_enrolled_again_under_another_id_is_revoked(
    data: Path, clock: ManualClock
) -> None:
    leaf = _enrol(data, clock, "cam1")
    with Inventory.open(data, clock) as inv:
        inv.revoke("cam1", "stolen")
    _archive_pending(data, clock)
    _tamper(data, "DELETE FROM cameras WHERE camera_id = 'cam1'")
    chain = (data.parent / "keys" / "cam1.pem").read_bytes()
    with Inventory.open(data, clock) as inv:
        inv.enroll("cam9", chain)  # the inventory no longer knows the key was revoked
    _archive_pending(data, clock)
    result, tampered = _check(data, clock, leaf, "cam9")
    assert result.verdict is Verdict.REVOKED
    assert "camera cam1 was revoked" in result.reasons[0]
    assert [(c, r.camera_id) for c, r in tampered] == [("cam9", "cam1")]
    assert _archived(data).keys[fingerprint(spki_of(leaf))].camera_id == "cam1"


def test_an_agreeing_inventory_keeps_its_own_reason(data: Path, clock: ManualClock) -> None:
    leaf = _enrol(data, clock, "cam1")
    with Inventory.open(data, clock) as inv:
        inv.revoke("cam1", "stolen")
    _archive_pending(data, clock)
    result, tampered = _check(data, clock, leaf, "cam1")
    assert result.verdict is Verdict.REVOKED and tampered == []
    assert "archive record" not in result.reasons[0]
    other = _enrol(data, clock, "cam2")
    _archive_pending(data, clock)
    result, tampered = _check(data, clock, other, "cam2")
    assert result.verdict is Verdict.AUTHENTIC and tampered == []


def test_a_later_enrolment_does_not_undo_an_archived_revocation() -> None:
    class Rec:
        def __init__(self, index: int, payload: dict) -> None:
            self.index, self.kind, self.payload = index, "camera", payload

    records = [
        Rec(0, {"action": "enrol", "camera_id": "c", "key_sha256": "k1"}),
        Rec(1, {"action": "revoke", "camera_id": "c", "reason": "lost", "at": "T"}),
        Rec(2, {"action": "enrol", "camera_id": "c", "key_sha256": "k2"}),
        Rec(3, {"action": "revoke", "camera_id": "c", "reason": "again", "at": "U"}),
    ]
    found = scan(records)
    assert found.cameras["c"] == Revoked("c", 1, "T", "lost", "k1")
    assert found.find("other", ("k1",)) == found.cameras["c"]
    assert found.find("other", ("k2", None)) is None
    assert Revocations.from_json(found.to_json()) == found


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        ({"camera_id": "c"}, "revocations: expected a list, got dict"),
        (["c"], "revocation: expected an object, got str"),
        ([{"index": 1, "reason": "x"}], "expected a camera_id, got None"),
        ([{"camera_id": "c", "index": -1, "reason": "x"}], "expected an index >= 0, got -1"),
        ([{"camera_id": "c", "index": True, "reason": "x"}], "expected an index >= 0, got True"),
        ([{"camera_id": "c", "index": 1}], "expected a reason, got None"),
        ([{"camera_id": "c", "index": 1, "reason": "x", "key_sha256": 7}], "key_sha256, got 7"),
    ],
)
def test_a_malformed_revocation_is_refused(rows: object, fragment: str) -> None:
    with pytest.raises(RevocationRecordInvalid, match=fragment):
        Revocations.from_json(rows)


def test_iter_records_by_kind_reads_only_that_kind(tmp_path: Path) -> None:
    with Archive.open(tmp_path / "a", batch_size=1000) as archive:
        for i in range(600):
            archive.append("camera" if i % 250 == 7 else "event", {"i": i})
        archive.flush()
        got = [(r.index, r.kind) for r in archive.iter_records(kind="camera")]
        assert got == [(7, "camera"), (257, "camera"), (507, "camera")]
        assert [r.index for r in archive.iter_records(300, kind="camera")] == [507]
        assert len(list(archive.iter_records())) == 600
