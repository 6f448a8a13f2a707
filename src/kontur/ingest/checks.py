"""Pure per-GOP checks of the trusted ingest (no I/O, no clock reads).

A :class:`GopChecker` is fed, in order, for each GOP: :meth:`GopChecker.begin`, then one
:meth:`GopChecker.frame` per frame (with its presentation time and whether it decoded),
then :meth:`GopChecker.close`, which returns the :class:`GopVerdict`. Calling them out of
order raises :class:`RuntimeError` (a caller bug).

Checks, in order (DESIGN.md §1 block 1):

1. signature: until ONVIF Media Signing lands every GOP is UNSIGNED ("source carries no
   signature"), which is untrusted downstream;
2. profile: codec, resolution and frame rate against the enrolled profile → PROFILE_CHANGED;
3. decodability: a packet that fails to decode → NOT_AUTHENTIC (the bitstream was altered or
   damaged);
4. timestamps: a gap larger than 1.5 frame periods → MISSING (frames lost); a timestamp
   going backwards → NOT_AUTHENTIC (reordering).

The most severe finding is the verdict; every finding stays in the reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kontur.config import Profile
from kontur.ingest.verdict import GopVerdict, Verdict, most_severe

__all__ = ["Finding", "GopChecker", "StreamInfo", "merge_findings"]

#: One finding about a GOP: the verdict it calls for and the reason an operator reads.
Finding = tuple[Verdict, str]

#: A gap of more than this many frame periods between two frames means frames were lost.
GAP_FACTOR = 1.5


@dataclass(frozen=True)
class StreamInfo:
    """What the container says about the video stream a GOP came from."""

    codec: str
    width: int
    height: int
    fps: float


@dataclass
class _Open:
    index: int
    info: StreamInfo
    findings: list[Finding] = field(default_factory=list)
    frames: int = 0
    last_pts: float | None = None
    undecoded: list[float] = field(default_factory=list)
    """``[first, last, count]`` of the current run of frames that did not decode."""


class GopChecker:
    """Checks GOPs of one camera against its enrolled profile."""

    def __init__(self, camera_id: str, profile: Profile, first_index: int = 0) -> None:
        self.camera_id = camera_id
        self.profile = profile
        self._open: _Open | None = None
        self._prev_pts: float | None = None
        self._next_index = first_index

    def begin(self, info: StreamInfo) -> int:
        """Open the next GOP; returns its index."""
        if self._open is not None:
            raise RuntimeError("begin() called while a GOP is open; call close() first")
        self._open = _Open(index=self._next_index, info=info)
        self._next_index += 1
        self._check_profile(info)
        return self._open.index

    def _check_profile(self, info: StreamInfo) -> None:
        assert self._open is not None
        p = self.profile
        if info.codec != p.codec:
            self._open.findings.append(
                (Verdict.PROFILE_CHANGED, f"expected codec {p.codec}, got {info.codec}")
            )
        if (info.width, info.height) != (p.width, p.height):
            self._open.findings.append(
                (
                    Verdict.PROFILE_CHANGED,
                    f"expected resolution {p.width}x{p.height}, got {info.width}x{info.height}",
                )
            )
        if abs(info.fps - p.fps) > 0.01 * p.fps:
            self._open.findings.append(
                (Verdict.PROFILE_CHANGED, f"expected {p.fps:g} fps, got {info.fps:g} fps")
            )

    def resync(self) -> None:
        """Start a new timeline: the next GOP's first frame is not compared with the last one.

        Strict mode calls it after a GOP it deliberately did not decode, whose frames are
        absent by decision, not lost (that GOP's own verdict says why).
        """
        self._prev_pts = None

    def frame(self, pts_s: float, decoded: bool) -> None:
        """Account for one frame of the open GOP."""
        g = self._open
        if g is None:
            raise RuntimeError("frame() called with no open GOP; call begin() first")
        g.frames += 1
        if decoded:
            _end_run(g)
        elif g.undecoded:
            g.undecoded[1:] = [pts_s, g.undecoded[2] + 1]
        else:
            g.undecoded = [pts_s, pts_s, 1]
        prev = g.last_pts if g.last_pts is not None else self._prev_pts
        period = 1.0 / self.profile.fps
        if prev is not None:
            if pts_s <= prev:
                g.findings.append(
                    (
                        Verdict.NOT_AUTHENTIC,
                        f"expected a timestamp after {prev:.3f} s, got {pts_s:.3f} s (reordered)",
                    )
                )
            elif pts_s - prev > GAP_FACTOR * period:
                lost = round((pts_s - prev) / period) - 1
                g.findings.append(
                    (
                        Verdict.MISSING,
                        f"expected the next frame at {prev + period:.3f} s, got {pts_s:.3f} s "
                        f"(about {lost} frame(s) missing)",
                    )
                )
        g.last_pts = pts_s

    def close(self) -> GopVerdict:
        """Close the open GOP and return its verdict, for a source that carries no signature."""
        index, findings = self.close_findings()
        unsigned = (Verdict.UNSIGNED, "source carries no signature (no Media Signing SEI)")
        return merge_findings(self.camera_id, index, [unsigned, *findings])

    def close_findings(self) -> tuple[int, list[Finding]]:
        """Close the open GOP; its index and this checker's findings (no signature verdict).

        The signature findings arrive later (:mod:`kontur.ingest.trust`);
        :func:`merge_findings` makes the verdict of both.
        """
        g = self._open
        if g is None:
            raise RuntimeError("close() called with no open GOP")
        self._open = None
        _end_run(g)
        if g.last_pts is not None:
            self._prev_pts = g.last_pts
        findings = list(g.findings)
        if g.frames == 0:
            findings.append((Verdict.MISSING, "expected at least one frame in the GOP, got none"))
        return g.index, findings


def _end_run(g: _Open) -> None:
    """One finding for a run of frames that did not decode (a lost decoder leaves hundreds)."""
    if not g.undecoded:
        return
    first, last, n = g.undecoded
    g.undecoded = []
    what = (
        f"frame at {first:.3f} s does not decode"
        if n == 1
        else f"{n:.0f} frames from {first:.3f} s to {last:.3f} s do not decode"
    )
    g.findings.append((Verdict.NOT_AUTHENTIC, f"{what} (damaged bitstream)"))


def merge_findings(camera_id: str, gop_index: int, findings: list[Finding]) -> GopVerdict:
    """The verdict of a GOP from all its findings: the most severe wins, its reasons first.

    Duplicate reasons are kept once; an empty list is refused (nothing checked is no pass).
    """
    if not findings:
        raise ValueError("expected at least one finding, got none")
    verdict = most_severe([v for v, _ in findings])
    ordered = sorted(findings, key=lambda f: f[0] is not verdict)
    reasons = tuple(dict.fromkeys(r for _, r in ordered))
    return GopVerdict(camera_id=camera_id, gop_index=gop_index, verdict=verdict, reasons=reasons)
