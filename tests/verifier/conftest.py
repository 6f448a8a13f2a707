"""Fixtures for the verifier's tests; the simulators themselves live in ``verifier_sim``."""

from __future__ import annotations

import pytest
from verifier_sim import StreamSim

from kontur.config import VerifierConfig
from kontur.verifier import Verifier


@pytest.fixture
def config() -> VerifierConfig:
    """The default verifier thresholds (what ships in kontur.yaml)."""
    return VerifierConfig()


@pytest.fixture
def verifier(config: VerifierConfig) -> Verifier:
    """A fresh verifier with the default thresholds."""
    return Verifier(config)


@pytest.fixture
def sim(verifier: Verifier) -> StreamSim:
    """A 10 fps stream simulator feeding ``verifier``."""
    return StreamSim(verifier)
