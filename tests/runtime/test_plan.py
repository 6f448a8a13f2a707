"""Issue 8 §9a: the run's frozen start-up plan (:mod:`kontur.runtime.plan`, ADR 0039)."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import shared

from kontur.archive import Archive
from kontur.clock import OffsetClock, SystemClock
from kontur.config import Config, load_config
from kontur.ingest.inventory import Inventory
from kontur.runtime.inventory_watch import InventoryWatch
from kontur.runtime.plan import (
    HOG_FALLBACK,
    PlanContext,
    RunOptions,
    StartupPlan,
    build_plan,
    camera_configs,
    config_record,
    unsafe_warnings,
)
from kontur.runtime.scratch import make_scratch
from kontur.runtime.supervisor import Supervisor

REPO = Path(__file__).resolve().parents[2]

THREE_CAMERAS = """
cameras:
  - {id: cam1, source: /clips/a.mp4, critical: true}
  - {id: cam2, source: /clips/b.mp4}
  - {id: cam3, source: null}
"""


def _config(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "kontur.yaml"
    path.write_text(text)
    return load_config(path)


def test_source_override_keeps_the_first_camera_only_and_a_missing_source_gets_the_default(
    tmp_path: Path,
) -> None:
    cfg = _config(tmp_path, THREE_CAMERAS)
    cams = camera_configs(cfg, None)
    assert [c.id for c in cams] == ["cam1", "cam2", "cam3"]
    assert cams[0].source == "/clips/a.mp4" and cams[2].source  # the demo's default clip
    only = camera_configs(cfg, "rtsp://cam.example/live")
    assert [(c.id, c.source, c.critical) for c in only] == [
        ("cam1", "rtsp://cam.example/live", True)
    ]
    assert cfg.cameras[0].source == "/clips/a.mp4"  # the config itself is left alone


def test_strictness_per_camera_is_configured_or_enrolled_critical(tmp_path: Path) -> None:
    cfg = _config(tmp_path, THREE_CAMERAS)
    clock = OffsetClock(SystemClock())
    data = tmp_path / "d"
    with Inventory.open(data, clock) as inv:
        inv.init_ca(name="test site CA")
        issued = inv.issue("cam2", tmp_path / "issued")
        inv.enroll("cam2", issued.chain_path.read_bytes(), critical=True)
    archive = Archive.open(data, clock)
    watch = InventoryWatch(data, clock, archive, [])
    try:
        strict = {c.id: watch.strict(c) for c in camera_configs(cfg, None)}
    finally:
        watch.close()
        archive.close()
    # cam1 configured critical, cam2 enrolled critical, cam3 neither
    assert strict == {"cam1": True, "cam2": True, "cam3": False}


def test_the_config_record_is_redacted_and_its_digest_is_of_what_is_archived(
    tmp_path: Path,
) -> None:
    cfg = _config(
        tmp_path, "cameras:\n  - {id: cam1, source: 'rtsp://admin:hunter22@cam.example/live'}\n"
    )
    sha, cfg_json = config_record(cfg)
    assert "hunter22" not in repr(cfg_json)
    assert sha == hashlib.sha256(repr(cfg_json).encode()).hexdigest()
    assert unsafe_warnings(load_config(None)) == []
    unsafe = cfg.model_copy(
        update={"ingest": cfg.ingest.model_copy(update={
            "decoder": cfg.ingest.decoder.model_copy(update={"unsafe_in_process": True})})}
    )  # fmt: skip
    (warning,) = unsafe_warnings(unsafe)
    assert warning.startswith("UNSAFE: ingest.decoder.unsafe_in_process is on")
    partial = cfg.model_copy(
        update={"worker": cfg.worker.model_copy(update={
            "sandbox": cfg.worker.sandbox.model_copy(
                update={"unsafe_allow_partial_isolation": True})})}
    )  # fmt: skip
    (warning,) = unsafe_warnings(partial)
    assert warning.startswith("UNSAFE: worker.sandbox.unsafe_allow_partial_isolation is on")
    assert "partial sandbox" in warning


def _built(tmp_path: Path, fault: str | None) -> tuple[StartupPlan, list[Any], list[str], str]:
    """A real plan: the embedded defaults, a real clip probed in the worker's sandbox, a real
    archive and inventory in which camera ``cam9`` was enrolled and revoked before the run."""
    data = tmp_path / "d"
    clock = OffsetClock(SystemClock())
    with Inventory.open(data, clock) as inv:
        inv.init_ca(name="test site CA")
        issued = inv.issue("cam9", tmp_path / "issued")
        inv.enroll("cam9", issued.chain_path.read_bytes())
        inv.revoke("cam9", "stolen from the loading bay")
    opts = RunOptions(
        config=load_config(None),
        data_dir=data,
        source=str(shared("video", "pets09_s2l1_480x360.avi")),
        inject_fault=fault,
    )
    archive = Archive.open(data, clock)
    notes: list[str] = []
    watch = InventoryWatch(data, clock, archive, notes)
    scratch = make_scratch()
    sha, _ = config_record(opts.config)
    try:
        ctx = PlanContext(opts, clock, archive, Supervisor(data / "run"), scratch, watch, notes)
        plan, _triggers = build_plan(ctx, sha)
        archive.flush()
        records = [(r.kind, r.payload) for r in archive.iter_records(0)]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        watch.close()
        archive.close()
    return plan, records, notes, sha


def test_a_plan_built_from_the_embedded_defaults_and_real_footage(tmp_path: Path) -> None:
    plan, records, notes, sha = _built(tmp_path, "worker-suppress")
    # the steps' records, in their order
    kinds = [k if k != "event" else p["event"] for k, p in records]
    assert kinds[0] == "model" and records[0][1]["model_id"] == "builtin:opencv-hog"
    assert kinds[1] == "stack_checked"
    first = {k: kinds.index(k) for k in ("profile_enrolled", "camera", "placement")}
    assert first["profile_enrolled"] < first["camera"] < first["placement"]
    assert kinds[-1] == "placement" and kinds.count("placement") == 1
    assert "inventory_tampered" not in kinds  # the inventory shows the revocation too
    # what was decided
    assert plan.model is HOG_FALLBACK and plan.config_sha256 == sha
    assert dict(plan.strict) == {"cam1": False}
    (cam,) = plan.cameras
    assert (cam.profile.codec, cam.profile.width, cam.profile.height) == ("h264", 480, 360)
    assert cam.demo_camera is not None  # an unsigned local H.264 clip: signed on the fly
    assert any("signed on the fly by a simulated camera" in n for n in notes)
    assert plan.platform == plan.placements[0].platform == "cpu"
    assert plan.worker["platform"] == "cpu" and plan.worker["config_id"] == "sha256:" + sha[:16]
    assert plan.worker["fault"]["kind"] == "worker-suppress"  # armed in the worker's spec
    assert cam.tamper_fault == "worker-suppress"  # ingest plays tamper-… faults only
    # the revocation archived before the run reaches every camera's ingest from the start
    assert set(plan.revocations.cameras) == {"cam9"}
    assert [r["camera_id"] for r in cam.revocations] == ["cam9"]
    assert plan.fallback_platform() == "cpu" and plan.query_model is not None
    assert plan.query_model.entries == {"detector": "hog"}  # never the fault spec
    # frozen: nothing of the plan can be reassigned or edited in place
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.platform = "gpu"  # type: ignore[misc]
    with pytest.raises(TypeError):
        plan.worker["platform"] = "gpu"  # type: ignore[index]
    with pytest.raises(TypeError):
        plan.strict["cam1"] = True  # type: ignore[index]
    spec = plan.worker_spec()
    spec["fault"]["kind"] = "edited"
    assert plan.worker["fault"]["kind"] == "worker-suppress"


def _assigned(fn: ast.FunctionDef) -> set[str]:
    names = set()
    for node in ast.walk(fn):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        while targets:
            t = targets.pop()
            if isinstance(t, ast.Tuple | ast.List | ast.Starred):
                targets.extend(t.elts if not isinstance(t, ast.Starred) else [t.value])
            elif (
                isinstance(t, ast.Attribute)
                and isinstance(t.value, ast.Name)
                and t.value.id == "self"
            ):
                names.add(t.attr)  # self.x = …, not self.x.y = … (x's own attribute)
    return names


@pytest.mark.parametrize(
    "module", ["perimeter.py", "plan.py", "faultinject.py", "inventory_watch.py"]
)
def test_the_runtime_sets_no_attribute_outside_init(module: str) -> None:
    _no_late_attributes(REPO / "src" / "kontur" / "runtime" / module)


def _no_late_attributes(path: Path) -> None:
    """Every ``self.x = …`` of a class's methods is one its ``__init__`` makes first."""
    tree = ast.parse(path.read_text())
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        methods = [n for n in cls.body if isinstance(n, ast.FunctionDef)]
        init = next((m for m in methods if m.name == "__init__"), None)
        declared = _assigned(init) if init is not None else set()
        for m in methods:
            late = _assigned(m) - declared
            assert not late, f"{cls.name}.{m.name}: sets {sorted(late)} outside __init__"
