"""Property: a hostile worker's tracks never crash the verifier, never earn an agreement for a
picture it did not see, and never change ingest's stamp of a frame.

Issue 8 / ADR 0014. Ingest is trusted: it feeds ``observe_frame`` a strictly increasing
stream per camera (a picture most of the time, now and then none). The worker is not: its
``TrackFrame``s name frames that were observed, evicted, never observed, repeated, backwards
or far ahead, cameras that do not exist, pts that lie, duplicate track ids, huge and
degenerate boxes and every confidence the model admits. A model kept here (what ingest
published, and the last frame the worker had checked per camera) says what each finding and
each stamp must be; the gate's own :class:`~kontur.gate.VerifierAgrees` says whether a finding
would let any request through.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from verifier_sim import track_frame

from kontur.config import VerifierConfig
from kontur.gate import ActionRequest, VerifierAgrees
from kontur.gate.request import SystemState, SystemStatus
from kontur.verifier import FRAME_RECORDS, HISTORY_LENGTH, MAX_TRACKS, Verifier
from kontur.verifier.core import FORGET_AFTER_FRAMES, PTS_TOLERANCE_S
from kontur.wire import (
    Finding,
    FrameStamp,
    Outcome,
    TrackedObject,
    WireError,
    decode,
    encode,
)
from kontur.wire.messages import MAX_FRAME_INDEX

#: The cameras ingest serves; the worker also names others.
INGEST_CAMERAS = ("cam1", "cam2")
WORKER_CAMERAS = ("cam1", "cam1", "cam1", "cam2", "camX", "", "CAM1")
#: A person standing still: every track check passes on it, frame after frame.
STILL = (100.0, 100.0, 140.0, 200.0)

_floats = st.floats(allow_nan=False, allow_infinity=False)
_extreme = st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1e-300, 1e300, -1e300, 1.7e308, -1.7e308])
_coord = st.one_of(_floats, _extreme, st.floats(-1e4, 1e4))
_box = st.one_of(
    st.just(STILL),
    st.tuples(_coord, _coord, _coord, _coord),
    st.tuples(st.floats(0, 500), st.floats(0, 500)).map(lambda p: (*p, p[0] + 40.0, p[1] + 100.0)),
)
_track_id = st.one_of(st.integers(0, 5), st.integers(-MAX_FRAME_INDEX, MAX_FRAME_INDEX))


@dataclass(frozen=True)
class Obj:
    """A tracked object as the worker claims it."""

    track_id: int
    class_id: int
    confidence: float
    xyxy: tuple[float, float, float, float]

    def tracked(self) -> TrackedObject:
        return TrackedObject(
            track_id=self.track_id,
            class_id=self.class_id,
            class_name="person",
            confidence=self.confidence,
            xyxy=self.xyxy,
        )


_objects = st.lists(
    st.builds(
        Obj,
        track_id=_track_id,
        class_id=st.one_of(st.just(0), st.integers(0, MAX_FRAME_INDEX)),
        confidence=st.one_of(st.just(0.8), st.sampled_from([0.0, 1.0, 5e-324]), st.floats(0, 1)),
        xyxy=_box,
    ),
    max_size=6,
)


@dataclass(frozen=True)
class WorkerMsg:
    """One TrackFrame, described relative to what ingest published so far."""

    advance: int
    """Ingest frames observed (over all cameras) before the worker's message is checked."""
    camera: str
    frame: tuple[str, int]
    pts: tuple[str, float]
    objects: list[Obj]


_frame_choice = st.one_of(
    st.tuples(st.just("next"), st.integers(0, 2)),
    st.tuples(st.just("next"), st.integers(0, 2)),
    st.tuples(st.just("held"), st.integers(0, FRAME_RECORDS + 50)),
    st.tuples(st.just("ahead"), st.integers(1, 5)),
    st.tuples(st.just("gap"), st.integers(0, 1000)),
    st.tuples(st.just("raw"), st.integers(0, MAX_FRAME_INDEX)),
)
_pts_choice = st.one_of(
    st.tuples(st.just("honest"), st.just(0.0)),
    st.tuples(st.just("honest"), st.just(0.0)),
    st.tuples(st.just("near"), st.floats(-5e-7, 5e-7)),
    st.tuples(st.just("near"), st.sampled_from([-1.0, -2e-6, 2e-6, 1e-3, 3600.0])),
    st.tuples(st.just("lie"), st.one_of(_floats, _extreme)),
)
WORKER = st.lists(
    st.builds(
        WorkerMsg,
        advance=st.integers(0, 40),
        camera=st.sampled_from(WORKER_CAMERAS),
        frame=_frame_choice,
        pts=_pts_choice,
        objects=_objects,
    ),
    max_size=60,
)


