"""The approved inference stack (issue 13 §3): runtime, EP and driver versions against the
site's allow-list (:mod:`kontur.placement.allowlist`), read by the supervisor's own probe
(:mod:`kontur.placement.probe`), never asked of the worker.

The host is real where it can be (this interpreter's installed metadata); a kernel driver this
machine does not load is a directory tree standing in for ``/sys/module``.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from kontur.config import AllowlistConfig, load_config
from kontur.placement import probe as probe_mod
from kontur.placement.allowlist import (
    Allowlist,
    StackFacts,
    canonical_name,
    components_for,
    judge,
    version_matches,
)
from kontur.placement.probe import HostProbe, driver_version, module_distributions

ORT = {"onnxruntime": {"onnxruntime": "1.32.0"}}
PINNED = StackFacts(ORT, {"nvidia": "550.54.15", "intel_vpu": None})


def facts(
    ort: str = "1.32.0", nvidia: str | None = "550.54.15", dist: str = "onnxruntime"
) -> StackFacts:
    return StackFacts({"onnxruntime": {dist: ort}}, {"nvidia": nvidia, "intel_vpu": None})


@pytest.mark.parametrize(
    ("version", "pattern", "matches"),
    [
        ("1.32.0", "1.32.0", True),
        ("1.32.0", "1.32.*", True),
        ("1.320", "1.32.*", False),
        ("1.32.0", "1.3", False),
        ("550.54.15", "550.*", True),
        ("1.32.0", "1?32.0", False),  # only * is special
        ("1a32.0", "1.32.0", False),  # a dot is a dot
    ],
)
def test_version_patterns(version: str, pattern: str, matches: bool) -> None:
    assert version_matches(version, pattern) is matches


def test_distribution_names_compare_as_pep503() -> None:
    assert canonical_name("OpenCV_Python.Headless") == "opencv-python-headless"
    allow = Allowlist({"ONNXRuntime": ("1.32.*",)})
    assert judge("cpu", "onnx", facts(), allow, PINNED).approved


#: (name, platform, facts, allow-list, fragment of the one reason, or None when approved)
VECTORS = [
    ("cpu_unlisted_as_at_start", "cpu", facts(), Allowlist(), None),
    ("cpu_listed_and_matching", "cpu", facts(), Allowlist({"onnxruntime": ("1.32.*",)}), None),
    (
        "runtime_upgraded_under_the_site",
        "cpu",
        facts(ort="1.33.0"),
        Allowlist(),
        "runtime onnxruntime: expected 1.32.0 as found at start (not listed in "
        "placement.allowlist.runtimes), got 1.33.0",
    ),
    (
        "runtime_not_on_the_list",
        "cpu",
        facts(),
        Allowlist({"onnxruntime": ("1.31.*",)}),
        "runtime onnxruntime: expected a version in ['1.31.*'] (placement.allowlist.runtimes), "
        "got 1.32.0",
    ),
    (
        "runtime_uninstalled",
        "cpu",
        StackFacts({"onnxruntime": {}}, {}),
        Allowlist(),
        "runtime module onnxruntime: expected an installed distribution providing it, got none",
    ),
    (
        "another_distribution_now_provides_it",
        "cpu",
        facts(dist="onnxruntime-gpu"),
        Allowlist(),
        "runtime onnxruntime-gpu: expected nothing as found at start",
    ),
    (
        "gpu_driver_never_trusted_by_default",
        "gpu",
        facts(),
        Allowlist(),
        "driver nvidia of gpu: expected a version listed in placement.allowlist.drivers, got "
        "550.54.15 (no entry for nvidia)",
    ),
    ("gpu_driver_listed", "gpu", facts(), Allowlist(drivers={"nvidia": ("550.54.*",)}), None),
    (
        "gpu_driver_updated",
        "gpu",
        facts(nvidia="555.42.02"),
        Allowlist(drivers={"nvidia": ("550.54.*",)}),
        "driver nvidia of gpu: expected a version in ['550.54.*'], got 555.42.02",
    ),
    (
        "gpu_driver_unloaded",
        "gpu",
        facts(nvidia=None),
        Allowlist(drivers={"nvidia": ("550.54.*",)}),
        "driver nvidia of gpu: expected it loaded, got none",
    ),
]


@pytest.mark.parametrize(
    ("platform", "found", "allow", "reason"),
    [v[1:] for v in VECTORS],
    ids=[v[0] for v in VECTORS],
)
def test_stack_verdicts(
    platform: str, found: StackFacts, allow: Allowlist, reason: str | None
) -> None:
    verdict = judge(platform, "onnx", found, allow, PINNED)
    assert verdict.platform == platform
    if reason is None:
        assert verdict.approved and verdict.reasons == ()
    else:
        assert not verdict.approved
        assert len(verdict.reasons) == 1 and verdict.reasons[0].startswith(reason)


def test_the_cpu_needs_no_driver_and_each_accelerator_its_own() -> None:
    assert components_for("onnx", "cpu") == ("onnxruntime", None)
    assert components_for("onnx", "gpu") == ("onnxruntime", "nvidia")
    assert components_for("openvino", "gpu") == ("openvino", "i915")
    assert components_for("openvino", "npu") == ("openvino", "intel_vpu")
    assert components_for("opencv", "cpu") == ("cv2", None)
    verdict = judge("gpu", "opencv", StackFacts({"cv2": {"opencv-python": "4.14"}}, {}),
                    Allowlist(), StackFacts({"cv2": {"opencv-python": "4.14"}}, {}))  # fmt: skip
    assert verdict.reasons == ("gpu: expected a driver known for runtime opencv, got none",)
    with pytest.raises(ValueError, match="expected a runtime among"):
        components_for("tensorflow", "cpu")


def test_the_verdict_lists_what_it_judged() -> None:
    verdict = judge("gpu", "onnx", facts(), Allowlist(drivers={"nvidia": ("550.*",)}), PINNED)
    assert verdict.to_json() == {
        "platform": "gpu",
        "approved": True,
        "reasons": [],
        "components": {"runtime:onnxruntime": "1.32.0", "driver:nvidia": "550.54.15"},
    }


# ---- the site config ---------------------------------------------------------------------------
def test_the_default_config_lists_nothing() -> None:
    cfg = load_config(None).placement.allowlist
    assert cfg.runtimes == {} and cfg.drivers == {} and cfg.check_interval_s == 5.0


@pytest.mark.parametrize("bad", [(), ("1.32; rm -rf /",), ("",), ("x" * 200,)])
def test_a_malformed_version_pattern_is_refused(bad: tuple[str, ...]) -> None:
    with pytest.raises(
        ValueError, match=r"placement\.allowlist\.drivers\.nvidia: expected one or more"
    ):
        AllowlistConfig(drivers={"nvidia": bad})


# ---- the probe, on this host -------------------------------------------------------------------
def test_the_probe_reads_the_installed_runtime_without_asking_it(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    probe = HostProbe(["onnxruntime"], ["nvidia"], sys_module=tmp_path)
    found = probe.facts()
    dists = found.modules["onnxruntime"]
    assert dists and all(v == importlib.metadata.version(d) for d, v in dists.items())
    assert ort.__version__ in dists.values()
    assert found.drivers == {"nvidia": None}  # not loaded here


def test_a_driver_version_is_the_kernels(tmp_path: Path) -> None:
    (tmp_path / "nvidia").mkdir()
    (tmp_path / "nvidia" / "version").write_text("550.54.15\n")
    (tmp_path / "intel_vpu").mkdir()  # in-tree: no version file of its own
    assert driver_version("nvidia", tmp_path) == "550.54.15"
    assert driver_version("intel_vpu", tmp_path) == f"kernel-{os.uname().release}"
    assert driver_version("amdgpu", tmp_path) is None
    probe = HostProbe(["cv2"], ["nvidia", "intel_vpu"], sys_module=tmp_path)
    assert probe.facts().drivers == {
        "nvidia": "550.54.15",
        "intel_vpu": f"kernel-{os.uname().release}",
    }
    # reloaded at another version while the site runs: the next read sees it
    (tmp_path / "nvidia" / "version").write_text("555.42.02\n")
    assert probe.facts().drivers["nvidia"] == "555.42.02"


def _install(site: Path, dist: str, module: str) -> None:
    """A minimal installed distribution ``dist`` providing ``module``, as pip leaves one."""
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "top_level.txt").write_text(f"{module}\n")


def test_one_walk_serves_until_a_distribution_is_installed_or_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    walks = []
    real = probe_mod.metadata.packages_distributions

    def counted() -> Any:
        walks.append(1)
        return real()

    monkeypatch.setattr(probe_mod.metadata, "packages_distributions", counted)
    monkeypatch.setattr(probe_mod, "_walked", None)
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "kontur-probe-a", "probe_mod_x")
    monkeypatch.setattr(sys, "path", [str(site)])  # no folder another test may write to
    os.utime(site, ns=(0, 0))  # settled long ago
    assert module_distributions(["probe_mod_x"]) == {"probe_mod_x": ("kontur-probe-a",)}
    assert module_distributions(["probe_mod_x"]) == {"probe_mod_x": ("kontur-probe-a",)}
    assert len(walks) == 1  # the same start's second reader pays nothing
    # another distribution now provides the module too (say, onnxruntime-gpu): seen at once
    _install(site, "kontur-probe-b", "probe_mod_x")
    both = ("kontur-probe-a", "kontur-probe-b")
    assert module_distributions(["probe_mod_x"]) == {"probe_mod_x": both}
    assert len(walks) == 2
    # a walk of a folder changed just now is not kept (an mtime is as coarse as a tick)
    assert module_distributions(["probe_mod_x"]) == {"probe_mod_x": both}
    assert len(walks) == 3
    os.utime(site, ns=(0, 0))
    module_distributions(["probe_mod_x"])
    module_distributions(["probe_mod_x"])
    assert len(walks) == 4
    shutil.rmtree(site / "kontur-probe-a-1.0.dist-info")  # removed: seen at once
    assert module_distributions(["probe_mod_x"]) == {"probe_mod_x": ("kontur-probe-b",)}
