"""The pure ingest core (:mod:`kontur.ingest.core`), driven directly with real signed footage.

- default mode: each decoded frame comes back as a Publish with its index, each GOP cut as a
  StoreSegment, and each GOP's verdict (Closed) as soon as the next GOP's packets decide it;
- strict mode: a GOP is decoded only after its verdict (Decode), and a GOP whose signature
  failed is never decoded;
- a step out of order is a caller bug (RuntimeError);
- an attack (a flipped bit, a replayed GOP) gets the same verdicts through the core, through
  :func:`~kontur.ingest.recording.check_recording` and through the live ingest process.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import shared
from tests.ingest.attacks.streams import Packet, enrolled_signed_clip, flip, read_clip
from tests.ingest.ingest_harness import IngestRig

from kontur.archive import SegmentStore
from kontur.clock import SystemClock
from kontur.ingest.checks import GopChecker, StreamInfo
from kontur.ingest.core import Closed, Decode, Event, IngestCore, Publish, StoreSegment
from kontur.ingest.freshness import FreshnessPolicy
from kontur.ingest.inventory import FreshnessGuard, FreshnessStore, Inventory
from kontur.ingest.recording import check_recording
from kontur.ingest.segment import SegmentPacket, pack_segment
from kontur.ingest.signedtime import TimeStatus
from kontur.ingest.source import GopDecoder, RawGop, probe, read_gops
from kontur.ingest.verdict import Verdict
from kontur.wire import GopClosed

#: GOPs of the signed clip, and frames per GOP.
GOPS, PER_GOP = 6, 10
#: Freshness bounds loose enough that a clip signed minutes ago is not late.
POLICY = FreshnessPolicy(max_delay_s=3600.0)


@dataclass(frozen=True)
class Site:
    """A site inventory with camera ``cam`` enrolled, and a clip that camera signed."""

    data: Path
    signed: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """60 pictures of PETS09 (6 GOPs of 10 at 10 fps) signed by the enrolled camera."""
    avi = shared("video", "pets09_s2l1_480x360.avi")
    tmp = tmp_path_factory.mktemp("core")
    data, signed = enrolled_signed_clip(tmp, avi, GOPS * PER_GOP, PER_GOP)
    return Site(data, signed)


def _guard(site: Site, fresh: Path) -> FreshnessGuard:
    """The site's inventory with an empty replay state of its own."""
    clock = SystemClock()
    return FreshnessGuard(
        Inventory.open(site.data, clock), FreshnessStore.open(fresh), POLICY, clock
    )


class Driver:
    """What the live shell does around the core, minus ring, pipes and sandbox: demux,
    decode in this process, store segments in a real store, decode strict GOPs on Decode.
    Every event is kept, in the order the core returned it."""

    def __init__(self, core: IngestCore, guard: FreshnessGuard, store: SegmentStore) -> None:
        self.core, self.guard, self.store = core, guard, store
        self.events: list[Event] = []
        self.decoder: GopDecoder | None = None

    def run(self, source: Path) -> list[Event]:
        strict = self.core.strict
        src = str(source)
        gops = read_gops(
            src,
            probe(src, decode=not strict),
            decode=not strict,
            on_packet=self._packet,
            on_frame=None if strict else lambda fr: self._act(self.core.frame(fr.pts_s, fr.image)),
        )
        for gop in gops:
            self._cut(gop)
        self._act(self.core.finish())
        return self.events

    def _packet(
        self, packet: SegmentPacket, header: dict[str, object], info: StreamInfo
    ) -> SegmentPacket:
        if not self.core.started:
            self.core.start(header, info, guard=self.guard)
            if self.core.strict:
                tb = str(header.get("time_base") or "") or None
                extradata = bytes.fromhex(str(header.get("extradata") or ""))
                self.decoder = GopDecoder(info.codec, extradata, tb, info.fps)
        self._act(self.core.packet(packet, info))
        return packet

    def _cut(self, gop: RawGop) -> None:
        ev = self.core.cut(gop, gop.notes)
        self.events.append(ev)
        self._act(self.core.stored(self.store.put(pack_segment(ev.header, list(ev.packets)))))

    def _act(self, events: list[Event] | list[Publish]) -> None:
        todo: deque[Event] = deque(events)
        while todo:
            ev = todo.popleft()
            self.events.append(ev)
            if isinstance(ev, Decode):
                if ev.decode:
                    assert self.decoder is not None
                    for fr in self.decoder.frames(list(ev.packets), list(ev.pictures)):
                        self.events += self.core.frame(fr.pts_s, fr.image)
                todo.extendleft(reversed(self.core.decoded()))


