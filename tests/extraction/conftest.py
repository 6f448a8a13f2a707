"""Fixtures: a real signed release of YOLOX-Nano, verified, as the query worker gets it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import shared

from kontur.clock import ManualClock
from kontur.extraction import QueryWorkerSpec, SandboxedDetector
from kontur.release.keys import keygen
from kontur.release.signing import build_release, verify_release
from kontur.worker.bundle import pack

NAME = "yolox-nano"


@pytest.fixture(scope="session")
def yolox_release(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], bytes]:
    """``(release entries, blob)`` as :meth:`PreparedRelease.worker_spec` gives them: a real
    release of ``yolox_nano.onnx`` signed with a fresh key, then verified."""
    model = shared("models", "yolox_nano.onnx")
    root = tmp_path_factory.mktemp("release")
    clock = ManualClock(wall=1_700_000_000.0)
    pair = keygen(root / "key")
    build_release(
        [model], "yolox", root / "rel", name=NAME, version=1, key=pair.private_key, clock=clock
    )
    verified = verify_release(
        root / "rel", public_key=pair.public_key, clock=clock, expected_names=(NAME,)
    )
    blob, index = pack(verified.manifest.raw, verified.files)
    return {"model_id": verified.model_id, "bundle": [p.to_json() for p in index]}, blob


@pytest.fixture
def yolox_detector(
    yolox_release: tuple[dict[str, Any], bytes],
) -> Iterator[Callable[[Path], SandboxedDetector]]:
    """A factory of sandboxed YOLOX query workers for a data dir (each closed at the end)."""
    made: list[SandboxedDetector] = []

    def make(data_dir: Path) -> SandboxedDetector:
        entries, blob = yolox_release
        scratch = data_dir / "run" / "scratch" / "query-worker"
        spec = QueryWorkerSpec.from_release(entries, scratch_dir=scratch, deny=(data_dir,))
        made.append(SandboxedDetector(spec, blob))
        return made[-1]

    yield make
    for d in made:
        d.close()
