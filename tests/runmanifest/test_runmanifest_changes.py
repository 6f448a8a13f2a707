"""Issue 15 §3: a version change between starts is a record, judged by the allow-list.

Each vector models how a node's stack changes under a site between two starts: a runtime
upgraded (approved or not), a runtime swapped for its GPU build, a driver upgraded, an
execution provider library appearing under an unchanged distribution version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.runmanifest.conftest import host, manifest

from kontur.archive import Archive, verify_archive
from kontur.clock import ManualClock
from kontur.placement.allowlist import Allowlist
from kontur.runmanifest import (
    CHANGE_KIND,
    MANIFEST_KIND,
    RunManifest,
    changes,
    record_run,
    stored_manifests,
    unapproved,
)

BASE_DISTS = {
    "kontur": "0.1.0", "onnxruntime": "1.32.0", "openvino": "2026.4.1",
    "opencv-python-headless": "4.14.0.94", "numpy": "2.4.6", "model-signing": "1.1.1",
}  # fmt: skip
CUDA_LIB = "onnxruntime/capi/libonnxruntime_providers_cuda.so"


def _host(dists: dict[str, str] | None = None, **kw: Any) -> RunManifest:
    return manifest(host(dists={**BASE_DISTS, **(dists or {})}, **kw))


def _without(name: str, **dists: str) -> dict[str, str]:
    d = {**BASE_DISTS, **dists}
    del d[name]
    return d


# (vector name, before, after, allow-list, unapproved fragments: empty = approved)
VECTORS: list[tuple[str, dict[str, Any], dict[str, Any], Allowlist, list[str]]] = [
    ("runtime_upgraded_unlisted", {}, {"dists": {"onnxruntime": "1.33.0"}},
     Allowlist(drivers={"nvidia": ("550.*",)}),
     ["runtime onnxruntime: changed from 1.32.0 to 1.33.0 since the last approved start; "
      "expected it listed in placement.allowlist.runtimes, got no entry"]),
    ("runtime_upgraded_listed_other_version", {}, {"dists": {"onnxruntime": "1.33.0"}},
     Allowlist(runtimes={"onnxruntime": ("1.32.*",)}),
     ["runtime onnxruntime: changed from 1.32.0 to 1.33.0; expected a version in ['1.32.*']"]),
    ("runtime_upgraded_approved", {}, {"dists": {"onnxruntime": "1.33.0"}},
     Allowlist(runtimes={"onnxruntime": ("1.32.*", "1.33.0")}), []),
    ("runtime_swapped_for_gpu_build", {},
     {"dists": _without("onnxruntime", **{"onnxruntime-gpu": "1.32.0"}),
      "files": {"onnxruntime-gpu": [CUDA_LIB]}},
     Allowlist(runtimes={"onnxruntime": ("1.32.0",)}),
     ["runtime onnxruntime-gpu: changed from nothing to 1.32.0 since the last approved start"]),
    ("driver_upgraded_unlisted", {"drivers": {"nvidia": "550.54.14"}},
     {"drivers": {"nvidia": "560.28.03"}}, Allowlist(runtimes={"onnxruntime": ("1.32.0",)}),
     ["driver nvidia: changed from 550.54.14 to 560.28.03 since the last approved start; "
      "expected it listed in placement.allowlist.drivers, got no entry"]),
    ("driver_upgraded_approved", {"drivers": {"nvidia": "550.54.14"}},
     {"drivers": {"nvidia": "560.28.03"}}, Allowlist(drivers={"nvidia": ("550.*", "560.*")}), []),
    ("ep_library_appears_under_same_version", {}, {"files": {"onnxruntime": [CUDA_LIB]}},
     Allowlist(runtimes={"onnxruntime": ("1.32.0",)}),
     ["onnxruntime execution providers: changed from CPUExecutionProvider to "
      "CPUExecutionProvider,CUDAExecutionProvider; expected a change of the distribution that "
      "ships them, got none"]),
    ("numpy_upgraded_is_recorded_not_judged", {}, {"dists": {"numpy": "2.5.0"}},
     Allowlist(runtimes={"onnxruntime": ("1.32.0",)}), []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("before", "after", "allow", "expected"),
    [v[1:] for v in VECTORS],
    ids=[v[0] for v in VECTORS],
)
def test_changed_stack_component_against_the_allowlist(
    before: dict[str, Any], after: dict[str, Any], allow: Allowlist, expected: list[str]
) -> None:
    found = changes(_host(**before), _host(**after))
    assert found, "the vector changes something"
    reasons = unapproved(found, allow)
    assert len(reasons) == len(expected)
    for reason, fragment in zip(reasons, expected, strict=True):
        assert fragment in reason


def test_changes_name_each_component_with_before_and_after(base: RunManifest) -> None:
    after = _host({"onnxruntime": "1.33.0", "numpy": "2.5.0"})
    found = {c.component: (c.before, c.after, c.stack) for c in changes(base, after)}
    assert found == {
        "runtime:onnxruntime": ("1.32.0", "1.33.0", True),
        "library:numpy": ("2.4.6", "2.5.0", False),
    }
    assert changes(base, _host()) == ()


def _open(tmp_path: Path) -> Archive:
    return Archive.open(tmp_path / "data", ManualClock())


def test_first_start_is_one_manifest_record_and_no_change(tmp_path: Path) -> None:
    with _open(tmp_path) as arc:
        got = record_run(arc, _host(), Allowlist(runtimes={"onnxruntime": ("1.32.0",)}))
        assert got.changes == () and got.unapproved == () and got.change_index is None
        kinds = [r.kind for r in arc.iter_records()]
    assert kinds == [MANIFEST_KIND]


def test_an_unapproved_upgrade_stays_unapproved_until_listed(tmp_path: Path) -> None:
    allow = Allowlist(runtimes={"onnxruntime": ("1.32.0",)})
    upgraded = _host({"onnxruntime": "1.33.0"})
    with _open(tmp_path) as arc:
        record_run(arc, _host(), allow)  # start 1: approved
        second = record_run(arc, upgraded, allow)  # the upgrade
        third = record_run(arc, upgraded, allow)  # restarted, still not approved
        fourth = record_run(arc, upgraded, Allowlist(runtimes={"onnxruntime": ("1.33.0",)}))
        fifth = record_run(arc, upgraded, allow)  # the approval is the start's, not forever
        history = stored_manifests(arc)
        change_payloads = [r.payload for r in arc.iter_records(kind=CHANGE_KIND)]
    assert [c.describe() for c in second.changes] == ["runtime:onnxruntime 1.32.0 → 1.33.0"]
    assert len(second.unapproved) == 1 and "1.32.0 to 1.33.0" in second.unapproved[0]
    # third: nothing changed since the start before, but the baseline is start 1
    assert third.changes == () and third.unapproved == second.unapproved
    assert change_payloads[1]["baseline"]["run"] == 1 and change_payloads[1]["changes"] == []
    assert fourth.unapproved == () and fourth.change_index is None
    assert [m.approved for m in history] == [True, False, False, True, True]
    assert fifth.unapproved == ()  # start 4 approved 1.33.0: it is the baseline now
    assert [m.run for m in history] == [1, 2, 3, 4, 5]
    assert verify_archive(tmp_path / "data").ok


def test_without_an_allowlist_changes_are_recorded_only(tmp_path: Path) -> None:
    with _open(tmp_path) as arc:
        record_run(arc, _host(), None)
        got = record_run(arc, _host({"onnxruntime": "1.33.0"}), None)
        (change,) = [r.payload for r in arc.iter_records(kind=CHANGE_KIND)]
    assert got.unapproved == () and change["unapproved"] == []
    assert change["previous"] == {"run": 1, "index": 0, "sha256": _host().digest()}
    assert change["manifest_index"] == got.index and change["manifest_sha256"] == got.digest
    assert change["changes"] == [
        {"component": "runtime:onnxruntime", "before": "1.32.0", "after": "1.33.0", "stack": True}
    ]


def test_an_unreadable_earlier_manifest_never_stops_a_start(tmp_path: Path) -> None:
    allow = Allowlist(runtimes={"onnxruntime": ("1.32.0",)})
    with _open(tmp_path) as arc:
        arc.append(MANIFEST_KIND, {"sha256": "00" * 32, "manifest": {"format": 1}})
        arc.flush()
        got = record_run(arc, _host(), allow)
        (change,) = [r.payload for r in arc.iter_records(kind=CHANGE_KIND)]
    assert change["unreadable_history"].startswith("record 0: run manifest ")
    assert got.unapproved == (
        "earlier run manifests: expected them readable to judge this start's stack against, "
        f"got {change['unreadable_history']}",
    )
    assert change["previous"] is None and change["manifest_index"] == got.index
