"""The inventory, the site CA and the freshness state: persistence, restarts, concurrency."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from kontur.archive import Archive
from kontur.clock import ManualClock
from kontur.ingest.freshness import (
    CameraProfile,
    FreshnessPolicy,
    SignedGopFacts,
    spki_of,
)
from kontur.ingest.inventory import (
    CA_KEY_NAME,
    AlreadyRevoked,
    CameraExists,
    CameraUnknown,
    ChainRejected,
    FreshnessGuard,
    FreshnessStore,
    Inventory,
    InventoryCorrupt,
    InventoryInputError,
    SiteCaExists,
    SiteCaMissing,
    parse_profile,
)
from kontur.ingest.verdict import Verdict

T0 = 1_790_000_000.0  # 2026-09-21


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(wall=T0)


@pytest.fixture
def inv(tmp_path: Path, clock: ManualClock) -> Iterator[Inventory]:
    inventory = Inventory.open(tmp_path / "data", clock)
    inventory.init_ca()
    yield inventory
    inventory.close()


def _enrol(inv: Inventory, camera_id: str, **kw: object) -> tuple[Path, x509.Certificate]:
    issued = inv.issue(camera_id, inv.data_dir / "keys")
    pem = issued.chain_path.read_bytes()
    inv.enroll(camera_id, pem, **kw)  # type: ignore[arg-type]
    return issued.chain_path, x509.load_pem_x509_certificates(pem)[0]


def _facts(leaf: x509.Certificate, counter: int, digest: bytes, **kw: object) -> SignedGopFacts:
    end = datetime.fromtimestamp(T0, UTC) - timedelta(seconds=1)
    base: dict[str, object] = {
        "camera_id": "cam1",
        "session_id": "s1",
        "gop_index": counter,
        "signed": True,
        "signature_ok": True,
        "gop_counter": counter,
        "gop_hash": digest,
        "capture_start": end - timedelta(seconds=1),
        "capture_end": end,
        "signer_key_der": spki_of(leaf),
        "certificate_chain": (leaf.public_bytes(Encoding.DER),),
    }
    base.update(kw)
    return SignedGopFacts(**base)  # type: ignore[arg-type]


def _guard(data: Path, clock: ManualClock) -> tuple[Inventory, FreshnessStore, FreshnessGuard]:
    inv = Inventory.open(data, clock)
    store = FreshnessStore.open(data)
    return inv, store, FreshnessGuard(inv, store, FreshnessPolicy(window=8), clock)


def test_init_ca_writes_a_0600_key_and_a_p256_ca(inv: Inventory) -> None:
    key_file = inv.data_dir / CA_KEY_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert b"ENCRYPTED" not in key_file.read_bytes()  # no default password: none at all
    ca = x509.load_der_x509_certificate(inv.site_ca_der())
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    assert ca.issuer == ca.subject
    with pytest.raises(SiteCaExists, match="expected no site CA, got one"):
        inv.init_ca()


def test_enrol_needs_a_site_ca(tmp_path: Path) -> None:
    with Inventory.open(tmp_path) as inv, pytest.raises(SiteCaMissing, match="init-ca"):
        inv.enroll("cam1", b"")


def test_issue_enrol_list(inv: Inventory) -> None:
    _, leaf = _enrol(inv, "cam1", profile=parse_profile("h264,1920x1080,25"), signing_required=True)
    assert stat.S_IMODE((inv.data_dir / "keys" / "cam1.key").stat().st_mode) == 0o600
    [cam] = inv.cameras()
    assert (cam.camera_id, cam.subject, cam.signing_required) == ("cam1", "CN=cam1", True)
    assert cam.profile == CameraProfile("h264", 1920, 1080, 25.0)
    assert cam.key_der == spki_of(leaf) and cam.revoked_at is None


def test_duplicate_id_and_reused_key_are_refused(inv: Inventory) -> None:
    chain, _ = _enrol(inv, "cam1")
    with pytest.raises(CameraExists, match="expected a new camera id, got an enrolled one"):
        inv.enroll("cam1", chain.read_bytes())
    with pytest.raises(CameraExists, match="got the key of camera cam1"):
        inv.enroll("cam2", chain.read_bytes())
    with pytest.raises(CameraExists, match="expected a new camera id"):
        inv.issue("cam1", inv.data_dir / "other")


def test_chain_of_another_ca_is_rejected(inv: Inventory, tmp_path: Path) -> None:
    with Inventory.open(tmp_path / "other", ManualClock(wall=T0)) as rogue:
        rogue.init_ca(name="rogue")
        issued = rogue.issue("cam1", tmp_path / "rogue-keys")
    with pytest.raises(ChainRejected, match="camera cam1: expected a chain to the site CA"):
        inv.enroll("cam1", issued.chain_path.read_bytes())


def test_the_site_ca_itself_is_not_a_camera(inv: Inventory) -> None:
    """The site CA's own certificate chains to the site CA (it is the anchor): enrolled as a
    camera, a key that signs certificates would have been taken for one that signs video."""
    ca_pem = (inv.data_dir / "site-ca.pem").read_bytes()
    with pytest.raises(ChainRejected) as info:
        inv.enroll("cam9", ca_pem)
    assert str(info.value) == (
        "camera cam9: expected the camera's own certificate (CA:FALSE) first, got a CA "
        "certificate (CN=kontur site CA)"
    )
    assert inv.cameras() == []


def test_expired_leaf_is_rejected(inv: Inventory, clock: ManualClock) -> None:
    issued = inv.issue("cam1", inv.data_dir / "keys", days=1)
    clock.advance(3 * 86400)
    with pytest.raises(ChainRejected, match="expected a chain to the site CA valid at"):
        inv.enroll("cam1", issued.chain_path.read_bytes())


@pytest.mark.parametrize(
    ("camera_id", "pem", "fragment"),
    [
        ("bad id", b"", "camera id: expected [A-Za-z0-9_.-]{1,64}, got 'bad id'"),
        ("x" * 65, b"", "camera id: expected"),
        ("..", b"", "camera id: expected"),
        ("cam1", b"not pem", "--cert: expected PEM certificates (leaf first)"),
        ("cam1", b"", "--cert: expected PEM certificates"),
    ],
)
def test_bad_enrol_input(inv: Inventory, camera_id: str, pem: bytes, fragment: str) -> None:
    with pytest.raises(InventoryInputError) as info:
        inv.enroll(camera_id, pem)
    assert fragment in str(info.value)


@pytest.mark.parametrize("text", ["h264", "h264,1920,25", "h264,0x1080,25", "h264,1x1,fast", ""])
def test_bad_profile_text(text: str) -> None:
    with pytest.raises(InventoryInputError, match="profile: expected"):
        parse_profile(text)


def test_revoke_is_recorded_and_irreversible(inv: Inventory, clock: ManualClock) -> None:
    _enrol(inv, "cam1")
    clock.advance(60)
    for bad in ("\x1b[2Jowned", "pay \u202egnp.exe"):  # a terminal escape, a bidi override
        with pytest.raises(InventoryInputError, match="expected text without control or format"):
            inv.revoke("cam1", bad)
    cam = inv.revoke("cam1", "  stolen   from pole 4 ")
    assert cam.revoked_reason == "stolen from pole 4"
    assert cam.revoked_at == datetime.fromtimestamp(T0 + 60, UTC)
    with pytest.raises(AlreadyRevoked, match="expected a camera not yet revoked, got one revoked"):
        inv.revoke("cam1", "again")
    with pytest.raises(CameraUnknown, match="camera nope: expected an enrolled camera, got none"):
        inv.revoke("nope", "x")
    with pytest.raises(InventoryInputError, match=r"--reason: expected 1\.\.500 characters"):
        inv.revoke("cam1", "   ")
    conn = sqlite3.connect(inv.data_dir / "inventory.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="revocation is irreversible"):
        conn.execute("UPDATE cameras SET revoked_at = NULL")
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        conn.execute("DELETE FROM cameras")
    conn.close()


def test_changes_reach_the_archive_through_the_outbox(inv: Inventory) -> None:
    _enrol(inv, "cam1")
    inv.revoke("cam1", "stolen")
    assert [p["action"] for _, p in inv.pending_events()] == ["init_ca", "enrol", "revoke"]
    with Archive.open(inv.data_dir) as archive:
        assert inv.drain_to_archive(archive) == 3
        assert inv.drain_to_archive(archive) == 0
        records = list(archive.iter_records())
    assert [(r.kind, r.payload["action"]) for r in records] == [
        ("camera", "init_ca"),
        ("camera", "enrol"),
        ("camera", "revoke"),
    ]
    assert records[2].payload["reason"] == "stolen" and records[2].payload["event_id"] == 3
    assert inv.pending_events() == []


def test_not_a_store_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "inventory.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InventoryCorrupt, match="expected a kontur store"):
        Inventory.open(tmp_path)


def test_guard_end_to_end_and_state_survives_a_restart(inv: Inventory, clock: ManualClock) -> None:
    _, leaf = _enrol(inv, "cam1")
    data = inv.data_dir
    i1, s1, guard = _guard(data, clock)
    assert guard.check(_facts(leaf, 10, b"a" * 32)).verdict is Verdict.AUTHENTIC
    assert guard.check(_facts(leaf, 11, b"b" * 32)).verdict is Verdict.AUTHENTIC
    i1.close()
    s1.close()  # "restart"
    i2, s2, guard = _guard(data, clock)
    r = guard.check(_facts(leaf, 12, b"a" * 32))
    assert r.verdict is Verdict.REPLAYED and "GOP 10 (counter 10) of camera cam1" in r.reasons[0]
    r = guard.check(_facts(leaf, 11, b"c" * 32))
    assert r.verdict is Verdict.REPLAYED and "got 11 again" in r.reasons[0]
    r = guard.check(_facts(leaf, 3, b"d" * 32))
    assert (
        r.verdict is Verdict.REPLAYED
        and "expected GOP counter > 3 (highest 11, window 8)" in (r.reasons[0])
    )
    unsigned = _facts(leaf, 0, b"", signed=False, signature_ok=False, gop_hash=None)
    r = guard.check(unsigned)
    assert r.verdict is Verdict.DOWNGRADE and "sent signed GOPs before" in r.reasons[0]
    assert s2.hashes() == 2
    i2.close()
    s2.close()


def test_hash_replayed_on_another_camera_is_replayed(inv: Inventory, clock: ManualClock) -> None:
    _, leaf1 = _enrol(inv, "cam1")
    _, leaf2 = _enrol(inv, "cam2")
    _, _, guard = _guard(inv.data_dir, clock)
    assert guard.check(_facts(leaf1, 1, b"h" * 32)).verdict is Verdict.AUTHENTIC
    r = guard.check(_facts(leaf2, 1, b"h" * 32, camera_id="cam2", session_id="z"))
    assert r.verdict is Verdict.REPLAYED and "of camera cam1, session s1" in r.reasons[0]


def test_forged_gop_does_not_poison_the_state(inv: Inventory, clock: ManualClock) -> None:
    _, leaf = _enrol(inv, "cam1")
    _, store, guard = _guard(inv.data_dir, clock)
    forged = guard.check(_facts(leaf, 5, b"f" * 32, signature_ok=False))
    assert forged.verdict is Verdict.NOT_AUTHENTIC and not forged.commit
    assert guard.check(_facts(leaf, 5, b"f" * 32)).verdict is Verdict.AUTHENTIC
    assert store.hashes() == 1


def test_state_rebuilds_from_seen_payloads(
    inv: Inventory, clock: ManualClock, tmp_path: Path
) -> None:
    _, leaf = _enrol(inv, "cam1")
    _, _, guard = _guard(inv.data_dir, clock)
    payloads = [guard.check(_facts(leaf, n, bytes([n]) * 32)).seen_payload() for n in (1, 2, 3)]
    fresh = FreshnessStore.open(tmp_path / "rebuilt")
    for p in payloads:
        fresh.absorb(p, window=8)
    rebuilt = FreshnessGuard(inv, fresh, FreshnessPolicy(window=8), clock)
    assert rebuilt.check(_facts(leaf, 9, bytes([2]) * 32)).verdict is Verdict.REPLAYED
    assert rebuilt.check(_facts(leaf, 3, b"q" * 32)).verdict is Verdict.REPLAYED
    assert rebuilt.check(_facts(leaf, 4, b"q" * 32)).verdict is Verdict.AUTHENTIC
    with pytest.raises(InventoryCorrupt, match="gop_seen payload"):
        fresh.absorb({"commit": True}, window=8)


def test_prune_forgets_old_hashes(inv: Inventory, clock: ManualClock) -> None:
    _, leaf = _enrol(inv, "cam1")
    _, store, guard = _guard(inv.data_dir, clock)
    guard.check(_facts(leaf, 1, b"1" * 32))
    clock.advance(100)
    guard.check(_facts(leaf, 2, b"2" * 32))
    assert store.prune_hashes(before=T0 + 50) == 1 and store.hashes() == 1


_REVOKE = """
import sys
from pathlib import Path
from kontur.ingest.inventory import Inventory
with Inventory.open(Path(sys.argv[1])) as inv:
    inv.revoke("cam1", "revoked from another process")
