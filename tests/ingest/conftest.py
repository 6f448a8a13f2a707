"""Fixtures for the ingest tests: where the shared real data lives, and a skip when it does not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

#: ``../shared/data`` relative to the project root (see its MANIFEST.md).
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_file() -> Callable[[str], Path]:
    """Return a file of the shared real data, or skip the test when it is absent."""

    def get(rel: str) -> Path:
        path = SHARED_DATA / rel
        if not path.is_file():
            pytest.skip(f"real test data {rel} not found under {SHARED_DATA}")
        return path

    return get
