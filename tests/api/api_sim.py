"""A stand-in for the running perimeter around a real API server (issue 11 tests).

What is real: the uvicorn server on 127.0.0.1 (a free port) serving ``create_app``, the
:class:`UserStore` (Argon2id, SQLite) in a temp data dir, an archive written with
:class:`Archive` (closed, so a signed checkpoint covers it), the run state written with
``write_run_state``, the :class:`PipeOutbox` on an ``os.pipe`` and, at its read end, the
supervisor's real :class:`Inbox` with the ``api -> supervisor`` row of the edge table.

What stands in for the perimeter (the other side's e2e test runs the real one):
:class:`Supervisor` reads that inbox, keeps every message, and resolves operator verdicts in
the run state the way the supervisor does (first verdict wins; four-eyes needs a second,
different operator), so the API's polling sees them. It answers an ``ExportRequest`` the same
way: a stand-in bundle in ``DATA_DIR/exports/<id>.zip`` (0400) and ``ready <sha256>`` in the
run state (``failed …`` for camera ``nocam``); :data:`EXPORT_ID` is ready from the start. An
``IncidentRequest`` is answered ``done simulated <kind>`` (:data:`INCIDENT_ID` from the start;
the real desk runs in tests/incident).
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import httpx
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI

from kontur.api import ROLES, ApiContext, ApiSettings, PipeOutbox, UserStore, create_app
from kontur.archive import Archive
from kontur.clock import ManualClock
from kontur.extraction import ExtractionSettings, QueryDetector, QueryWorkerSpec, SandboxedDetector
from kontur.wire.channel import Inbox, wait_readable
from kontur.wire.edges import edge
from kontur.wire.messages import (
    AuditEvent,
    Decision,
    ExportRequest,
    IncidentRequest,
    Message,
    OperatorVerdict,
    Outcome,
)
from kontur.wire.runstate import (
    BlockState,
    CameraState,
    PendingRequest,
    RunState,
    export_bundle_path,
    write_run_state,
)

#: Still Argon2id, with less memory and time, so a suite of logins stays fast.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
PASSWORD = "correct horse battery staple"
RTSP_SECRET = "hunter2-secret"
RTSP_URL = f"rtsp://admin:{RTSP_SECRET}@10.0.0.5:554/stream1"
ROLE_NAMES = tuple(ROLES)
#: Pending OPERATOR requests of the default site: one per role (the matrix decides on them).
MATRIX_REQUESTS = tuple(range(100, 100 + len(ROLE_NAMES)))
#: An export request that is ready from the start (the matrix reads it and its bundle).
EXPORT_ID = "e" * 32
#: An incident request that is done from the start (the matrix reads it).
INCIDENT_ID = "1" * 32
#: Settings that no test trips by accident (rate-limit tests use their own).
ROOMY = ApiSettings(rate_per_s=1000.0, burst=10_000, remote_free_failures=1000)


#: Where write_archive puts the decision (segment 0, segment's verdict 1, decision 2).
DECISION_INDEX = 2
#: The box of the sim's decision, in the sim GOP's 160x120 pictures (the bright square).
BOX = (60.0, 30.0, 100.0, 90.0)
GOP_FRAMES = 12


def detect_image() -> str:
    """A query for ``POST /v1/detect``: the sim's 160x120 picture as a base64 PNG."""
    import base64

    import cv2
    import numpy as np

    img = np.full((120, 160, 3), 40, np.uint8)
    img[30:90, 60:100] = 230
    ok, png = cv2.imencode(".png", img)
    assert ok
    return base64.b64encode(png.tobytes()).decode()


def h264_gop(frames: int = GOP_FRAMES) -> bytes:
    """A real H.264 GOP as a kontur segment (libx264, 160x120, a bright square moving right),
    so the picture routes decode what ingest would have stored."""
    import av
    import numpy as np

    from kontur.ingest.segment import SegmentPacket, pack_segment

    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = 160, 120, "yuv420p"
    enc.time_base = Fraction(1, 10)
    enc.options = {"tune": "zerolatency", "g": str(frames), "bf": "0"}
    packets: list[SegmentPacket] = []
    for n in range(frames):
        img = np.full((120, 160, 3), 40, np.uint8)
        img[30:90, 60 + n : 100 + n] = 230
        frame = av.VideoFrame.from_ndarray(img, format="bgr24")
        frame.pts = n
        packets += [SegmentPacket(bytes(p), p.pts, p.is_keyframe) for p in enc.encode(frame)]
    packets += [SegmentPacket(bytes(p), p.pts, p.is_keyframe) for p in enc.encode(None)]
    header = {"codec": "h264", "width": 160, "height": 120, "fps": 10.0, "time_base": "1/10"}
    return pack_segment(header, packets)