"""


def test_revocation_by_another_process_applies_to_the_next_gop(
    inv: Inventory, clock: ManualClock
) -> None:
    _, leaf = _enrol(inv, "cam1")
    reader, _, guard = _guard(inv.data_dir, clock)
    assert guard.check(_facts(leaf, 1, b"1" * 32)).verdict is Verdict.AUTHENTIC
    subprocess.run([sys.executable, "-c", _REVOKE, str(inv.data_dir)], check=True, timeout=60)
    r = guard.check(_facts(leaf, 2, b"2" * 32))
    assert r.verdict is Verdict.REVOKED
    assert "revoked from another process" in r.reasons[0]
    reader.close()


def test_per_gop_cost_stays_small_with_many_hashes(inv: Inventory, clock: ManualClock) -> None:
    _, leaf = _enrol(inv, "cam1")
    _, store, guard = _guard(inv.data_dir, clock)
    chain = _facts(leaf, 0, b"").certificate_chain
    n = 300
    start = time.perf_counter()
    for i in range(n):
        facts = _facts(leaf, i, i.to_bytes(32, "big"), certificate_chain=chain if i % 30 else ())
        assert guard.check(facts).verdict is Verdict.AUTHENTIC
    per_gop_ms = (time.perf_counter() - start) / n * 1000
    assert store.hashes() == n
    assert per_gop_ms < 50, per_gop_ms  # a 25 fps camera with 1 s GOPs closes one GOP a second
