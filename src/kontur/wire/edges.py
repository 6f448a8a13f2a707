"""The edge table: every channel between kontur's processes and what may travel on it.

DESIGN.md §2 ("who may say what") and STYLE.md ("edges between processes are part of the
security model"). :func:`kontur.runtime.wiring.build_wiring` builds the pipes from this
table, and each receiving :class:`~kontur.wire.channel.Inbox` enforces its row: a message of a
type its sender may not send, about a camera its sender does not serve, or that does not
parse, is dropped and kept as a :class:`Violation`. The receiver never "handles" it; the
supervisor archives it and raises ``worker_misbehaving`` (or ``block_failed`` for a trusted
sender), ADR 0014.

===============  ===============  ==========================================  ===========
sender           receiver         message types                               camera
===============  ===============  ==========================================  ===========
ingest:<cam>     worker           frame (ring slot metadata, read-only map)   own camera
ingest:<cam>     verifier         frame (ring slot metadata, read-only map)   own camera
ingest:<cam>     supervisor       segment, gop, source_ended, tamper,         own camera
                                  decoder
ingest:<cam>     gate             gop, source_ended, tamper                   own camera
worker           verifier         tracks                                      any known
worker           supervisor       detection_batch, worker_ready               any known
verifier         gate             evidence                                    any known
verifier         supervisor       finding, violation                          any known
gate             supervisor       decision, violation                         any known
supervisor       gate             state (site, or one camera: ADR 0040)       any known
supervisor       ingest:<cam>     control                                     own camera
api              supervisor       audit, operator_verdict, export_request,    \u2014
                                  incident_request
===============  ===============  ==========================================  ===========

The API block (issue 11) reads the archive read-only and the supervisor's run-state snapshot
(:mod:`kontur.wire.runstate`); it holds no channel to the worker, the verifier or the gate,
and nothing but the supervisor ever reads what it sends.
"""

from __future__ import annotations

from dataclasses import dataclass

from kontur.wire.messages import (
    Decision,
    DetectionBatch,
    Evidence,
    Finding,
    GopClosed,
    Message,
    SegmentStored,
    SourceEnded,
    TrackFrame,
)

__all__ = ["EDGES", "Edge", "Violation", "camera_of", "edge", "role_of"]


@dataclass(frozen=True, slots=True)
class Edge:
    """One row of the table: ``sender`` may send ``types`` to ``receiver``."""

    sender: str
    """A role: ``ingest``, ``worker``, ``verifier``, ``gate`` or ``supervisor``."""
    receiver: str
    types: frozenset[str]
    via: str = "pipe"
    """``pipe`` (JSON lines) or ``ring`` (shared-memory slot metadata)."""
    own_camera: bool = False
    """Every message must be about the sender's own camera (ingest serves one camera)."""


def _e(sender: str, receiver: str, *types: str, via: str = "pipe") -> Edge:
    return Edge(sender, receiver, frozenset(types), via, own_camera="ingest" in (sender, receiver))


#: The whole table. A channel not listed here does not exist.
EDGES: tuple[Edge, ...] = (
    _e("ingest", "worker", "frame", via="ring"),
    _e("ingest", "verifier", "frame", via="ring"),
    _e("ingest", "supervisor", "segment", "gop", "source_ended", "tamper", "decoder"),
    _e("ingest", "gate", "gop", "source_ended", "tamper"),
    _e("worker", "verifier", "tracks"),
    _e("worker", "supervisor", "detection_batch", "worker_ready"),
    _e("verifier", "gate", "evidence"),
    _e("verifier", "supervisor", "finding", "violation"),
    _e("gate", "supervisor", "decision", "violation"),
    _e("supervisor", "gate", "state"),
    _e("supervisor", "ingest", "control"),
    _e("api", "supervisor", "audit", "operator_verdict", "export_request", "incident_request"),
)


def role_of(block: str) -> str:
    """The role of a block name: ``ingest:cam1`` → ``ingest``."""
    return block.split(":", 1)[0]


def edge(sender: str, receiver: str) -> Edge:
    """The row for ``sender`` → ``receiver`` (block names or roles); ``KeyError`` if none."""
    s, r = role_of(sender), role_of(receiver)
    for e in EDGES:
        if (e.sender, e.receiver) == (s, r):
            return e
    raise KeyError(f"expected an edge of the table, got {sender} -> {receiver}")


def camera_of(msg: Message) -> str | None:
    """The camera a message is about, if it names one."""
    if isinstance(msg, GopClosed):
        return msg.verdict.camera_id
    if isinstance(msg, Evidence):
        return msg.frame.camera_id
    if isinstance(msg, SegmentStored | SourceEnded | TrackFrame | DetectionBatch | Finding):
        return msg.camera_id
    if isinstance(msg, Decision):
        return msg.camera_id
    return getattr(msg, "camera_id", None)


@dataclass(frozen=True, slots=True)
class Violation:
    """A message an inbox refused: who sent what, and why."""

    sender: str
    receiver: str
    message_type: str
    detail: str