def user_of(role: str) -> str:
    """The test user who holds exactly ``role``."""
    return f"{role}-user"


def decision(frame: int) -> Decision:
    """An OPERATOR decision on camera cam1."""
    return Decision(
        camera_id="cam1",
        rule="door-after-hours",
        action="open_door",
        critical=True,
        track_id=7,
        frame_index=frame,
        box=BOX,
        outcome=Outcome.OPERATOR,
        reasons=("verifier disagrees on track 7", f"source {RTSP_URL} reconnected"),
        gops=(1,),
        at=1_700_000_100.0,
    )


@dataclass(frozen=True)
class Archived:
    """What :func:`write_archive` put where."""

    segment: str
    decision_index: int
    event_index: int
    audit_index: int
    size: int


def write_archive(data_dir: Path) -> Archived:
    """A real archive: a segment, a verdict, a decision, an event quoting an RTSP URL with
    credentials, and two audit records; closing it signs a checkpoint."""
    with Archive.open(data_dir) as arc:
        seg = arc.append_segment(h264_gop(), {"camera_id": "cam1", "gop_index": 1})
        sha = seg.payload["sha256"]
        verdict = {"camera_id": "cam1", "gop_index": 1, "verdict": "AUTHENTIC"}
        arc.append(
            "verdict",
            {"verdict": verdict, "first_frame": 0, "last_frame": GOP_FRAMES - 1,
             "segment_sha256": sha},
        )  # fmt: skip
        dec = arc.append("decision", decision(GOP_FRAMES - 1).model_dump(mode="json"))
        assert dec.index == DECISION_INDEX
        ev = arc.append("event", {"event": "source_ended", "source": RTSP_URL})
        login = AuditEvent(actor="ana", action="login", outcome="ok", at=1_700_000_000.0)
        aud = arc.append("audit", login.model_dump(mode="json"))
        refused = AuditEvent(
            actor="mallory", action="video:archive", outcome="refused", at=1_700_000_001.0
        )
        arc.append("audit", refused.model_dump(mode="json"))
        arc.flush()
        size = arc.records
    return Archived(seg.payload["sha256"], dec.index, ev.index, aud.index, size)


#: A camera id that is markup: the System screen must show it as text (ADR 0040's ``camera``
#: comes from the archive, and nothing read there is trusted in HTML).
HOSTILE_CAMERA = '<img src=x onerror="document.title=1">cam&amp;'
#: Degradation transitions as the perimeter archives them (``Health.apply``): the site's has
#: no ``camera`` key, a camera's names its camera (ADR 0040).
TRANSITIONS: tuple[dict[str, object], ...] = (
    {"at": 1_700_000_010.0, "from": "NORMAL", "to": "DEGRADED", "trigger": "worker_crash",
     "detail": "worker exited with 1"},
    {"at": 1_700_000_020.0, "from": "NORMAL", "to": "SAFE", "trigger": "camera_tamper",
     "detail": "lens covered", "camera": "cam1"},
    {"at": 1_700_000_030.0, "from": "NORMAL", "to": "DEGRADED", "trigger": "camera_untrusted",
     "detail": "3 failing GOPs", "camera": HOSTILE_CAMERA},
)  # fmt: skip


def write_transitions(data_dir: Path) -> tuple[int, ...]:
    """Append :data:`TRANSITIONS` to the archive as ``state`` records; their indexes."""
    with Archive.open(data_dir) as arc:
        return tuple(arc.append("state", t).index for t in TRANSITIONS)


