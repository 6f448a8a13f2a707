"""The verifier process never dies of a worker's message: a defect that a frame's tracks reach
in the pure core (an arithmetic error, say) makes that frame's finding a disagreement."""

from __future__ import annotations

from typing import Any

from verifier_sim import track_frame

from kontur.verifier.process import VerifierLoop
from kontur.wire import Finding


class _Sent:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    def send(self, msg: Any) -> None:
        self.messages.append(msg)


class _Defective:
    """A core with a defect the tracks reach: ``check`` overflows."""

    def check(self, tracks: Any) -> Finding:
        raise OverflowError("cannot convert float infinity to integer")

    def stamp(self, camera_id: str, frame_index: int) -> None:
        return None


def test_a_check_that_raises_is_a_disagreement_not_a_crash() -> None:
    loop = object.__new__(VerifierLoop)  # the loop's own logic, without its pipes and rings
    loop.core = _Defective()  # type: ignore[assignment]
    loop.to_gate, loop.to_supervisor = _Sent(), _Sent()  # type: ignore[assignment]
    loop._check(track_frame(5, 0.5, [], "cam1"))
    (finding,) = loop.to_supervisor.messages  # type: ignore[attr-defined]
    assert isinstance(finding, Finding) and not finding.agree
    assert finding.frame_index == 5 and "OverflowError" in finding.reasons[0]