def _drive(site: Site, tmp: Path, source: Path, *, strict: bool = False) -> list[Event]:
    profile = probe(str(source)).profile()
    core = IngestCore("cam", checker=GopChecker("cam", profile), strict=strict)
    store = SegmentStore(tmp / f"segments-{strict}")
    return Driver(core, _guard(site, tmp / f"fresh-{strict}"), store).run(source)


def _of(events: list[Event], kind: type[Event]) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


def _ingest(tmp: Path, site: Site, source: Path, strict: bool) -> list[GopClosed]:
    """The GOPs the live ingest process closed, with the site's inventory and a fresh
    replay state."""
    spec = {"freshness": {"max_delay_s": POLICY.max_delay_s}}
    with IngestRig(tmp, source, strict=strict, spec=spec) as rig:
        rig.data_dir.mkdir()
        for name in ("inventory.sqlite", "site-ca.pem", "site-ca.key"):
            (rig.data_dir / name).write_bytes((site.data / name).read_bytes())
        run = rig.run()
    assert run.returncode == 0, run.stderr
    return run.of(GopClosed)


# -- default and strict mode -----------------------------------------------------------------


def test_default_mode_publishes_as_decoded_and_closes_a_gop_on_the_next_ones_packets(
    site: Site, tmp_path: Path
) -> None:
    events = _drive(site, tmp_path, site.signed)
    published = _of(events, Publish)
    assert [p.frame_index for p in published] == list(range(GOPS * PER_GOP))
    assert [p.gop_index for p in published] == [i // PER_GOP for i in range(GOPS * PER_GOP)]
    assert all(p.image.shape == (360, 480, 3) for p in published)
    stored = _of(events, StoreSegment)
    assert [(s.gop_index, s.header["camera_id"], s.header["gop_index"]) for s in stored] == [
        (i, "cam", i) for i in range(GOPS)
    ]
    closed = _of(events, Closed)
    assert [c.verdict.gop_index for c in closed] == list(range(GOPS))
    for i, c in enumerate(closed):
        assert c.verdict.verdict is Verdict.AUTHENTIC, c.verdict.reasons
        assert "fresh: key, chain, capture time, counter and hash check out" in c.verdict.reasons
        assert (c.first_frame, c.last_frame) == (i * PER_GOP, i * PER_GOP + PER_GOP - 1)
        assert c.end_pts_s - c.start_pts_s == pytest.approx((PER_GOP - 1) / 10)
        assert c.time.status is TimeStatus.OK and c.decoded
        assert c.segment is not None and c.signature()["time"] == c.time.record()
    # GOP k is decided by GOP k+1's packets (its SEI), before GOP k+1 is cut; the last at
    # the end; and never before its own segment is stored
    at = {id(e): n for n, e in enumerate(events)}
    for k, c in enumerate(closed):
        assert at[id(stored[k])] < at[id(c)]
        if k + 1 < GOPS:
            assert at[id(c)] < at[id(stored[k + 1])]


def test_strict_mode_decodes_a_gop_only_after_its_verdict(site: Site, tmp_path: Path) -> None:
    events = _drive(site, tmp_path, site.signed, strict=True)
    default = _of(_drive(site, tmp_path, site.signed), Closed)
    closed = _of(events, Closed)
    assert [c.verdict for c in closed] == [c.verdict for c in default]
    assert [(c.first_frame, c.last_frame) for c in closed] == [
        (c.first_frame, c.last_frame) for c in default
    ]
    assert all(c.decoded and c.time.status is TimeStatus.OK for c in closed)
    # each GOP's frames come after its Decode, and its Closed after its last frame
    where = [(type(e).__name__, getattr(e, "gop_index", None)) for e in events]
    for k in range(GOPS):
        decode = where.index(("Decode", k))
        frames = [n for n, w in enumerate(where) if w == ("Publish", k)]
        assert len(frames) == PER_GOP and decode < frames[0]
        close = next(n for n, e in enumerate(events) if e is closed[k])
        assert frames[-1] < close
        assert where.index(("StoreSegment", k)) < decode


def test_strict_mode_never_decodes_a_gop_whose_signature_failed(site: Site, tmp_path: Path) -> None:
    source = _flipped(site, tmp_path, gop=3)
    events = _drive(site, tmp_path, source, strict=True)
    decodes = {d.gop_index: d.decode for d in _of(events, Decode)}
    assert decodes == {k: k != 3 for k in range(GOPS)}
    assert not [p for p in _of(events, Publish) if p.gop_index == 3]
    bad = _of(events, Closed)[3]
    assert bad.verdict.verdict is Verdict.NOT_AUTHENTIC and not bad.decoded
    assert "strict mode: not decoded (verify before decode)" in bad.verdict.reasons
    assert bad.time.status is TimeStatus.UNCHECKED


# -- steps out of order ------------------------------------------------------------------------


def _first_gop(site: Site) -> RawGop:
    src = str(site.signed)
    return next(iter(read_gops(src, probe(src, decode=False), decode=False)))


def test_steps_out_of_order_are_caller_bugs(site: Site, tmp_path: Path) -> None:
    gop = _first_gop(site)
    core = IngestCore("cam")
    with pytest.raises(RuntimeError, match="expected start\\(\\) before packet\\(\\)"):
        core.packet(gop.packets[0], gop.info)
    with pytest.raises(RuntimeError, match="expected stored\\(\\) after cut\\(\\)"):
        core.stored(None)
    core.start(gop.header, gop.info, guard=_guard(site, tmp_path / "fresh"))
    with pytest.raises(RuntimeError, match="expected start\\(\\) once"):
        core.start(gop.header, gop.info, guard=None)
    with pytest.raises(RuntimeError, match="expected a packet before the first frame"):
        core.frame(0.0, None)
    with pytest.raises(RuntimeError, match="expected decoded\\(\\) after a Decode"):
        core.decoded()
    for p in gop.packets:
        core.packet(p, gop.info)
    core.cut(gop, ())
    with pytest.raises(RuntimeError, match="expected stored\\(\\) after cut\\(\\), got packet"):
        core.packet(gop.packets[0], gop.info)
    with pytest.raises(RuntimeError, match="expected finish\\(\\) between GOPs"):
        core.finish()
    assert core.stored(None) == []  # GOP 0 waits for the SEI in GOP 1
    closed = core.finish()
    assert [type(e) for e in closed] == [Closed]
    with pytest.raises(RuntimeError, match="expected packet\\(\\) before finish\\(\\)"):
        core.packet(gop.packets[0], gop.info)
    with pytest.raises(RuntimeError, match="expected finish\\(\\) once"):
        core.finish()


def test_strict_core_takes_frames_only_for_a_decode(site: Site, tmp_path: Path) -> None:
    gop = _first_gop(site)
    core = IngestCore("cam", strict=True)
    core.start(gop.header, gop.info, guard=_guard(site, tmp_path / "fresh"))
    core.packet(gop.packets[0], gop.info)
    with pytest.raises(RuntimeError, match="expected frames only after a Decode"):
        core.frame(0.0, None)
    for p in gop.packets[1:]:
        core.packet(p, gop.info)
    core.cut(gop, ())
    core.stored(None)
    (decode,) = core.finish()  # the stream ends: GOP 0 is decided, then must be decoded
    assert isinstance(decode, Decode) and decode.gop_index == 0
    with pytest.raises(RuntimeError, match="expected frames then decoded\\(\\) after a Decode"):
        core.pictures(gop.packets)
    (closed,) = core.decoded(["decoder note"])
    assert isinstance(closed, Closed) and closed.verdict.gop_index == 0
    # no frame was fed: the checker-less core says nothing of frames, the note stays
    assert "decoder note" in closed.verdict.reasons


# -- one verdict on every path -------------------------------------------------------------------


def _flipped(site: Site, tmp: Path, gop: int) -> Path:
    """One bit flipped in the slice data of the last P-frame of GOP ``gop``."""
    clip = read_clip(site.signed)
    index = clip.gop_start(gop) + len(clip.gops()[gop]) - 1
    packets = list(clip.packets)
    p = packets[index]
    packets[index] = Packet(flip(p.data, len(p.data) // 2), p.pts, p.dts, p.duration, False)
    return clip.with_packets(packets).write(tmp / f"flip{gop}.mp4")


def _duplicated(site: Site, tmp: Path, gop: int) -> Path:
    """GOP ``gop`` sent twice in a row, restamped: the copy carries GOP ``gop-1``'s SEI again
    (a counter and GOP hash seen before), so GOP ``gop`` is REPLAYED."""
    clip = read_clip(site.signed)
    g = clip.gops()
    return clip.from_gops([*g[: gop + 1], g[gop], *g[gop + 1 :]]).write(tmp / f"dup{gop}.mp4")


ATTACKS: dict[str, tuple[Callable[[Site, Path], Path], int, Verdict]] = {
    "flipped-bit": (lambda s, t: _flipped(s, t, 3), 3, Verdict.NOT_AUTHENTIC),
    "replayed-gop": (lambda s, t: _duplicated(s, t, 2), 2, Verdict.REPLAYED),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_an_attack_gets_the_same_verdicts_through_the_core_the_recording_check_and_ingest(
    site: Site, tmp_path: Path, attack: str
) -> None:
    build, hit, expected = ATTACKS[attack]
    source = build(site, tmp_path)
    core = _of(_drive(site, tmp_path, source), Closed)
    recorded = check_recording(source, "cam", guard=_guard(site, tmp_path / "fresh-rec"))
    live = _ingest(tmp_path, site, source, strict=False)
    verdicts = [c.verdict.verdict for c in core]
    assert verdicts[hit] is expected, core[hit].verdict.reasons
    assert [r.verdict.verdict for r in recorded] == verdicts
    assert [g.verdict.verdict for g in live] == verdicts
    for c, r, g in zip(core, recorded, live, strict=True):
        # the same decoded checks as the live process, reason for reason
        assert c.verdict == g.verdict
        assert (c.first_frame, c.last_frame) == (g.first_frame, g.last_frame)
        assert g.signature is not None and g.signature["time"] == c.signature()["time"]
        # the recording check (no decoding, no profile) says a subset of the same
        assert set(r.verdict.reasons) <= set(g.verdict.reasons)
        assert r.time is not None and r.time.status is c.time.status


def test_a_replayed_gop_is_not_decoded_by_strict_ingest(site: Site, tmp_path: Path) -> None:
    source = _duplicated(site, tmp_path, 2)
    core = _of(_drive(site, tmp_path, source, strict=True), Closed)
    live = _ingest(tmp_path, site, source, strict=True)
    assert [c.verdict for c in core] == [g.verdict for g in live]
    assert [c.decoded for c in core] == [g.decoded for g in live]
    assert core[2].verdict.verdict is Verdict.REPLAYED and not core[2].decoded
