"""The decision table (ADR 0007) run from data: tests/gate/vectors/critical_decisions.yaml.

Every vector runs twice: verdicts before the evidence (decided at once) and after it (held,
decided when the last verdict arrives). The answer must not depend on the interleaving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from gate_sim import evidence, gop, make_config, make_gate, state

from kontur.ingest.verdict import Verdict
from kontur.wire import Decision, Outcome

VECTORS: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "vectors" / "critical_decisions.yaml").read_text()
)


def _run(case: dict[str, Any], verdicts_first: bool) -> list[Decision]:
    g, _ = make_gate(make_config(signing_required=case.get("signing_required", False)))
    out: list[Decision] = []
    if "state" in case:
        out += g.on_state(state(*case["state"]))
    gops = [gop(i, Verdict(v)) for i, v in enumerate(case["verdicts"])]
    if verdicts_first:
        for m in gops:
            out += g.on_gop(m)
    finding = case.get("finding", {})
    bad_frames = set(finding.get("frames", ()))
    for f in range(0, 31):
        if f in bad_frames:
            kw = {k: v for k, v in finding.items() if k != "frames"}
            out += g.on_evidence(evidence(f, **kw))
        else:
            out += g.on_evidence(evidence(f))
    if not verdicts_first:
        assert out == [] and g.pending == 1
        for m in gops:
            out += g.on_gop(m)
    assert g.pending == 0
    return out


@pytest.mark.parametrize("verdicts_first", [True, False], ids=["verdicts-first", "held"])
@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_decision_vector(case: dict[str, Any], verdicts_first: bool) -> None:
    decisions = _run(case, verdicts_first)
    assert len(decisions) == 1
    d = decisions[0]
    want = case["expect"]
    assert d.outcome is Outcome(want["outcome"])
    assert d.executed == want["executed"]
    assert any(want["reason"] in r for r in d.reasons), d.reasons
    assert (d.action, d.rule, d.critical, d.track_id) == ("alarm", "person-dwell", True, 7)
    assert (d.frame_index, d.gops) == (20, (0, 1, 2))
