"""The robustness audit in a signed release (ADR 0033): the audit slot, re-signing as a new
version with the report beside the model, and the site's floor checked at install."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import run_kontur
from tests.release.conftest import MODEL_BYTES, Builder, Keyring

from kontur.clock import ManualClock
from kontur.config import load_config
from kontur.errors import ConfigError
from kontur.release import (
    MANIFEST_NAME,
    AuditPolicy,
    AuditRecord,
    AuditRefused,
    ManifestError,
    ReleaseStore,
    SignatureInvalid,
    Trust,
    build_audited_release,
    verify_release,
)
from kontur.runtime.models import audit_policy, prepare_release

REPORT = b'{"schema": "kontur.audit-report/1"}\n'


def record(model_digest: str = "0" * 64, **over: Any) -> AuditRecord:
    doc: dict[str, Any] = {
        "schema": "kontur.audit/1",
        "report": "audit.json",
        "report_sha256": hashlib.sha256(REPORT).hexdigest(),
        "model_digest": model_digest,
        "audited": datetime.now(UTC),
        "clip": "pets09.avi",
        "frames": 200,
        "corruptions": 105,
        "patch_queries": 2000,
        "trigger_budget": 2000,
        "clean_ap50": 0.8,
        "mpc": 0.6,
        "rpc": 0.75,
        "trigger": "pass",
        "patch_recall_drop": 0.2,
    }
    doc |= over
    if "rpc" in over and "mpc" not in over:
        doc["mpc"] = over["rpc"] * doc["clean_ap50"]
    return AuditRecord.model_validate(doc, strict=False)


def audited(
    build: Builder, keyring: Keyring, clock: ManualClock, tmp_path: Path, **over: Any
) -> Path:
    n = len(list(tmp_path.iterdir()))
    src = verify_release(build(3, out=f"src-{n}"), public_key=keyring.key.public_key, clock=clock)
    m = src.manifest.manifest
    over.setdefault("model_digest", m.model_digest(src.file_digests))
    out = tmp_path / f"audited-{n}"
    built = build_audited_release(
        src, record(**over), REPORT, out, key=keyring.key.private_key, clock=clock
    )
    assert built.manifest.manifest.expires == m.expires  # an audit does not extend a life
    return built.directory


def test_audited_release_is_a_new_signed_version_with_the_report(
    build: Builder, keyring: Keyring, clock: ManualClock, tmp_path: Path
) -> None:
    d = audited(build, keyring, clock, tmp_path)
    rel = verify_release(d, public_key=keyring.key.public_key, clock=clock)
    m = rel.manifest.manifest
    assert m.version == 4
    assert m.robustness_audit is not None and m.robustness_audit.rpc == 0.75
    assert rel.files["audit.json"] == REPORT
    assert rel.files["tiny.onnx"] == MODEL_BYTES
    assert sorted(rel.file_digests) == ["audit.json", MANIFEST_NAME, "tiny.onnx"]


def test_a_changed_report_breaks_the_signature(
    build: Builder, keyring: Keyring, clock: ManualClock, tmp_path: Path
) -> None:
    d = audited(build, keyring, clock, tmp_path)
    (d / "audit.json").write_bytes(REPORT.replace(b"1", b"2"))
    with pytest.raises(SignatureInvalid, match=r"changed file audit\.json"):
        verify_release(d, public_key=keyring.key.public_key, clock=clock)


def test_an_audit_of_other_model_bytes_is_not_signed(
    build: Builder, keyring: Keyring, clock: ManualClock, tmp_path: Path
) -> None:
    with pytest.raises(ManifestError, match="expected an audit of tiny@3's model"):
        audited(build, keyring, clock, tmp_path, model_digest="0" * 64)


def test_the_model_digest_covers_thresholds_and_every_model_file(
    build: Builder, keyring: Keyring, clock: ManualClock
) -> None:
    rel = verify_release(build(3), public_key=keyring.key.public_key, clock=clock)
    m = rel.manifest.manifest
    base = m.model_digest(rel.file_digests)
    looser = m.model_copy(update={"thresholds": m.thresholds.model_copy(update={"score": 0.9})})
    assert looser.model_digest(rel.file_digests) != base
    other = {**rel.file_digests, "tiny.onnx": "1" * 64}
    assert m.model_digest(other) != base


def test_an_rpc_that_is_not_mpc_over_clean_is_refused() -> None:
    with pytest.raises(ValueError, match=r"rpc: expected mpc / clean_ap50 = 0\.750000"):
        record(rpc=0.9, mpc=0.6)


def test_report_bytes_must_match_the_record(
    build: Builder, keyring: Keyring, clock: ManualClock, tmp_path: Path
) -> None:
    with pytest.raises(ManifestError, match="expected report bytes"):
        audited(build, keyring, clock, tmp_path, report_sha256="1" * 64)


def test_version_must_rise(
    build: Builder, keyring: Keyring, clock: ManualClock, tmp_path: Path
) -> None:
    src = verify_release(build(3), public_key=keyring.key.public_key, clock=clock)
    with pytest.raises(ManifestError, match="expected more than tiny's 3, got 3"):
        build_audited_release(
            src,
            record(src.manifest.manifest.model_digest(src.file_digests)),
            REPORT,
            tmp_path / "x",
            key=keyring.key.private_key,
            version=3,
            clock=clock,
        )


def test_a_report_name_that_is_a_model_file_is_refused() -> None:
    with pytest.raises(ValueError, match="plain file name"):
        record(report="../audit.json")
    with pytest.raises(ValueError, match="plain file name"):
        record(report=MANIFEST_NAME)


@pytest.mark.parametrize(
    ("over", "policy", "message"),
    [
        ({"trigger": "flagged"}, AuditPolicy(), "expected trigger scan pass, got flagged"),
        ({"rpc": 0.4}, AuditPolicy(min_rpc=0.5), r"expected rPC >= 0.500, got 0.400"),
        ({"patch_recall_drop": 0.5}, AuditPolicy(max_patch_drop=0.3), "patch recall drop"),
    ],
)
def test_install_refuses_an_audit_below_the_floor(
    build: Builder,
    keyring: Keyring,
    clock: ManualClock,
    tmp_path: Path,
    over: dict[str, Any],
    policy: AuditPolicy,
    message: str,
) -> None:
    d = audited(build, keyring, clock, tmp_path, **over)
    store = ReleaseStore(tmp_path / "store")
    trust = Trust.key(keyring.key.public_key)
    with pytest.raises(AuditRefused, match=message):
        store.install(d, trust, clock, expected_names=("tiny",), audit_policy=policy)
    assert store.installed("tiny") == ()


def test_install_requires_an_audit_only_when_the_policy_does(
    build: Builder, keyring: Keyring, clock: ManualClock, tmp_path: Path
) -> None:
    store = ReleaseStore(tmp_path / "store")
    trust = Trust.key(keyring.key.public_key)
    plain = build(3)
    with pytest.raises(AuditRefused, match="expected a robustness audit"):
        store.install(
            plain, trust, clock, expected_names=("tiny",), audit_policy=AuditPolicy(required=True)
        )
    with pytest.raises(AuditRefused, match="expected a robustness audit"):  # a floor requires one
        store.install(
            plain, trust, clock, expected_names=("tiny",), audit_policy=AuditPolicy(min_rpc=0.1)
        )
    store.install(plain, trust, clock, expected_names=("tiny",), audit_policy=AuditPolicy())
    d = audited(build, keyring, clock, tmp_path)
    ok = store.install(
        d, trust, clock, expected_names=("tiny",), audit_policy=AuditPolicy(True, 0.7, 0.3)
    )
    assert ok.manifest.manifest.version == 4
    assert store.installed("tiny") == (3, 4)


def test_install_cli_enforces_the_floor(
    build: Builder, keyring: Keyring, clock: ManualClock, tmp_path: Path
) -> None:
    d = audited(build, keyring, clock, tmp_path, rpc=0.4)
    common = ("--pub", str(keyring.key.public_key), "--name", "tiny")
    store = ("--store", str(tmp_path / "store"))
    r = run_kontur("model", "install", str(d), *common, *store, "--min-rpc", "0.5")
    assert r.returncode == 1
    assert r.stderr.strip() == "kontur: error: release tiny@4: expected rPC >= 0.500, got 0.400"
    r = run_kontur("model", "install", str(build(3)), *common, *store, "--require-audit")
    assert r.returncode == 1 and "expected a robustness audit" in r.stderr
    r = run_kontur("model", "verify", str(d), *common, "--json", "-")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["audit"]["rpc"] == 0.4


def test_the_site_refuses_at_start_what_its_config_floor_refuses(
    build: Builder, keyring: Keyring, clock: ManualClock, tmp_path: Path
) -> None:
    base = (
        "site: s\ncameras: [{id: c}]\nactions: {notify: {critical: false}}\n"
        "placement: {sla: {latency_ms_max: 250, throughput_fps_min: 5, accuracy_min: 0.8}}\n"
    )
    cfg = tmp_path / "site.yaml"
    cfg.write_text(base + "release: {names: [tiny], audit: {required: true, min_rpc: 0.8}}\n")
    floor = audit_policy(load_config(cfg).release.audit)
    assert floor == AuditPolicy(required=True, min_rpc=0.8)
    trust = Trust.key(keyring.key.public_key)
    common: dict[str, Any] = {"trust": trust, "clock": clock, "release_names": ("tiny",)}
    with pytest.raises(AuditRefused, match="expected a robustness audit"):
        prepare_release(
            data_dir=tmp_path / "d0", release_dir=build(3), audit_policy=floor, **common
        )
    low = audited(build, keyring, clock, tmp_path, rpc=0.75)
    with pytest.raises(AuditRefused, match=r"expected rPC >= 0.800, got 0.750"):
        prepare_release(data_dir=tmp_path / "d1", release_dir=low, audit_policy=floor, **common)
    ok = prepare_release(
        data_dir=tmp_path / "d2", release_dir=low, audit_policy=AuditPolicy(min_rpc=0.7), **common
    )
    assert ok.to_summary()["audit"]["rpc"] == 0.75
    bad = tmp_path / "bad.yaml"
    bad.write_text(base + "release: {audit: {min_rpc: 2}}\n")
    with pytest.raises(ConfigError, match=r"release\.audit\.min_rpc"):
        load_config(bad)
