"""Property: however the worker's tracks and the trusted inputs interleave, the gate never
ALLOWs a critical action it may not, and names exactly ingest's GOPs.

Issue 8 / ADR 0014. The gate is fed, in arbitrary interleavings, ingest's GOP verdicts
(trusted, now and then repeated with another verdict, some never sent), the supervisor's
state changes and the verifier's :class:`~kontur.wire.Evidence`, built the way the verifier
builds it: ingest's :class:`~kontur.wire.FrameStamp` (frames strictly increasing, irregular
GOPs), the worker's arbitrary ``TrackFrame`` for that frame (a lying pts, any boxes and
classes, duplicate and huge track ids) and a finding of every shape the verifier gives. A
model kept here says which frames each dwell window spans, so which GOPs (from ingest's
stamps only) each decision must name, and what each decision may be.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import pytest
from gate_sim import HEIGHT, WIDTH, gop, make_config, make_gate, state
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kontur.gate import EvidenceMismatchError, Gate, GateError, UnknownCameraError
from kontur.gate.core import DEFAULT_MAX_GOPS, DEFAULT_MAX_PENDING, OPERATOR_QUEUE
from kontur.gate.policy import MEASURED_SHARE, UNCARRIED_SHARE
from kontur.gate.rules import foot_point, point_in_polygon
from kontur.wire import (
    Decision,
    Evidence,
    Finding,
    FrameStamp,
    Outcome,
    TrackedObject,
    TrackFrame,
)
from kontur.wire.messages import MAX_FRAME_INDEX
from kontur.wire.verdict import Verdict

CAMERAS = ("cam1", "cam2")
#: The zone: the left 60 % of the frame, so where the worker puts a box matters.
ZONE = ((0.0, 0.0), (0.6, 0.0), (0.6, 1.0), (0.0, 1.0))
MIN_SECONDS = 0.5
MAX_GAP_S = 1.0  # DwellRule's default, which rules_from_config keeps
SLACK_S = 1e-6
CLASSES = frozenset({"person"})

# --- what the worker says -------------------------------------------------------------------

_finite = st.floats(allow_nan=False, allow_infinity=False)
_track_id = st.one_of(
    st.integers(0, 3), st.integers(0, 3), st.integers(-MAX_FRAME_INDEX, MAX_FRAME_INDEX)
)
IN_ZONE = (10.0, 10.0, 30.0, 80.0)  # foot point (0.2, 0.8)
OUT_OF_ZONE = (70.0, 10.0, 90.0, 80.0)  # foot point (0.8, 0.8)
_box = st.one_of(
    st.just(IN_ZONE),
    st.just(IN_ZONE),
    st.just(OUT_OF_ZONE),
    st.tuples(_finite, _finite, _finite, _finite),
    st.sampled_from([(-1.7e308, 0.0, 1.7e308, 1.7e308), (1e308, 1e308, 1.7e308, 1.7e308)]),
)
_objects = st.one_of(
    st.just([(0, "person", IN_ZONE)]),
    st.just([(0, "person", IN_ZONE), (1, "person", IN_ZONE)]),
    st.lists(
        st.tuples(_track_id, st.sampled_from(["person", "person", "car", "Person"]), _box),
        max_size=4,
    ),
)
_track_pool = st.integers(0, 3)


@dataclass(frozen=True)
class FindingShape:
    """How the verifier's finding on a frame looks, and what it holds against which track."""

    kind: str
    tracks: frozenset[int]
    unvouched: frozenset[int] = frozenset()
    """Tracks the finding does not vouch for (ADR 0043); it vouches for every other. A request
    needs its track vouched for on its window's last frame."""
    looked: frozenset[int] = frozenset()
    """Tracks it does not vouch for but measured (ADR 0044; it measures every track it vouches
    for). A request needs its track carried for all but ``UNCARRIED_SHARE`` of the frames it
    was measured, each finding standing for the frames up to the window's next."""

    def build(self, cam: str, frame: int, present: set[int]) -> Finding:
        n_objects = len(present)
        ids = sorted(self.tracks)
        per_track: dict[int, tuple[str, ...]] = {
            t: (f"track {t}: speed 9.0 box-heights/s exceeds 8",) for t in ids
        }
        summary = (
            f"{len(ids)} of {max(n_objects, len(ids))} tracked object(s) disagree: "
            + "; ".join(f"track {t} (speed)" for t in ids)
        )
        forged = summary.replace("disagree: ", "disagree: track 99 (speed); ")
        scene = f"frame {frame}: expected a frame the verifier observed (held none), found none"
        silent: dict[int, tuple[str, ...]] = {t: () for t in ids}
        table: dict[str, tuple[bool, tuple[str, ...], dict[int, tuple[str, ...]]]] = {
            "clean": (True, (), {}),
            "named_silently": (True, (), silent),
            "tracks": (False, (summary,), per_track),
            "tracks_no_summary": (False, (), per_track),
            "scene": (False, (scene,), {}),
            "scene_and_tracks": (False, (scene, summary), per_track),
            "silent": (False, (), {}),
            "agree_with_reason": (True, ("scene frozen for 3.2 s",), {}),
            "forged_summary": (False, (forged,), per_track),
        }
        agree, reasons, track_reasons = table[self.kind]
        return Finding(
            camera_id=cam,
            frame_index=frame,
            agree=agree,
            reasons=reasons,
            track_reasons=track_reasons,
            vouched=tuple(sorted((present | set(range(4))) - self.unvouched)),
            measured=tuple(sorted((present | set(range(4))) - (self.unvouched - self.looked))),
        )

    @property
    def scene_bad(self) -> bool:
        """Whether the finding disagrees on the scene: every track's request is refused."""
        return self.kind in {
            "scene",
            "scene_and_tracks",
            "silent",
            "agree_with_reason",
            "forged_summary",
        }

    def against(self, track_id: int) -> bool:
        """Whether the finding holds anything against a request on ``track_id``."""
        return self.scene_bad or (self.kind != "clean" and track_id in self.tracks)


