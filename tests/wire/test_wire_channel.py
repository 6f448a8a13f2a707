"""Newline-delimited messages over real OS pipes: Outbox → Inbox, garbage, EOF, dead readers."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import pytest

from kontur.wire import (
    ControlMessage,
    Decision,
    FrameReady,
    Message,
    Outcome,
    SourceEnded,
    WorkerReady,
    encode,
)
from kontur.wire.channel import Inbox, Outbox, wait_readable
from kontur.wire.edges import EDGES, edge
from kontur.wire.messages import MAX_MESSAGE_BYTES


def _frame(i: int) -> FrameReady:
    return FrameReady(
        camera_id="cam-1", seq=i, frame_index=i, pts_s=i / 10, gop_index=i // 10, slot=i % 4,
        width=480, height=360,
    )  # fmt: skip


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    """A real pipe; the read end is non-blocking, as the processes set it."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    yield r, w
    for fd in (r, w):
        with contextlib.suppress(OSError):  # the test may have closed it already
            os.close(fd)


def _collect(inbox: Inbox, until: int, timeout: float = 10.0) -> list[Message]:
    """Drain until ``until`` messages arrived or EOF; fails rather than hangs."""
    got: list[Message] = []
    while len(got) < until and not inbox.eof:
        assert wait_readable([inbox], timeout), f"nothing readable after {len(got)} messages"
        got.extend(inbox.drain())
    return got


def test_many_messages_arrive_in_order(pipe: tuple[int, int]) -> None:
    r, w = pipe
    sent = [_frame(i) for i in range(3000)]  # ~500 KiB: far more than a pipe buffer holds
    outbox, inbox = Outbox(w), Inbox(r, "frames")
    writer = threading.Thread(target=lambda: [outbox.send(m) for m in sent])
    writer.start()
    got = _collect(inbox, len(sent))
    writer.join(10)
    assert got == sent
    assert inbox.rejected == 0 and inbox.last_error is None