def pending(number: int, *, two_person: bool = False, segment: str = "") -> PendingRequest:
    """A pending OPERATOR request ``op-<number>``."""
    return PendingRequest(
        id=f"op-{number}",
        decision_index=DECISION_INDEX,
        decision=decision(number),
        deadline=1_700_000_600.0,
        two_person=two_person,
        gop_verdicts={"1": "AUTHENTIC"},
        segments=(segment,) if segment else (),
    )


def run_state(clock: ManualClock, requests: tuple[PendingRequest, ...]) -> RunState:
    """A run state with a camera whose error quotes its RTSP URL with credentials."""
    return RunState(
        at=clock.wall(),
        site="test-site",
        started_at=clock.wall() - 60,
        state="DEGRADED",
        transitions=2,
        triggers={"worker_crash": 1, "accelerator_reset": 3},
        cameras=(
            CameraState(
                id="cam1",
                frames=100,
                frames_skipped=3,
                gops={"AUTHENTIC": 9, "MISSING": 1},
                detections=40,
                verifier_agree=30,
                verifier_disagree=2,
                decisions={"OPERATOR": 2, "ALLOW": 5},
                classes={"person": 38, "car": 2},
                latency_s=(0.04, 0.2, 0.3, 3.0),
                error=f"{RTSP_URL}: expected an RTSP answer, got connection refused",
            ),
        ),
        blocks=(
            BlockState(name="worker", pid=1234, alive=True, restarts=1),
            BlockState(name="ingest:cam1", pid=1235, alive=False, restarts=0),
        ),
        pending=requests,
        release="people-detector 1.2.0",
        runtime="onnxruntime 1.17",
        archive_records=6,
        archive_head="ab" * 32,
        queue_depths={"worker": 2},
    )


class Supervisor:
    """The supervisor's end of the API's pipe (see the module)."""

    def __init__(self, data_dir: Path, state: RunState, read_fd: int) -> None:
        self.data_dir = data_dir
        self.inbox = Inbox(read_fd, "api", edge=edge("api", "supervisor"))
        self.messages: list[Message] = []
        self.race: dict[str, str] = {}
        """request id → a resolution by someone else, applied instead of a verdict on it."""
        self.ignore: set[str] = set()
        """request ids whose verdicts it receives but never acts on (a hung supervisor)."""
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.publish(state)
        self._thread = threading.Thread(target=self._run, name="supervisor-standin", daemon=True)
        self._thread.start()

    def publish(self, state: RunState) -> None:
        """Write a new snapshot."""
        self.state = state
        write_run_state(self.data_dir, state)

    def _run(self) -> None:
        while not self._stop.is_set() and not self.inbox.eof:
            for inbox in wait_readable([self.inbox], 0.05):
                for msg in inbox.drain():
                    if isinstance(msg, OperatorVerdict):
                        self._resolve(msg)
                    elif isinstance(msg, ExportRequest):
                        self.export(msg.request_id, msg.camera)
                    elif isinstance(msg, IncidentRequest):
                        self.incident(msg.request_id, f"done simulated {msg.kind}")
                    with self._cond:
                        self.messages.append(msg)
                        self._cond.notify_all()

    def _resolve(self, v: OperatorVerdict) -> None:
        st = self.state
        req = next((r for r in st.pending if r.id == v.request_id), None)
        if req is None or v.request_id in self.ignore:
            return
        rest = tuple(r for r in st.pending if r.id != v.request_id)
        if v.request_id in self.race:
            how = self.race[v.request_id]
        elif v.confirm and req.two_person and not req.confirmations:
            later = req.model_copy(update={"confirmations": (v.operator,)})
            self.publish(st.model_copy(update={"pending": (*rest, later)}))
            return
        else:
            who = ", ".join((*req.confirmations, v.operator))
            how = f"{'confirmed' if v.confirm else 'rejected'} by {who}"
        resolved = {**st.resolved, v.request_id: how}
        self.publish(st.model_copy(update={"pending": rest, "resolved": resolved}))

    def export(self, request_id: str, camera: str) -> bytes | None:
        """Answer an export request: a stand-in bundle and ``ready <sha256>``, or ``failed``."""
        if camera == "nocam":
            outcome, data = f"failed expected camera {camera} in the archive, got none", None
        else:
            data = b"PK\x03\x04 stand-in bundle " + request_id.encode()
            path = export_bundle_path(self.data_dir, request_id)
            path.parent.mkdir(mode=0o700, exist_ok=True)
            path.write_bytes(data)
            path.chmod(0o400)
            outcome = f"ready {hashlib.sha256(data).hexdigest()}"
        st = self.state
        self.publish(st.model_copy(update={"exports": {**st.exports, request_id: outcome}}))
        return data

    def incident(self, request_id: str, outcome: str) -> None:
        """Answer an incident request the way the desk does: its outcome in the run state."""
        st = self.state
        self.publish(st.model_copy(update={"incidents": {**st.incidents, request_id: outcome}}))

    def wait_for(self, pred: Callable[[Message], bool], timeout: float = 3.0) -> Message:
        """The first message (received so far or within ``timeout``) that ``pred`` takes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected a matching message, got {self.messages[-5:]}")
                self._cond.wait(left)

    def audit(self, timeout: float = 3.0, **want: object) -> AuditEvent:
        """The first audit event whose fields equal ``want``."""
        msg = self.wait_for(
            lambda m: (
                isinstance(m, AuditEvent) and all(getattr(m, k) == v for k, v in want.items())
            ),
            timeout,
        )
        assert isinstance(msg, AuditEvent)
        return msg

    def audits(self) -> list[AuditEvent]:
        """Every audit event so far."""
        with self._cond:
            return [m for m in self.messages if isinstance(m, AuditEvent)]

    def stop(self) -> None:
        """End the reader thread."""
        self._stop.set()
        self._thread.join(5)


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under a real uvicorn on 127.0.0.1 (a free port) in a thread; its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("expected uvicorn to start, got nothing in 15 s")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@dataclass
class Site:
    """A running API with its data dir, users (one per role, each with a token) and peers."""

    url: str
    data_dir: Path
    clock: ManualClock
    users: UserStore
    supervisor: Supervisor
    archived: Archived
    app: FastAPI
    tokens: dict[str, str] = field(default_factory=dict)

    def client(
        self, role: str | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Client:
        """An httpx client; with ``role``, authenticated by that role's bearer token."""
        headers = dict(headers or {})
        if role is not None:
            headers["Authorization"] = f"Bearer {self.tokens[role]}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=15)

    def login(self, name: str, password: str = PASSWORD) -> tuple[httpx.Client, str]:
        """A client holding a session cookie for ``name``, and the session's CSRF token."""
        c = self.client()
        r = c.post("/auth/login", json={"name": name, "password": password})
        assert r.status_code == 200, r.text
        return c, r.json()["csrf_token"]