_clean = FindingShape("clean", frozenset())
_shape = st.one_of(
    st.just(_clean),
    st.just(_clean),
    st.just(_clean),
    st.just(_clean),
    st.builds(FindingShape, st.just("clean"), st.just(frozenset()), st.frozensets(_track_pool)),
    st.frozensets(_track_pool, min_size=1, max_size=2).map(
        lambda ts: FindingShape("clean", frozenset(), ts, ts)  # measured, not carried
    ),
    st.builds(
        FindingShape,
        st.sampled_from(
            [
                "named_silently",
                "tracks",
                "tracks_no_summary",
                "scene",
                "scene_and_tracks",
                "silent",
                "agree_with_reason",
                "forged_summary",
            ]
        ),
        st.frozensets(_track_pool, min_size=1, max_size=3),
        st.frozensets(_track_pool, max_size=2),
    ),
)

# --- the interleaved inputs -----------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """Ingest publishes the next frame of ``cam``; the worker's tracks and a finding follow."""

    cam: int
    frame_step: int
    pts_step: float
    new_gop: bool
    objects: list[tuple[int, str, tuple[float, float, float, float]]]
    worker_pts: float
    shape: FindingShape
    repeat: int = 1
    """Frames in a row like this one (a person standing for a while)."""


@dataclass(frozen=True)
class GopVerdictIn:
    """Ingest's verdict on a GOP of ``cam`` (``back`` GOPs before the current one)."""

    cam: int
    back: int
    verdict: Verdict


@dataclass(frozen=True)
class GopTwice:
    """Ingest sends two verdicts for one GOP (a repeat): the more severe must stand."""

    cam: int
    back: int
    first: Verdict
    second: Verdict


@dataclass(frozen=True)
class StateIn:
    to: str


@dataclass(frozen=True)
class BadEvidence:
    """Evidence the gate cannot judge (a verifier bug), or about an unconfigured camera."""

    kind: str


_verdicts = st.sampled_from([Verdict.AUTHENTIC] * 6 + list(Verdict))
_frames = st.builds(
    Frame,
    cam=st.sampled_from([0, 0, 1]),
    frame_step=st.sampled_from([1, 1, 1, 2, 7]),
    pts_step=st.sampled_from([0.0, 1 / 16, 1 / 8, 1 / 8, 1 / 4, 1 / 4, 1 / 2, 1.0, 1.25, 2.0]),
    new_gop=st.booleans(),
    objects=_objects,
    worker_pts=st.one_of(_finite, st.just(0.0)),
    shape=_shape,
    repeat=st.integers(1, 12),
)
EVENTS = st.lists(
    st.one_of(
        _frames,
        _frames,
        st.builds(
            GopVerdictIn,
            st.sampled_from([0, 0, 1]),
            st.sampled_from([-1, 0, 0, 1, 1, 2, 4]),
            _verdicts,
        ),
        st.builds(
            GopTwice, st.sampled_from([0, 0, 1]), st.sampled_from([0, 1, 2]), _verdicts, _verdicts
        ),
        st.builds(
            StateIn, st.sampled_from(["NORMAL", "NORMAL", "DEGRADED", "SAFE", "normal", "bogus"])
        ),
        st.builds(BadEvidence, st.sampled_from(["frame", "camera", "unknown", "gop_unknown"])),
    ),
    min_size=5,
    max_size=80,
)

