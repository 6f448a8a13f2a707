"""Fixtures of the incident playbook tests (ADR 0029): real footage, a real archive.

The archive comes from the real perimeter: ``kontur demo`` on the first 80 frames of PETS09
(re-encoded with a GOP every second, so a short run still has several GOPs) with YOLOX-Nano,
signed on the fly by the demo camera enrolled in the data dir as ``cam1``. Each test gets its
own copy. Tests skip when ``../shared/data`` is absent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.conftest import built_once, run_kontur, shared
from tests.incident.incident_footage import short_clip

from kontur.archive import Archive


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A data dir the perimeter wrote: 8 GOPs of cam1, each AUTHENTIC, and its inventory
    (built once per run: :func:`~tests.conftest.built_once`)."""
    return built_once(tmp_path_factory, worker_id, "incident-demo", _demo) / "d"


def _demo(tmp: Path) -> None:
    model = shared("models", "yolox_nano.onnx")
    clip = short_clip(tmp / "pets09-80.mp4", 80)
    data = tmp / "d"
    r = run_kontur("demo", "--source", str(clip), "--model", str(model), "--data-dir", str(data))
    assert r.returncode == 0, r.stderr[-2000:]
    with Archive.open_readonly(data) as arc:
        verdicts = [r for r in arc.iter_records(kind="verdict")]
    assert len(verdicts) >= 4, "expected several GOPs in the demo archive"


@pytest.fixture
def data(demo_data: Path, tmp_path: Path) -> Path:
    """This test's own copy of the demo data dir."""
    dest = tmp_path / "d"
    shutil.copytree(demo_data, dest, symlinks=True)
    return dest