def test_garbage_line_is_rejected_and_the_reader_resyncs(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.write(w, encode(_frame(1)) + b"\n")
    os.write(w, b"\x80\x04\x95 not a message at all\n")
    os.write(w, encode(_frame(2)) + b"\n")
    inbox = Inbox(r, "worker")
    assert _collect(inbox, 2) == [_frame(1), _frame(2)]
    assert inbox.rejected == 1
    assert inbox.last_error is not None
    assert inbox.last_error.startswith("worker: malformed message at <root>: Invalid JSON")


def test_writer_killed_mid_message_spoils_only_that_line(pipe: tuple[int, int]) -> None:
    r, w = pipe
    half = encode(_frame(1))[:40]
    os.write(w, half + b"\n" + encode(_frame(2)) + b"\n")
    inbox = Inbox(r, "worker")
    assert _collect(inbox, 1) == [_frame(2)]
    assert inbox.rejected == 1
    assert "malformed message" in (inbox.last_error or "")


def test_valid_json_of_the_wrong_shape_is_rejected(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.write(w, b'{"type":"control","command":"format_disk"}\n' + encode(_frame(3)) + b"\n")
    inbox = Inbox(r, "control")
    assert _collect(inbox, 1) == [_frame(3)]
    assert inbox.rejected == 1
    assert "control: malformed message at control.command" in (inbox.last_error or "")


def test_empty_lines_are_skipped_without_rejection(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.write(w, b"\n\n" + encode(ControlMessage(command="stop")) + b"\n\n")
    inbox = Inbox(r)
    assert _collect(inbox, 1) == [ControlMessage(command="stop")]
    assert inbox.rejected == 0


def test_message_split_across_writes_is_reassembled(pipe: tuple[int, int]) -> None:
    r, w = pipe
    data = encode(_frame(5)) + b"\n"
    inbox = Inbox(r)
    os.write(w, data[:17])
    assert list(inbox.drain()) == []
    os.write(w, data[17:])
    assert list(inbox.drain()) == [_frame(5)]


def test_oversize_line_without_newline_is_rejected_then_resynced(pipe: tuple[int, int]) -> None:
    r, w = pipe
    inbox = Inbox(r, "worker")
    payload = b"a" * (MAX_MESSAGE_BYTES + 1024) + b"\n" + encode(_frame(9)) + b"\n"

    def write() -> None:
        with os.fdopen(os.dup(w), "wb") as f:
            f.write(payload)

    writer = threading.Thread(target=write)
    writer.start()
    got: list[Message] = []
    first_error = None
    while not got:
        assert wait_readable([inbox], 10.0)
        got.extend(inbox.drain())
        if first_error is None and inbox.rejected:
            first_error = inbox.last_error
    writer.join(10)
    # refused either while still without newline ("a line") or as a whole line ("a message")
    assert first_error is not None and first_error.startswith("worker: expected a ")
    assert f"of at most {MAX_MESSAGE_BYTES} bytes" in first_error
    assert got == [_frame(9)]


def test_eof_is_reported(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.write(w, encode(SourceEnded(camera_id="cam-1", frames=3, gops=1)) + b"\n")
    os.close(w)
    inbox = Inbox(r)
    assert _collect(inbox, 5) == [SourceEnded(camera_id="cam-1", frames=3, gops=1)]
    assert inbox.eof
    assert wait_readable([inbox], 0.0) == []


def test_writer_killed_mid_message_at_eof_is_counted(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.write(w, encode(_frame(1)) + b"\n" + encode(_frame(2))[:30])
    os.close(w)  # kill -9 of the writer closes its end
    inbox = Inbox(r, "worker")
    assert _collect(inbox, 5) == [_frame(1)]
    assert inbox.eof
    assert inbox.rejected == 1
    assert "worker:" in (inbox.last_error or "")


def test_send_after_the_reader_closed_returns_false(pipe: tuple[int, int]) -> None:
    r, w = pipe
    outbox = Outbox(w)
    assert outbox.send(_frame(1)) is True
    os.close(r)
    assert outbox.send(_frame(2)) is False  # BrokenPipeError, swallowed (SIGPIPE is ignored)
    assert outbox.broken
    assert outbox.send(_frame(3)) is False


def test_outbox_close_closes_the_write_end(pipe: tuple[int, int]) -> None:
    r, w = pipe
    outbox = Outbox(w)
    outbox.close()
    outbox.close()  # closing twice is harmless
    inbox = Inbox(r)
    assert _collect(inbox, 1) == []
    assert inbox.eof


def test_wait_readable_times_out_on_a_quiet_pipe(pipe: tuple[int, int]) -> None:
    r, _ = pipe
    assert wait_readable([Inbox(r)], 0.01) == []


# --- the edge table (issue 8 point 2: the supervisor accepted any message on any pipe) ------


def _decision() -> Decision:
    return Decision(
        camera_id="cam-1", rule="r", action="alarm", critical=True, track_id=1, frame_index=1,
        outcome=Outcome.ALLOW, reasons=("forged",), gops=(0,), at=0.0,
    )  # fmt: skip


def test_every_edge_of_the_table_is_unique_and_names_known_types() -> None:
    pairs = [(e.sender, e.receiver) for e in EDGES]
    assert len(pairs) == len(set(pairs))
    known = {"frame", "segment", "gop", "source_ended", "tracks", "detection_batch"}
    known |= {"worker_ready", "finding", "evidence", "decision", "state", "control", "violation"}
    known |= {"tamper", "decoder"}  # ingest only (ADR 0030, 0038)
    known |= {"audit", "operator_verdict", "export_request", "incident_request"}  # api only
    assert set().union(*(e.types for e in EDGES)) == known
    assert [e for e in EDGES if e.sender == "api"] == [edge("api", "supervisor")]
    assert not [e for e in EDGES if e.receiver == "api"]  # nothing is ever sent to the API
    # the worker may say nothing to the gate, and nothing the gate or ingest say
    assert not [e for e in EDGES if e.sender == "worker" and e.receiver == "gate"]
    assert edge("worker", "supervisor").types == {"detection_batch", "worker_ready"}
    with pytest.raises(KeyError, match="worker -> gate"):
        edge("worker", "gate")


def test_forged_types_from_the_worker_are_dropped_and_kept_as_violations(
    pipe: tuple[int, int],
) -> None:
    """A worker's forged Decision, SourceEnded and GopClosed never reach the supervisor's code."""
    r, w = pipe
    inbox = Inbox(r, "worker", edge=edge("worker", "supervisor"), cameras={"cam-1"})
    out = Outbox(w)
    out.send(_decision())
    out.send(SourceEnded(camera_id="cam-1", frames=100, gops=1))
    out.send(WorkerReady(model_id="m", platform="cpu", detector="d"))
    os.close(w)
    got = _collect(inbox, 3)
    assert [m.type for m in got] == ["worker_ready"]
    vs = inbox.take_violations()
    assert [(v.sender, v.receiver, v.message_type) for v in vs] == [
        ("worker", "supervisor", "decision"),
        ("worker", "supervisor", "source_ended"),
    ]
    assert "expected one of ['detection_batch', 'worker_ready'] from worker to supervisor" in (
        vs[0].detail
    )
    assert inbox.violation_count == 2 and inbox.take_violations() == []


def test_messages_about_a_camera_the_sender_does_not_serve_are_violations(
    pipe: tuple[int, int],
) -> None:
    r, w = pipe
    inbox = Inbox(r, "ingest:cam-1", edge=edge("ingest:cam-1", "supervisor"), cameras={"cam-1"})
    out = Outbox(w)
    out.send(SourceEnded(camera_id="cam-2", frames=1, gops=1))
    out.send(SourceEnded(camera_id="cam-1", frames=1, gops=1))
    os.close(w)
    got = _collect(inbox, 2)
    assert [m.camera_id for m in got if isinstance(m, SourceEnded)] == ["cam-1"]
    (v,) = inbox.take_violations()
    assert v.detail == "expected a camera among ['cam-1'], got 'cam-2'"


def test_garbage_is_a_violation_but_a_line_cut_by_death_is_not(pipe: tuple[int, int]) -> None:
    r, w = pipe
    inbox = Inbox(r, "worker", edge=edge("worker", "verifier"))
    os.write(w, b'{"type": "tracks", "nonsense": 1}\n{"type": "tra')
    os.close(w)
    assert _collect(inbox, 1) == []
    (v,) = inbox.take_violations()
    assert v.message_type == "?" and "malformed message" in v.detail
    assert inbox.rejected == 2 and inbox.violation_count == 1