# --- the model ------------------------------------------------------------------------------


@dataclass
class Window:
    entered: float
    last: float
    fired: bool = False
    frames: list[int] = field(default_factory=list)
    shapes: list[FindingShape] = field(default_factory=list)
    foot: tuple[float, float] = (0.0, 0.0)
    height: float = 0.0
    ids: tuple[int, ...] = ()
    """Earlier ids of the object (ADR 0042: the dwell follows it across an id change)..."""
    renamed: tuple[float, int] | None = None
    """... and when the current id took over, with how many frames came before."""


@dataclass
class Request:
    cam: str
    track_id: int
    frame_index: int
    gops: tuple[int, ...]
    shapes: list[FindingShape]
    normal_throughout: bool
    earlier: tuple[int, ...] = ()
    frames: tuple[int, ...] = ()


@dataclass
class Camera:
    frame: int = -1
    pts: float = 0.0
    gop: int = 0
    gop_of: dict[int, int] = field(default_factory=dict)
    windows: dict[int, Window] = field(default_factory=dict)
    started: bool = False


@dataclass
class Model:
    cams: dict[str, Camera] = field(default_factory=lambda: {c: Camera() for c in CAMERAS})
    received: dict[tuple[str, int], list[Verdict]] = field(default_factory=dict)
    kept: dict[str, OrderedDict[int, None]] = field(default_factory=dict)
    """The GOPs whose verdict the gate still keeps, newest last (max_gops_per_camera)."""
    normal: bool = True
    pending: dict[tuple[str, int | None, int], Request] = field(default_factory=dict)
    decided: set[tuple[str, int | None, int]] = field(default_factory=set)

    def dwell(self, cam_id: str, stamp: FrameStamp, ev: Evidence, shape: FindingShape) -> None:
        """The dwell of ADR 0007 on ingest's stamp alone: which requests this frame fires."""
        cam = self.cams[cam_id]
        pts = stamp.pts_s
        self.take_over(cam, ev, pts)
        for obj in ev.tracks.objects:
            fx, fy = foot_point(obj.xyxy, WIDTH, HEIGHT)
            if obj.class_name not in CLASSES or not point_in_polygon(fx, fy, ZONE):
                cam.windows.pop(obj.track_id, None)
                continue
            w = cam.windows.get(obj.track_id)
            if w is None or pts - w.last > MAX_GAP_S + SLACK_S:
                w = cam.windows[obj.track_id] = Window(entered=pts, last=pts)
            w.last = pts
            w.foot = (fx, fy)
            h = (obj.xyxy[3] - obj.xyxy[1]) / HEIGHT
            w.height = min(max(h, 0.0), 1.0)
            if w.fired:
                continue
            w.frames.append(stamp.frame_index)
            w.shapes.append(shape)
            if pts - w.entered >= MIN_SECONDS - SLACK_S:
                key: tuple[str, int | None, int] = (cam_id, obj.track_id, stamp.frame_index)
                assert key not in self.pending and key not in self.decided
                self.pending[key] = Request(
                    cam_id,
                    obj.track_id,
                    stamp.frame_index,
                    tuple(sorted({cam.gop_of[f] for f in w.frames})),  # ingest's GOPs only
                    list(w.shapes),
                    self.normal,
                    w.ids,
                    tuple(w.frames),
                )
                if w.renamed is None:
                    w.fired, w.frames, w.shapes = True, [], []
                else:  # the current id's own dwell from when it took over goes on
                    (w.entered, k), w.renamed, w.ids = w.renamed, None, ()
                    w.frames, w.shapes = w.frames[k:], w.shapes[k:]
        cam.windows = {t: w for t, w in cam.windows.items() if pts - w.last <= MAX_GAP_S + SLACK_S}

    @staticmethod
    def take_over(cam: Camera, ev: Evidence, pts: float) -> None:
        """A new id in the zone, near where an unreported object's unfired dwell was last
        seen (half its height, plus one a second unseen), takes that dwell over, nearest
        pair first."""
        objects = ev.tracks.objects
        said = {o.track_id for o in objects}

        def open_(w: Window | None) -> bool:
            return w is not None and pts - w.last <= MAX_GAP_S + SLACK_S

        new = {}
        for o in objects:
            foot = foot_point(o.xyxy, WIDTH, HEIGHT)
            inside = o.class_name in CLASSES and point_in_polygon(*foot, ZONE)
            if inside and not open_(cam.windows.get(o.track_id)):
                new.setdefault(o.track_id, []).append(foot)
        lost = {t: w for t, w in cam.windows.items() if t not in said and not w.fired and open_(w)}
        pairs = sorted(
            (math.dist(((f[0] - w.foot[0]) * WIDTH / HEIGHT, f[1]), (0.0, w.foot[1])), n, t)
            for n, feet in new.items()
            for f in feet
            for t, w in lost.items()
            if math.dist(((f[0] - w.foot[0]) * WIDTH / HEIGHT, f[1]), (0.0, w.foot[1]))
            <= w.height * (0.5 + (pts - w.last))
        )
        taken: set[int] = set()
        for _, n, t in pairs:
            if t in cam.windows and n not in taken:
                w = cam.windows.pop(t)
                w.ids = (*w.ids, t)
                w.renamed = (pts, len(w.frames))
                cam.windows[n] = w
                taken.add(n)

    def may_allow(self, req: Request) -> bool:
        """Every GOP AUTHENTIC by every verdict ingest sent, NORMAL throughout, no finding of
        the window against the track or the scene."""
        gops_ok = all(
            self.received.get((req.cam, g))
            and set(self.received[(req.cam, g)]) == {Verdict.AUTHENTIC}
            for g in req.gops
        )
        findings_ok = not any(
            s.against(t) for s in req.shapes for t in (req.track_id, *req.earlier)
        )
        one_id = not [t for t in req.earlier if t != req.track_id]  # ADR 0042
        looked = bool(req.shapes) and req.track_id not in req.shapes[-1].unvouched  # ADR 0043
        seen = _carried_enough(req)  # ADR 0044
        return gops_ok and findings_ok and one_id and looked and seen and req.normal_throughout


