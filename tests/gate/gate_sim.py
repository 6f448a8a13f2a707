"""Builders for the gate's tests: a config, a scene simulator, GOP verdicts, a gate.

Imported by the tests as ``gate_sim`` (tests/ has no packages).
"""

from __future__ import annotations

import http.server
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from kontur.clock import ManualClock
from kontur.config import Config
from kontur.gate import Gate
from kontur.wire import (
    Evidence,
    Finding,
    FrameStamp,
    GopClosed,
    StateChanged,
    TrackedObject,
    TrackFrame,
)
from kontur.wire.verdict import GopVerdict, Verdict

FPS = 10
GOP_LEN = 10  # frames per GOP: one second at FPS
WIDTH, HEIGHT = 100, 100
#: A person standing in the middle of the frame (foot point (0.5, 0.9)).
PERSON = (7, "person", (40.0, 20.0, 60.0, 90.0))


def make_config(
    *,
    signing_required: bool = False,
    min_seconds: float = 2.0,
    polygon: Sequence[Sequence[float]] | None = None,
    zone_camera: str = "*",
    actions: dict[str, Any] | None = None,
    action: str = "alarm",
    cameras: Sequence[str] = ("cam1",),
) -> Config:
    """The embedded defaults with the given changes."""
    raw = yaml.safe_load(resources.files("kontur").joinpath("defaults/kontur.yaml").read_text())
    raw["cameras"] = [{"id": c, "signing_required": signing_required} for c in cameras]
    if polygon is not None:
        raw["zones"] = [{"id": "z", "camera": zone_camera, "polygon": [list(p) for p in polygon]}]
    else:
        raw["zones"][0]["camera"] = zone_camera
    zone = raw["zones"][0]["id"]
    if actions is not None:
        raw["actions"] = actions
    raw["policies"][0].update(action=action, when={**raw["policies"][0]["when"], "zone": zone})
    raw["policies"][0]["when"]["min_seconds"] = min_seconds
    return Config.model_validate(raw)


def track_frame(
    frame: int,
    objects: Sequence[tuple[int, str, tuple[float, float, float, float]]] = (PERSON,),
    *,
    cam: str = "cam1",
    pts: float | None = None,
) -> TrackFrame:
    """The worker's result for ``frame`` at FPS, in GOP ``frame // GOP_LEN``."""
    objs = tuple(
        TrackedObject(track_id=t, class_id=0, class_name=c, confidence=0.9, xyxy=box)
        for t, c, box in objects
    )
    return TrackFrame(
        camera_id=cam,
        frame_index=frame,
        pts_s=frame / FPS if pts is None else pts,
        model_id="m",
        config_id="c",
        platform="cpu",
        objects=objs,
        detections=len(objs),
    )


def evidence(
    frame: int,
    objects: Sequence[tuple[int, str, tuple[float, float, float, float]]] = (PERSON,),
    *,
    cam: str = "cam1",
    agree: bool = True,
    reasons: Sequence[str] = (),
    track_reasons: dict[int, Sequence[str]] | None = None,
    pts: float | None = None,
    gop_index: int | None = None,
    vouched: Sequence[int] | None = None,
    measured: Sequence[int] | None = None,
    jumped: Sequence[int] = (),
) -> Evidence:
    """Tracks for ``frame`` with the verifier's finding on them and ingest's stamp.

    Ingest stamps the frame in GOP ``frame // GOP_LEN`` (or ``gop_index``) at ``pts``. The
    verifier vouches for ``vouched`` (default: every object it gives no reason on, as its
    pixels do for people walking in a learnt scene; ADR 0043), ``measured`` those (ADR
    0044; default: the ones it vouches for), and saw ``jumped`` jump (ADR 0053).
    """
    named = {k: tuple(v) for k, v in (track_reasons or {}).items()}
    if vouched is None:
        vouched = [o[0] for o in objects if o[0] not in named]
    finding = Finding(
        camera_id=cam,
        frame_index=frame,
        agree=agree,
        reasons=tuple(reasons),
        track_reasons=named,
        vouched=tuple(vouched),
        measured=tuple(vouched if measured is None else measured),
        jumped=tuple(jumped),
    )
    tracks = track_frame(frame, objects, cam=cam, pts=pts)
    stamp = FrameStamp(
        camera_id=cam,
        frame_index=frame,
        gop_index=frame // GOP_LEN if gop_index is None else gop_index,
        pts_s=tracks.pts_s,
    )
    return Evidence(frame=stamp, tracks=tracks, finding=finding)


def gop(index: int, verdict: Verdict = Verdict.AUTHENTIC, *, cam: str = "cam1") -> GopClosed:
    """Ingest closed GOP ``index`` with ``verdict``."""
    return GopClosed(
        verdict=GopVerdict(
            camera_id=cam,
            gop_index=index,
            verdict=verdict,
            reasons=(f"ingest says {verdict.value}",),
        ),
        first_frame=index * GOP_LEN,
        last_frame=index * GOP_LEN + GOP_LEN - 1,
        start_pts_s=index * GOP_LEN / FPS,
        end_pts_s=(index + 1) * GOP_LEN / FPS,
        segment_sha256="0" * 64,
        segment_size=1,
    )


def state(to: str, trigger: str = "worker_crash", frm: str = "NORMAL") -> StateChanged:
    """The degradation machine moved to ``to``."""
    return StateChanged(at=0.0, from_state=frm, to_state=to, trigger=trigger)


def make_gate(config: Config | None = None, **kw: Any) -> tuple[Gate, ManualClock]:
    """A gate on ``config`` (default: :func:`make_config`) knowing cam1's frame size."""
    clock = ManualClock()
    cfg = config or make_config()
    g = Gate(cfg, clock, **kw)
    for cam in cfg.cameras:
        g.set_frame_size(cam.id, WIDTH, HEIGHT)
    return g, clock


@dataclass
class Received:
    """What the local HTTP server was sent."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Peer:
    """A real HTTP server on 127.0.0.1 in a thread; ``status`` is what it answers."""

    server: http.server.ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    status: int = 200
    location: str | None = None

    @property
    def url(self) -> str:
        """Where it listens."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hook"