@contextmanager
def running_site(
    data_dir: Path,
    settings: ApiSettings = ROOMY,
    requests: tuple[PendingRequest, ...] = (),
    extraction: ExtractionSettings | None = None,
    detector: QueryDetector | None = None,
) -> Iterator[Site]:
    """Everything of the module docstring, torn down on exit. ``POST /v1/detect`` runs
    ``detector``, by default a real sandboxed query worker with the weight-free HOG detector
    (started at the first query only)."""
    clock = ManualClock(wall=1_700_000_300.0)
    archived = write_archive(data_dir)
    users = UserStore.open(data_dir, clock, CHEAP_HASHER)
    tokens = {}
    for role in ROLE_NAMES:
        users.add_user(user_of(role), [role], PASSWORD)
        tokens[role] = users.create_token(user_of(role), "matrix")
    read_fd, write_fd = os.pipe()
    supervisor = Supervisor(data_dir, run_state(clock, requests), read_fd)
    supervisor.export(EXPORT_ID, "cam1")
    supervisor.incident(INCIDENT_ID, "done simulated verify_archive")
    outbox = PipeOutbox(write_fd)
    if detector is None:
        scratch = data_dir / "run" / "scratch" / "query-worker"
        detector = SandboxedDetector(QueryWorkerSpec("hog", scratch_dir=scratch, deny=(data_dir,)))
    extraction = extraction or ExtractionSettings()
    context = ApiContext(data_dir, users, outbox, clock, settings, extraction, detector)
    app = create_app(context)
    try:
        with serve(app) as url:
            yield Site(url, data_dir, clock, users, supervisor, archived, app, tokens)
    finally:
        detector.close()
        outbox.close()
        supervisor.stop()
        os.close(read_fd)
        users.close()
