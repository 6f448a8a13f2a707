"""Fixtures: a real Mosquitto broker on loopback (skipped outside CI when it is not installed)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from mosquitto_broker import Mosquitto, mosquitto_binary


@pytest.fixture(scope="session")
def mosquitto_bin() -> str:
    """The ``mosquitto`` executable; skips the test without it (fails in CI, where it must be)."""
    binary = mosquitto_binary()
    if binary is None:
        why = "needs the mosquitto broker (Debian: apt-get install mosquitto mosquitto-clients)"
        if os.environ.get("CI"):
            pytest.fail(why + "; CI installs it")
        pytest.skip(why)
    return binary


@pytest.fixture
def broker(tmp_path: Path, mosquitto_bin: str) -> Iterator[Mosquitto]:
    """A broker of its own for the test, stopped after it."""
    b = Mosquitto(tmp_path / "mosquitto", mosquitto_bin)
    b.start()
    try:
        yield b
    finally:
        b.stop()