def _carried_enough(req: Request) -> bool:
    """ADR 0044: the verifier measured the track over ``MEASURED_SHARE`` of the window or
    more (each finding standing for the frames up to the window's next), and carried it on
    all but ``UNCARRIED_SHARE`` of that."""
    spans = [b - a for a, b in itertools.pairwise(req.frames)] + [1]
    t = req.track_id
    looked = uncarried = 0
    for shape, span in zip(req.shapes, spans, strict=True):
        if t not in shape.unvouched or t in shape.looked:
            looked += span
            uncarried += span if t in shape.unvouched else 0
    return looked >= MEASURED_SHARE * sum(spans) and uncarried <= UNCARRIED_SHARE * looked


class Run:
    """The gate and the model, fed together; every decision is checked as it comes out."""

    def __init__(self, gate: Gate, exact: bool, max_gops: int, max_pending: int) -> None:
        self.gate = gate
        self.model = Model()
        self.exact = exact
        self.max_gops = max_gops
        self.max_pending = max_pending

    def decided(self, decisions: list[Decision]) -> None:
        m = self.model
        for d in decisions:
            key = (d.camera_id, d.track_id, d.frame_index)
            assert key in m.pending, f"a decision on no request the model fired: {d}"
            req = m.pending.pop(key)
            m.decided.add(key)
            assert d.critical and d.action == "alarm"
            assert d.gops == req.gops, (d.gops, req.gops)
            allowed = m.may_allow(req)
            if d.outcome is Outcome.ALLOW:
                assert allowed, f"ALLOWed what it may not: {d} for {req}"
                assert d.executed == "alarm"
            else:
                assert d.executed in (None, "notify", OPERATOR_QUEUE)
            if self.exact:
                assert (d.outcome is Outcome.ALLOW) == allowed, (d, req)
            event(f"decision {d.outcome.value}")
        assert self.gate.pending <= self.max_pending
        assert len(m.pending) >= self.gate.pending
        for c in CAMERAS:
            assert self.gate.known_gops(c) <= self.max_gops

    def frame(self, e: Frame) -> None:
        cam_id = CAMERAS[e.cam]
        cam = self.model.cams[cam_id]
        cam.frame = cam.frame + e.frame_step if cam.started else 0
        cam.pts += e.pts_step if cam.started else 0.0
        if cam.started and e.new_gop:
            cam.gop += 1
        cam.started = True
        cam.gop_of[cam.frame] = cam.gop
        stamp = FrameStamp(
            camera_id=cam_id, frame_index=cam.frame, gop_index=cam.gop, pts_s=cam.pts
        )
        objs = tuple(
            TrackedObject(track_id=t, class_id=0, class_name=c, confidence=0.9, xyxy=box)
            for t, c, box in e.objects
        )
        tracks = TrackFrame(
            camera_id=cam_id,
            frame_index=cam.frame,
            pts_s=e.worker_pts,  # the worker's word: a lie as often as not
            model_id="m",
            config_id="c",
            platform="cpu",
            objects=objs,
            detections=len(objs),
        )
        finding = e.shape.build(cam_id, cam.frame, {o.track_id for o in objs})
        ev = Evidence(frame=stamp, tracks=tracks, finding=finding)
        self.model.dwell(cam_id, stamp, ev, e.shape)
        self.decided(self.gate.on_evidence(ev))

    def verdict(self, e: GopVerdictIn) -> None:
        cam_id = CAMERAS[e.cam]
        index = self.model.cams[cam_id].gop - e.back
        if index < 0:
            return
        kept = self.model.kept.setdefault(cam_id, OrderedDict())
        if (cam_id, index) in self.model.received and index not in kept:
            # A repeat of a verdict the gate already dropped (more than max_gops_per_camera
            # GOPs ago) would be taken as new: trust could go up. Ingest sends one verdict
            # per GOP, so this run does not repeat one that old.
            return
        kept[index] = None
        kept.move_to_end(index)
        while len(kept) > self.max_gops:
            kept.popitem(last=False)
        self.model.received.setdefault((cam_id, index), []).append(e.verdict)
        self.decided(self.gate.on_gop(gop(index, e.verdict, cam=cam_id)))

    def state(self, e: StateIn) -> None:
        self.model.normal = e.to.upper() == "NORMAL"
        if not self.model.normal:
            for req in self.model.pending.values():
                req.normal_throughout = False
        self.decided(self.gate.on_state(state(e.to)))

    def bad(self, e: BadEvidence) -> None:
        before = (self.gate.pending, [self.gate.known_gops(c) for c in CAMERAS])
        cam = self.model.cams["cam1"]
        stamp = FrameStamp(
            camera_id="cam1", frame_index=cam.frame + 1, gop_index=cam.gop, pts_s=cam.pts
        )
        tracks = TrackFrame(
            camera_id="cam1",
            frame_index=cam.frame + 1,
            pts_s=cam.pts,
            model_id="m",
            config_id="c",
            platform="cpu",
            objects=(),
            detections=0,
        )
        finding = Finding(camera_id="cam1", frame_index=cam.frame + 1, agree=True)
        if e.kind == "frame":
            other = finding.model_copy(update={"frame_index": cam.frame + 2})
            with pytest.raises(EvidenceMismatchError, match="about one frame"):
                self.gate.on_evidence(Evidence(frame=stamp, tracks=tracks, finding=other))
        elif e.kind == "camera":
            other_tracks = tracks.model_copy(update={"camera_id": "cam2"})
            with pytest.raises(EvidenceMismatchError, match="about one frame"):
                self.gate.on_evidence(Evidence(frame=stamp, tracks=other_tracks, finding=finding))
        elif e.kind == "unknown":
            ev = Evidence(
                frame=stamp.model_copy(update={"camera_id": "camX"}),
                tracks=tracks.model_copy(update={"camera_id": "camX"}),
                finding=finding.model_copy(update={"camera_id": "camX"}),
            )
            with pytest.raises(UnknownCameraError, match="camX"):
                self.gate.on_evidence(ev)
        else:
            with pytest.raises(UnknownCameraError, match="camX"):
                self.gate.on_gop(gop(0, Verdict.AUTHENTIC, cam="camX"))
        assert (self.gate.pending, [self.gate.known_gops(c) for c in CAMERAS]) == before


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    events=EVENTS,
    closing=st.one_of(st.just([Verdict.AUTHENTIC]), st.lists(_verdicts, max_size=8)),
    bounds=st.sampled_from(
        [
            (DEFAULT_MAX_GOPS, DEFAULT_MAX_PENDING),
            (DEFAULT_MAX_GOPS, 2),
            (DEFAULT_MAX_GOPS, 1),
            (3, DEFAULT_MAX_PENDING),
            (2, 3),
        ]
    ),
)
def test_the_gate_never_allows_what_ingest_the_state_or_the_verifier_refuse(
    events: list[Frame | GopVerdictIn | GopTwice | StateIn | BadEvidence],
    closing: list[Verdict],
    bounds: tuple[int, int],
) -> None:
    """Arbitrary interleavings of verdicts, states, evidence with the worker's arbitrary tracks
    and bad evidence: the gate raises only the documented GateError subclasses for evidence it
    cannot judge (and then changes nothing); every decision answers exactly one request of the
    dwell model and names exactly the GOPs ingest stamped on the frames of its window; an
    ALLOW needs every one of those GOPs AUTHENTIC by every verdict ingest sent for it, the
    system NORMAL from trigger to decision and no finding of the window against the track or
    the scene (and with the default bounds, that is also enough); held requests and kept
    verdicts stay within their bounds; flush decides everything still held."""
    max_gops, max_pending = bounds
    config = make_config(cameras=CAMERAS, min_seconds=MIN_SECONDS, polygon=ZONE)
    gate, _ = make_gate(config, max_gops_per_camera=max_gops, max_pending=max_pending)
    run = Run(gate, exact=max_gops == DEFAULT_MAX_GOPS, max_gops=max_gops, max_pending=max_pending)
    for e in events:
        try:
            if isinstance(e, Frame):
                for _ in range(e.repeat):
                    run.frame(e)
            elif isinstance(e, GopVerdictIn):
                run.verdict(e)
            elif isinstance(e, GopTwice):
                run.verdict(GopVerdictIn(e.cam, e.back, e.first))
                run.verdict(GopVerdictIn(e.cam, e.back, e.second))
            elif isinstance(e, StateIn):
                run.state(e)
            else:
                run.bad(e)
        except GateError as exc:  # pragma: no cover - the model fed nothing the gate may refuse
            raise AssertionError(f"unexpected {type(exc).__name__}: {exc}") from exc
    for cam in (0, 1):  # ingest closes every GOP of the run (the verdicts cycle ``closing``)
        last = run.model.cams[CAMERAS[cam]].gop
        for back in range(last, -1, -1) if closing else ():
            run.verdict(GopVerdictIn(cam, back, closing[back % len(closing)]))
    run.decided(gate.flush())
    assert gate.pending == 0
    assert run.model.pending == {}, "requests the model fired that the gate never decided"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shapes=st.lists(_shape, min_size=4, max_size=40),
    steps=st.lists(st.sampled_from([1 / 16, 1 / 8, 1 / 4]), min_size=1),
    never_vouched=st.frozensets(st.integers(0, 1)),
)
def test_only_a_finding_against_the_track_or_the_scene_holds_a_request_back(
    shapes: list[FindingShape], steps: list[float], never_vouched: frozenset[int]
) -> None:
    """Two people stand in the zone, every GOP is AUTHENTIC and the system NORMAL, and the
    verifier's finding on each frame has any shape it can have: a request on a track is
    ALLOWed exactly when no finding of its window holds anything against that track or the
    scene (another track's reasons do not count; a scene reason, a disagreement without a
    reason, a reason under ``agree`` or a summary that does not match its tracks do), and
    the finding on the frame it fired vouched for the track (ADR 0043), and the verifier
    measured it over half its window or more, carrying it for two thirds of that (ADR 0044)."""
    config = make_config(cameras=CAMERAS, min_seconds=MIN_SECONDS, polygon=ZONE)
    gate, _ = make_gate(config)
    run = Run(gate, exact=True, max_gops=DEFAULT_MAX_GOPS, max_pending=DEFAULT_MAX_PENDING)
    people = [(0, "person", IN_ZONE), (1, "person", IN_ZONE)]
    for i, shape in enumerate(shapes):
        step = steps[i % len(steps)]
        shape = replace(shape, unvouched=shape.unvouched | never_vouched)
        run.frame(Frame(0, 1, step, i % 3 == 0, people, -1.0, shape))
        run.verdict(GopVerdictIn(0, 0, Verdict.AUTHENTIC))
    run.decided(gate.flush())
    assert run.model.pending == {} and gate.pending == 0