@dataclass(frozen=True)
class IngestFrame:
    camera: str
    frame_index: int
    pts_s: float
    gop_index: int
    picture: bool


def ingest_stream(seed: int, frames: int, blind_every: int) -> list[IngestFrame]:
    """Both cameras' FrameReady stream, interleaved: strictly increasing indexes per camera
    (with skipped frames), increasing pts near 10 fps, irregular GOPs; no picture for every
    ``blind_every``-th frame (0: always a picture)."""
    rng = random.Random(seed)
    state = {
        c: (rng.randrange(0, 1000), rng.uniform(-50.0, 1e6), rng.randrange(0, 50))
        for c in INGEST_CAMERAS
    }
    out = []
    for n in range(frames):
        cam = rng.choice(INGEST_CAMERAS)
        index, pts, gop = state[cam]
        picture = not (blind_every and n % blind_every == blind_every - 1)
        out.append(IngestFrame(cam, index, pts, gop, picture))
        state[cam] = (
            index + rng.choice((1, 1, 1, 2, 5)),
            pts + rng.uniform(0.05, 0.2),
            gop + (rng.random() < 0.15),
        )
    return out


@dataclass
class Model:
    """What ingest published and what the worker has had checked, per camera."""

    observed: dict[str, list[IngestFrame]] = field(default_factory=dict)
    blind: set[str] = field(default_factory=set)
    last_checked: dict[str, int] = field(default_factory=dict)

    def observe(self, f: IngestFrame) -> None:
        self.observed.setdefault(f.camera, []).append(f)
        if not f.picture:
            self.blind.add(f.camera)

    def held(self, camera: str, frame_index: int) -> IngestFrame | None:
        for f in self.observed.get(camera, [])[-FRAME_RECORDS:]:
            if f.frame_index == frame_index:
                return f
        return None

    def ever(self, camera: str, frame_index: int) -> IngestFrame | None:
        return next(
            (f for f in self.observed.get(camera, []) if f.frame_index == frame_index), None
        )

    def frame_of(self, msg: WorkerMsg) -> int:
        kind, k = msg.frame
        seen = self.observed.get(msg.camera, [])
        if kind == "raw":
            return k
        if not seen:
            return k % 1000
        if kind == "next":  # the k-th observed frame after the last one checked: honest
            last = self.last_checked.get(msg.camera, -1)
            after = [f.frame_index for f in seen if f.frame_index > last]
            return after[min(k, len(after) - 1)] if after else seen[-1].frame_index + 1
        if kind == "held":
            return seen[max(0, len(seen) - 1 - k)].frame_index
        if kind == "ahead":
            return seen[-1].frame_index + k
        indexes = {f.frame_index for f in seen}
        holes = [f.frame_index + 1 for f in seen if f.frame_index + 1 not in indexes]
        return holes[k % len(holes)] if holes else seen[-1].frame_index + 1

    def pts_of(self, msg: WorkerMsg, frame_index: int) -> float:
        kind, x = msg.pts
        if kind == "lie":
            return x
        f = self.ever(msg.camera, frame_index)
        base = f.pts_s if f is not None else float(frame_index % 10_000) / 10
        return base + (x if kind == "near" else 0.0)

    def stamp(self, camera: str, frame_index: int) -> FrameStamp | None:
        f = self.held(camera, frame_index)
        if f is None:
            return None
        return FrameStamp(
            camera_id=camera, frame_index=frame_index, gop_index=f.gop_index, pts_s=f.pts_s
        )


def _thumbnail(rng: np.random.Generator, picture: bool) -> np.ndarray | None:
    return rng.integers(0, 256, (8, 8), dtype=np.uint8) if picture else None


def _allowed_by_gate(finding: Finding, track_id: int | None) -> bool:
    """Whether the gate's VerifierAgrees would let a request on ``track_id`` through."""
    request = ActionRequest(
        rule="r",
        action="alarm",
        camera_id=finding.camera_id,
        track_id=track_id,
        frame_index=finding.frame_index,
        frames=(finding.frame_index,),
        gops=(0,),
        findings=(finding,),
        status=SystemStatus(SystemState.NORMAL, "test"),
    )
    return VerifierAgrees().evaluate(request).outcome is Outcome.ALLOW


