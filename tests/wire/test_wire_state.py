"""``StateChanged`` names the camera whose own state moved, or none for the site's (ADR 0040);
the gate's inbox from the supervisor passes the site and known cameras, and nothing else."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator

import pytest

from kontur.wire import StateChanged, WireError, decode, encode
from kontur.wire.channel import Inbox, Outbox, wait_readable
from kontur.wire.edges import camera_of, edge


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    os.set_blocking(r, False)
    yield r, w
    for fd in (r, w):
        with contextlib.suppress(OSError):
            os.close(fd)


def _state(camera: str | None) -> StateChanged:
    return StateChanged(
        at=12.5, from_state="NORMAL", to_state="DEGRADED", trigger="camera_tamper", camera_id=camera
    )


def test_a_camera_state_round_trips_and_names_its_camera() -> None:
    msg = _state("cam-1")
    back = decode(encode(msg))
    assert back == msg and isinstance(back, StateChanged) and back.camera_id == "cam-1"
    assert camera_of(back) == "cam-1"


def test_a_message_without_a_camera_is_the_sites() -> None:
    old = b'{"type":"state","at":1.0,"from_state":"NORMAL","to_state":"SAFE","trigger":"x"}'
    msg = decode(old)
    assert isinstance(msg, StateChanged) and msg.camera_id is None
    assert camera_of(msg) is None
    assert json.loads(encode(_state(None)))["camera_id"] is None


@pytest.mark.parametrize("camera", ["", 7])
def test_an_empty_or_non_text_camera_is_refused(camera: object) -> None:
    raw = json.loads(encode(_state("cam-1")))
    raw["camera_id"] = camera
    with pytest.raises(WireError, match="camera_id"):
        decode(json.dumps(raw).encode())


def test_the_gate_refuses_a_state_about_a_camera_it_does_not_serve(
    pipe: tuple[int, int],
) -> None:
    r, w = pipe
    assert edge("supervisor", "gate").types == frozenset({"state"})
    inbox = Inbox(r, "supervisor", edge=edge("supervisor", "gate"), cameras={"cam-1"})
    out = Outbox(w)
    for cam in (None, "cam-1", "cam-9"):
        out.send(_state(cam))
    os.close(w)
    got: list[object] = []
    while len(got) < 2 and not inbox.eof:
        assert wait_readable([inbox], 10.0)
        got.extend(inbox.drain())
    assert [m.camera_id for m in got if isinstance(m, StateChanged)] == [None, "cam-1"]
    (v,) = inbox.take_violations()
    assert (v.message_type, v.detail) == ("state", "expected a camera among ['cam-1'], got 'cam-9'")
