"""The sandboxed query worker: the real YOLOX release runs in it, never in the caller; what
it says back is parsed strictly; a dead or lying worker is a QueryWorkerError."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import pytest
from tests.conftest import shared

from kontur.extraction import QueryWorkerError, QueryWorkerSpec, SandboxedDetector
from kontur.extraction.messages import InferAnswer, InferRequest, QueryDetection, WorkerHello


def test_the_real_release_detects_people_inside_the_sandbox(
    tmp_path: Path, yolox_detector: Callable[[Path], SandboxedDetector]
) -> None:
    detector = yolox_detector(tmp_path)
    picture = cv2.imread(str(shared("images", "bus.jpg")))
    answer = detector.detect(picture, timeout_s=60)
    assert answer.model_id == "yolox-nano@1"
    people = [d for d in answer.detections if answer.class_names[d.class_id] == "person"]
    assert len(people) >= 3, answer.detections
    for d in answer.detections:
        x1, y1, x2, y2 = d.box
        assert 0 <= x1 <= x2 <= 810 and 0 <= y1 <= y2 <= 1080 and 0 < d.confidence <= 1
    assert detector.pid is not None and detector.pid != os.getpid()
    assert detector.hello is not None
    isolation = detector.hello.isolation
    if os.geteuid() == 0:  # CI runs as root: every mechanism holds
        assert isolation["level"] == "full", isolation["missing"]
        assert isolation["network"] == "netns+seccomp+landlock-net"
    assert isolation["scratch_dir"] == str(tmp_path / "run" / "scratch" / "query-worker")


def test_a_killed_worker_is_replaced_at_the_next_query(
    tmp_path: Path, yolox_detector: Callable[[Path], SandboxedDetector]
) -> None:
    detector = yolox_detector(tmp_path)
    picture = cv2.imread(str(shared("images", "bus.jpg")))
    detector.detect(picture, timeout_s=60)
    first = detector.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    _wait_dead(first)
    assert detector.detect(picture, timeout_s=60).detections
    assert detector.pid not in (None, first)


def test_the_worker_outlives_the_thread_that_asked_first(
    tmp_path: Path, yolox_detector: Callable[[Path], SandboxedDetector]
) -> None:
    """The API answers from a thread pool whose idle threads end; the worker dies with the
    thread that started it (PDEATHSIG), so that must not be one of them."""
    detector = yolox_detector(tmp_path)
    picture = cv2.imread(str(shared("images", "bus.jpg")))
    asker = threading.Thread(target=detector.detect, args=(picture, 60))
    asker.start()
    asker.join()
    first = detector.pid
    assert first is not None
    time.sleep(0.5)
    assert _state(first) not in ("Z", "X", None), "the worker died with the asking thread"
    assert detector.detect(picture, timeout_s=60).detections
    assert detector.pid == first


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def _wait_dead(pid: int) -> None:
    """Until the kernel shows ``pid`` dead (a zombie until its parent reaps it, or gone)."""
    stat = Path(f"/proc/{pid}/stat")
    for _ in range(1000):
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return
        except FileNotFoundError:
            return
        time.sleep(0.01)
    raise AssertionError(f"expected worker {pid} dead after SIGKILL, got it running")


def test_a_tampered_bundle_never_starts(
    tmp_path: Path, yolox_release: tuple[dict[str, Any], bytes]
) -> None:
    entries, blob = yolox_release
    bad = blob[:-1] + bytes([blob[-1] ^ 1])
    spec = QueryWorkerSpec.from_release(
        entries, scratch_dir=tmp_path / "scratch", deny=(tmp_path / "data",)
    )
    detector = SandboxedDetector(spec, bad, start_timeout_s=60)
    try:
        with pytest.raises(QueryWorkerError, match=r"^query worker: expected it to start, got "):
            detector.detect(cv2.imread(str(shared("images", "bus.jpg"))), timeout_s=60)
        assert detector.pid is None
    finally:
        detector.close()


def test_requests_round_trip_and_refuse_a_wrong_size() -> None:
    req = InferRequest(7, 2, 3, bytes(18))
    assert InferRequest.from_bytes(req.to_bytes()) == req
    with pytest.raises(ValueError, match=r"^request: expected 18 pixel bytes, got 17$"):
        InferRequest.from_bytes(req.to_bytes()[:-1])


def _answer(**kw: object) -> bytes:
    return json.dumps({"type": "answer", "seq": 3, "detections": [], "error": None, **kw}).encode()


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"not json", "expected a JSON answer"),
        (_answer(seq=4), "expected the answer to query 3"),
        (
            _answer(detections=[[0, 0, 10, 10, 0.5, 80]]),
            "expected a box inside the picture and a known class",
        ),
        (
            _answer(detections=[[0, 0, 10, 10, 1.5, 0]]),
            "expected a box inside the picture and a known class",
        ),
        (
            _answer(detections=[[20, 0, 10, 10, 0.5, 0]]),
            "expected a box inside the picture and a known class",
        ),
        (
            _answer(detections=[[0, 0, 10, "x", 0.5, 0]]),
            "expected [x1, y1, x2, y2, confidence, class]",
        ),
        (_answer(detections=[[0, 0, 1, 1, 0.5, 0]] * 301), "expected at most 300 detections"),
    ],
)
def test_an_answer_that_breaks_the_protocol_is_refused(raw: bytes, fragment: str) -> None:
    with pytest.raises(QueryWorkerError, match="^query worker: " + fragment.replace("[", r"\[")):
        InferAnswer.from_bytes(raw, seq=3, width=100, height=50, classes=80)


def test_a_valid_answer_is_clipped_to_the_picture() -> None:
    raw = _answer(detections=[[-3, 2, 120, 40, 0.9, 0]])
    answer = InferAnswer.from_bytes(raw, seq=3, width=100, height=50, classes=80)
    assert answer.detections == (QueryDetection((0.0, 2.0, 100.0, 40.0), 0.9, 0),)
    hello = WorkerHello("m@1", "yolox", ("person",), {"level": "full"})
    assert WorkerHello.from_bytes(hello.to_bytes()) == hello