def _check_stats(v: Verifier, model: Model) -> None:
    s = v.stats()
    assert s.cameras == len(model.observed), "the worker made the verifier hold a camera"
    assert s.frame_records == sum(min(len(fs), FRAME_RECORDS) for fs in model.observed.values())
    assert s.tracks <= MAX_TRACKS * max(1, s.cameras)
    assert s.observations <= s.tracks * HISTORY_LENGTH


def _check_one(v: Verifier, model: Model, msg: WorkerMsg) -> None:
    """Feed one worker message and hold the finding to the model."""
    frame_index = model.frame_of(msg)
    pts = model.pts_of(msg, frame_index)
    objects = [o.tracked() for o in msg.objects]
    tracks = track_frame(frame_index, pts, objects, msg.camera)
    cam_seen = msg.camera in model.observed
    record = model.held(msg.camera, frame_index)
    last = model.last_checked.get(msg.camera)
    in_order = last is None or frame_index > last
    honest_pts = record is not None and math.isclose(
        record.pts_s, pts, rel_tol=0.0, abs_tol=PTS_TOLERANCE_S
    )

    finding = v.check(tracks)  # never raises, whatever the worker said

    assert (finding.camera_id, finding.frame_index) == (msg.camera, frame_index)
    if cam_seen and in_order:
        model.last_checked[msg.camera] = frame_index
    scene_bad = not (cam_seen and record is not None and in_order and honest_pts)
    ids = {o.track_id for o in objects}
    if scene_bad:
        # an unobserved camera or frame, a replay or a lie about the time: nothing agrees,
        # and the gate reads it as a scene reason, so no request on any track gets through
        assert not finding.agree and finding.reasons, finding
        fresh = max(ids, default=0) + 1
        for tid in [*ids, fresh, None]:
            assert not _allowed_by_gate(finding, tid), (tid, finding)
    twice = {o.track_id for o in objects if sum(p.track_id == o.track_id for p in objects) > 1}
    for tid in twice if not scene_bad else ():  # (with a scene reason, every track is refused)
        assert finding.track_reasons.get(tid), (tid, finding)
        assert not _allowed_by_gate(finding, tid)
    event(
        f"finding {'agrees' if finding.agree else 'disagrees'}", "scene bad" if scene_bad else "ok"
    )
    if not scene_bad and not objects and msg.camera not in model.blind:
        assert finding.agree and not finding.reasons, finding  # the property is not vacuous
    # ingest's stamp of the frame, whatever the worker said about it
    assert v.stamp(msg.camera, frame_index) == model.stamp(msg.camera, frame_index)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    frames=st.integers(0, 2 * FRAME_RECORDS + 100),
    blind_every=st.sampled_from([0, 0, 7, 50]),
    worker=WORKER,
)
def test_hostile_tracks_never_crash_never_agree_unseen_and_never_move_a_stamp(
    seed: int, frames: int, blind_every: int, worker: list[WorkerMsg]
) -> None:
    """Ingest's stream and the worker's, interleaved: ``check`` never raises; a finding on a
    camera or frame the verifier does not hold, on a frame at or before the last checked,
    or with a pts that is not ingest's, disagrees with a scene reason the gate counts against
    every track; a track reported twice in one frame is disagreed with; ``stamp`` is exactly
    ingest's pts and GOP for held frames and None otherwise; the state stays bounded."""
    rng = np.random.default_rng(seed)
    ingest = ingest_stream(seed, frames, blind_every)
    event(f"ingest frames: {'> FRAME_RECORDS' if frames > FRAME_RECORDS else '<= FRAME_RECORDS'}")
    v = Verifier(VerifierConfig())
    model = Model()
    fed = 0

    def observe(n: int) -> None:
        nonlocal fed
        for f in ingest[fed : fed + n]:
            v.observe_frame(
                f.camera, f.frame_index, f.pts_s, _thumbnail(rng, f.picture), f.gop_index
            )
            model.observe(f)
        fed = min(len(ingest), fed + n)

    for msg in worker:
        observe(msg.advance)
        _check_one(v, model, msg)
        _check_stats(v, model)
    observe(len(ingest))
    _check_stats(v, model)
    asked = {(m.camera, model.frame_of(m)) for m in worker}
    published = {(f.camera, f.frame_index) for f in ingest}
    for camera, frame_index in asked | published | {("camX", 0)}:
        assert v.stamp(camera, frame_index) == model.stamp(camera, frame_index)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), frames=st.integers(1, 40))
