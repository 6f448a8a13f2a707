"""Issue 11 §6, the API's half of the operator loop: pending requests with their evidence,
verdicts sent typed on the pipe to the supervisor and audited, and who won reported back.

The supervisor here is the stand-in of ``api_sim`` (first verdict wins, four-eyes needs two
different operators); the real loop runs end to end in the perimeter's own test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from api_sim import PASSWORD, ROOMY, Site, pending, running_site, user_of

from kontur.wire.messages import OperatorVerdict

FAST = replace(ROOMY, verdict_wait_s=0.5)
CONFIRM = {"confirm": True, "reason": "person at the door is the night guard"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data_dir = tmp_path_factory.mktemp("api") / "data"
    requests = (
        pending(1),
        pending(2),
        pending(3, two_person=True),
        pending(4),
        pending(5),
        pending(6, segment="ab" * 32),
    )
    with running_site(data_dir, FAST, requests) as s:
        s.users.add_user("operator2", ["operator"], PASSWORD)
        s.tokens["operator2"] = s.users.create_token("operator2", "console")
        s.users.add_user("lead", ["operator", "investigator"], PASSWORD)
        s.tokens["lead"] = s.users.create_token("lead", "console")
        yield s


def test_pending_requests_carry_their_evidence(site: Site) -> None:
    with site.client("operator") as c:
        listing = c.get("/operator/requests").json()["requests"]
        one = c.get("/operator/requests/op-6").json()
    assert {r["id"] for r in listing} >= {"op-1", "op-6"}
    assert one["state"] == "pending" and one["outcome"] == "OPERATOR"
    assert one["gop_verdicts"] == {"1": "AUTHENTIC"}
    assert one["track"] == 7 and one["reasons"][0] == "verifier disagrees on track 7"
    assert "segments" not in one  # an operator without video:archive sees no snapshot


def test_segments_are_listed_only_with_video_archive(site: Site) -> None:
    with site.client("lead") as c:
        one = c.get("/operator/requests/op-6").json()
    assert one["segments"] == ["ab" * 32]


def test_a_confirmation_goes_typed_to_the_supervisor_and_is_audited(site: Site) -> None:
    with site.client("operator") as c:
        r = c.post("/operator/requests/op-1", json=CONFIRM)
        assert (r.status_code, r.json()) == (200, {"resolution": "confirmed by operator-user"})
        after = c.get("/operator/requests/op-1").json()
    assert after == {"id": "op-1", "state": "resolved", "resolution": "confirmed by operator-user"}
    verdict = site.supervisor.wait_for(lambda m: isinstance(m, OperatorVerdict))
    assert verdict == OperatorVerdict(
        request_id="op-1", operator=user_of("operator"), confirm=True,
        reason=CONFIRM["reason"], at=site.clock.wall(),
    )  # fmt: skip
    ev = site.supervisor.audit(action="operator:decide", target="op-1")
    assert (ev.actor, ev.outcome) == (user_of("operator"), "ok")
    assert ev.detail == f"confirm: {CONFIRM['reason']}"


def test_a_rejection_is_reported_as_such(site: Site) -> None:
    with site.client("operator2") as c:
        r = c.post("/operator/requests/op-2", json={"confirm": False, "reason": "not a guard"})
    assert (r.status_code, r.json()) == (200, {"resolution": "rejected by operator2"})


def test_four_eyes_needs_a_second_different_operator(site: Site) -> None:
    with site.client("operator") as c:
        r = c.post("/operator/requests/op-3", json=CONFIRM)
        assert (r.status_code, r.json()) == (202, {"awaiting": "a second operator"})
        again = c.post("/operator/requests/op-3", json=CONFIRM)
    assert again.status_code == 409
    assert again.json() == {
        "detail": "expected a second, different operator, got operator-user again"
    }
    with site.client("operator2") as c:
        r = c.post("/operator/requests/op-3", json=CONFIRM)
    assert (r.status_code, r.json()) == (
        200,
        {"resolution": "confirmed by operator-user, operator2"},
    )


def test_someone_else_winning_the_race_is_409(site: Site) -> None:
    site.supervisor.race["op-4"] = "confirmed by operator2"
    with site.client("operator") as c:
        r = c.post("/operator/requests/op-4", json={"confirm": False, "reason": "looks wrong"})
        assert r.status_code == 409
        assert r.json() == {
            "detail": "expected to resolve op-4, got it confirmed by operator2 first"
        }
        late = c.post("/operator/requests/op-4", json=CONFIRM)  # now it is resolved
    assert late.status_code == 409
    assert late.json() == {"detail": "expected a pending request, got op-4 confirmed by operator2"}


def test_unknown_requests_are_404_and_bad_bodies_422(site: Site) -> None:
    with site.client("operator") as c:
        assert c.post("/operator/requests/op-999", json=CONFIRM).status_code == 404
        assert c.get("/operator/requests/op-999").status_code == 404
        r = c.post("/operator/requests/op-5", json={"confirm": True, "reason": ""})
        assert r.status_code == 422
        r = c.post("/operator/requests/op-5", json={"confirm": "true", "reason": "x"})
        assert r.status_code == 422
        r = c.post("/operator/requests/op-5", json={**CONFIRM, "operator": "someone-else"})
        assert r.status_code == 422


def test_a_supervisor_that_does_not_answer_leaves_it_awaiting(site: Site) -> None:
    site.supervisor.ignore.add("op-5")
    with site.client("operator") as c:
        r = c.post("/operator/requests/op-5", json=CONFIRM)
    assert (r.status_code, r.json()) == (202, {"awaiting": "the supervisor"})
    site.supervisor.wait_for(lambda m: isinstance(m, OperatorVerdict) and m.request_id == "op-5")
