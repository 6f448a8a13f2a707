"""Fixtures of the API tests: one real server per module (see ``api_sim``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_sim import MATRIX_REQUESTS, Site, pending, running_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A running API over a real archive, user store, run state and supervisor pipe."""
    data_dir = tmp_path_factory.mktemp("api") / "data"
    requests = tuple(pending(n) for n in MATRIX_REQUESTS)
    with running_site(data_dir, requests=requests) as s:
        yield s