def test_an_honest_worker_is_agreed_with(seed: int, frames: int) -> None:
    """The positive control of the property above: the same ingest stream with a worker that
    reports a person standing still on every frame, with ingest's pts, gets agreement
    everywhere, and the gate holds nothing against that track's request but that no pixel
    check looked: with thumbnails alone the verifier measures and vouches for no one (ADR
    0043, 0044), and once vouched for, the request would go through."""
    rng = np.random.default_rng(seed)
    v = Verifier(VerifierConfig())
    for f in ingest_stream(seed, frames, 0):
        v.observe_frame(f.camera, f.frame_index, f.pts_s, _thumbnail(rng, True), f.gop_index)
        person = Obj(7, 0, 0.8, STILL).tracked()
        finding = v.check(track_frame(f.frame_index, f.pts_s, [person], f.camera))
        assert finding.agree and not finding.reasons, finding
        assert not finding.vouched and not finding.measured, finding
        assert not _allowed_by_gate(finding, 7)
        looked = finding.model_copy(update={"vouched": (7,), "measured": (7,)})
        assert _allowed_by_gate(looked, 7)


@settings(max_examples=5, deadline=None)
@given(
    per_frame=st.integers(900, 1800),
    frames=st.integers(3, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_flood_of_track_ids_stays_within_max_tracks_and_is_forgotten(
    per_frame: int, frames: int, seed: int
) -> None:
    """Thousands of new track ids per frame: the verifier holds at most MAX_TRACKS of them
    (the least recently seen go), and a frame FORGET_AFTER_FRAMES later forgets them all."""
    rng = np.random.default_rng(seed)
    v = Verifier(VerifierConfig())
    sent = 0
    for k in range(frames):
        v.observe_frame("cam1", k, k / 10, _thumbnail(rng, True), 0)
        objs = [Obj(sent + i, 0, 0.8, STILL).tracked() for i in range(per_frame)]
        sent += per_frame
        v.check(track_frame(k, k / 10, objs, "cam1"))
        assert v.stats().tracks == min(sent, MAX_TRACKS)
    late = frames + FORGET_AFTER_FRAMES + 1
    v.observe_frame("cam1", late, late / 10, _thumbnail(rng, True), 1)
    v.check(track_frame(late, late / 10, [Obj(-1, 0, 0.8, STILL).tracked()], "cam1"))
    assert v.stats().tracks == 1


def test_a_frame_index_beyond_a_float_never_reaches_the_verifier() -> None:
    """Regression: a track's gap of 10**400 frames crashed TrajectoryContinuity (int * float:
    OverflowError), so a worker could kill its own verifier with a 631-byte line. The wire
    now refuses a frame index over MAX_FRAME_INDEX, and at that bound the verifier answers."""
    v = Verifier(VerifierConfig())
    v.observe_frame("cam1", 0, 0.0, np.zeros((8, 8), np.uint8), 0)
    person = Obj(1, 0, 0.8, STILL).tracked()
    assert v.check(track_frame(0, 0.0, [person], "cam1")).agree
    line = encode(track_frame(0, 0.0, [person], "cam1")).replace(
        b'"frame_index":0', b'"frame_index":1' + b"0" * 400
    )
    with pytest.raises(WireError, match="frame_index"):
        decode(line)
    finding = v.check(track_frame(MAX_FRAME_INDEX, 0.0, [person], "cam1"))
    assert not finding.agree and finding.track_reasons[1]  # never observed; no time passed


@pytest.mark.parametrize(
    "box",
    [
        (-1.7e308, 100.0, 0.0, 100.0),
        (-1.7e308, 100.0, 0.0, 100.0 + 1e-300),
        (0.0, -1.7e308, 1e-300, 0.0),
        (1.0e308, 10.0, 1.7e308, 10.0),
        (-1.7e308, -1.7e308, 1.7e308, 1.7e308),
    ],
)
def test_a_box_at_the_ends_of_the_floats_on_a_watched_picture_is_a_finding(
    box: tuple[float, float, float, float],
) -> None:
    """Found by review: the pixel checks widen a box (its ring, the evasion band), and a
    finite box at the ends of the floats widened to an infinity that crashed ``check`` once
    the background model judged the picture. It is a disagreement, never a crash."""
    from kontur.verifier import make_picture, make_thumbnail

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 255, (360, 640), np.uint8)
    bgr = np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    v = Verifier(VerifierConfig())
    for i in range(25):
        v.observe_frame("cam1", i, i / 10, make_thumbnail(bgr), picture=make_picture(bgr))
        obj = TrackedObject(track_id=7, class_id=0, class_name="person", confidence=0.9, xyxy=box)
        finding = v.check(track_frame(i, i / 10, [obj] if i == 24 else [], "cam1"))
    assert not finding.agree and 7 in finding.track_reasons
