"""Issue 11 §7: a token bucket per principal (per remote when unauthenticated): 429 and
``Retry-After`` when it is empty, audited once, and refilled by time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from api_sim import ROOMY, Site, running_site

LIMITED = replace(ROOMY, rate_per_s=0.5, burst=3)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with running_site(tmp_path_factory.mktemp("api") / "data", LIMITED) as s:
        yield s


def test_a_principal_gets_burst_calls_then_429_with_retry_after(site: Site) -> None:
    with site.client("viewer") as c:
        assert [c.get("/status").status_code for _ in range(3)] == [200, 200, 200]
        r = c.get("/status")
        assert r.status_code == 429
        assert r.headers["retry-after"] == "2"  # 0.5 a second: the next token in 2 s
        assert r.json() == {"detail": "expected at most 3 calls at once and 0.5 a second, got more"}
        assert c.get("/events").status_code == 429  # every route, one bucket per principal
        with site.client("auditor") as other:  # another principal has its own bucket
            assert other.get("/status").status_code == 200
        site.clock.advance(2.0)
        assert c.get("/status").status_code == 200
        assert c.get("/status").status_code == 429
    site.supervisor.audit(action="rate_limited", actor="viewer-user")
    site.login("auditor-user")  # audited after every 429 above: once its event is read, so
    site.supervisor.audit(action="login", actor="auditor-user")  # are all of theirs
    limited = [e for e in site.supervisor.audits() if e.action == "rate_limited"]
    assert [e.actor for e in limited] == ["viewer-user"]  # once a minute per key, not per call
    assert limited[0].outcome == "refused"


def test_unauthenticated_calls_share_the_remotes_bucket(site: Site) -> None:
    site.clock.advance(60.0)
    with site.client() as c:
        codes = [c.get("/healthz").status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        r = c.get("/status")  # no credentials: the remote's bucket, already empty
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        assert c.get("/healthz").status_code == 429
        bad = c.get("/status", headers={"Authorization": "Bearer kontur_guess"})
        assert bad.status_code == 429  # guessing tokens costs the remote's bucket too
