"""Ingest's thin shell around one camera's tamper monitor (issue 13 §1, ADR 0030).

Ingest owns the frames and their times, decodes every frame already and is trusted, so the
camera tamper and image-quality monitor (:class:`kontur.tamper.TamperMonitor`, a pure core)
runs here. Order of steps for each decoded frame, before it is published
(:meth:`TamperWatch.frame`):

1. a demo fault (``kontur demo --inject-fault tamper-…``) tampers the frame from its onset on
   (:class:`kontur.tamper.inject.Injector`): the worker and the verifier see what a tampered
   camera would send, while the recorded bitstream stays the camera's;
2. at most ``max_fps`` frames a second, by stream time (one per time bucket, never by
   count), go to the monitor, enrolled on the camera's first seconds;
3. each event that started or ended, and each change of the picture's quality floor
   (``low_quality``: starts at once, ends after ``clear_s`` of good picture), becomes a
   :class:`~kontur.wire.messages.TamperAlarm` to the supervisor and the gate, naming the
   frames it may have touched (from the frame after the last one seen clean);
4. GOP verdicts bound for the gate (:meth:`TamperWatch.to_gate`) wait, in order, until the
   monitor has seen :attr:`TamperWatch.horizon_s` past the GOP's last frame: by then any event
   dated on the GOP's frames has been confirmed, and its alarm is ahead of the verdict in the
   pipe, so the gate never decides a critical action on frames before the alarm that
   concerns them. :meth:`TamperWatch.finish` lets every held verdict go.

A failure inside the monitor or the injector never stops recording: it is logged once and
counted (:attr:`TamperWatch.errors`), and the frame goes on.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from kontur.tamper import TamperChange, TamperConfig, TamperMonitor, Transition
from kontur.tamper.inject import Injector
from kontur.wire.messages import MAX_TAMPER_REASON, GopClosed, TamperAlarm

__all__ = ["TamperWatch"]

log = logging.getLogger("kontur.ingest.tamper")

#: Reasons of the monitor's quality that are not floors: warming up is no evidence, and an
#: open tamper event travels as its own alarm.
_NOT_FLOORS = ("warming up", "tamper:")

Send = Callable[[Any], object]


def _cut(reason: str) -> str:
    """One line of at most :data:`MAX_TAMPER_REASON` characters."""
    line = " ".join(reason.split()) or "no reason given"
    return line if len(line) <= MAX_TAMPER_REASON else line[: MAX_TAMPER_REASON - 3] + "..."


class TamperWatch:
    """One camera's monitor, fault injector and gate hold (see the module for the order)."""

    def __init__(
        self, camera_id: str, spec: Mapping[str, Any] | None, supervisor: Send, gate: Send
    ) -> None:
        spec = dict(spec or {})
        self.camera_id = camera_id
        self._supervisor, self._gate = supervisor, gate
        self.errors = 0
        """Failures of the monitor or the injector (each frame is still recorded)."""
        self.analysed = 0
        """Frames given to the monitor (at most ``max_fps`` a second of stream time)."""
        self.max_fps = float(spec.get("max_fps", 5.0))
        self.monitor: TamperMonitor | None = None
        self.injector: Injector | None = None
        config = TamperConfig()
        try:
            config = TamperConfig.from_mapping(spec.get("monitor") or {})
            if spec.get("enabled", True):
                self.monitor = TamperMonitor(camera_id, config)
            fault = spec.get("fault")
            if fault:
                self.injector = Injector(fault["kind"], float(fault["at_s"]), int(fault["seed"]))
        except Exception as exc:  # a bad spec must not stop recording
            self._failed("setup", exc)
        interval = 1.0 / self.max_fps
        self.horizon_s = max(config.onset_s, config.frozen_onset_s) + 2 * interval
        """How far past a GOP's last frame the monitor must have seen before its verdict
        goes to the gate (the longest confirmation delay, plus two analysed frames)."""
        self.clear_s = config.clear_s
        """Seconds of good picture that end a ``low_quality`` event (the monitor's own)."""
        keep = math.ceil((self.horizon_s + config.clear_s + 2) * self.max_fps) + 8
        self._seen: deque[tuple[float, int]] = deque(maxlen=min(keep, 10_000))
        """(pts, frame index) of the frames the monitor analysed, newest last."""
        self._bucket: int | None = None
        self._first: dict[str, int] = {}
        self._low: tuple[float, int, str] | None = None
        """The open ``low_quality`` event: (start_s, first frame, reason)."""
        self._good_since: tuple[float, int] | None = None
        self._held: deque[GopClosed] = deque()

    # ---- per frame ----------------------------------------------------------------------
    def frame(self, image: np.ndarray, pts_s: float, frame_index: int) -> np.ndarray:
        """The frame to publish (tampered by a demo fault); analysed when its time is due."""
        if self.injector is not None:
            try:
                image = self.injector.apply(image, pts_s)
            except Exception as exc:  # the demo's fault, never the camera's recording
                self._failed("injector", exc)
        if self.monitor is not None and self._due(pts_s):
            try:
                self._observe(image, pts_s, frame_index)
            except Exception as exc:  # one bad frame never stops ingest
                self._failed("monitor", exc)
            self._release()
        return image

    def _due(self, pts_s: float) -> bool:
        """True for the first frame of each ``1/max_fps`` bucket of stream time."""
        bucket = math.floor(pts_s * self.max_fps + 1e-6)
        if self._bucket is not None and bucket <= self._bucket:
            return False
        self._bucket = bucket
        return True

    def _observe(self, image: np.ndarray, t: float, index: int) -> None:
        assert self.monitor is not None
        self._seen.append((t, index))
        self.analysed += 1
        changes = self.monitor.observe(image, t)
        floors = tuple(r for r in self.monitor.quality.reasons if not r.startswith(_NOT_FLOORS))
        for change in changes:
            self._send(self._alarm(change, quality_ok=not floors))
        self._quality(floors, t, index)

    # ---- alarms -------------------------------------------------------------------------
    def _send(self, alarm: TamperAlarm) -> None:
        self._supervisor(alarm)
        self._gate(alarm)

    def _alarm(self, change: TamperChange, *, quality_ok: bool) -> TamperAlarm:
        ev, kind = change.event, change.event.kind.value
        common: dict[str, Any] = {
            "camera_id": self.camera_id,
            "kind": kind,
            "score": min(max(ev.score, 0.0), 1e6),
            "reason": _cut(ev.reason),
            "start_s": ev.start_s,
            "at_s": change.at_s,
            "quality_ok": quality_ok,
        }
        if change.transition is Transition.START:
            first = self._first[kind] = self._first_frame(ev.start_s)
            return TamperAlarm(transition="start", first_frame=first, **common)
        known = self._first.pop(kind) if kind in self._first else None
        first = self._first_frame(ev.start_s) if known is None else known
        end = ev.start_s if ev.end_s is None else ev.end_s
        last = max(first, self._last_frame(end))
        return TamperAlarm(transition="end", first_frame=first, end_s=end, last_frame=last,
                           **common)  # fmt: skip

    def _first_frame(self, start_s: float) -> int:
        """The frame after the last one analysed before ``start_s`` (it may be touched)."""
        before = [i for t, i in self._seen if t < start_s - 1e-9]
        if before:
            return before[-1] + 1
        return self._seen[0][1] if self._seen else 0

    def _last_frame(self, end_s: float) -> int:
        """The frame before the first one analysed clean at ``end_s``."""
        at = [i for t, i in self._seen if t >= end_s - 1e-9]
        return max(0, (at[0] if at else self._seen[-1][1]) - 1)

    def _quality(self, floors: tuple[str, ...], t: float, index: int) -> None:
        """``low_quality`` starts at once and ends after ``clear_s`` of good picture."""
        if floors:
            self._good_since = None
            if self._low is None:
                self._low = (t, self._first_frame(t), _cut("; ".join(floors)))
                start, first, reason = self._low
                self._send(TamperAlarm(camera_id=self.camera_id, transition="start",
                                       kind="low_quality", score=1.0, reason=reason,
                                       start_s=start, at_s=t, first_frame=first,
                                       quality_ok=False))  # fmt: skip
            return
        if self._low is None:
            return
        if self._good_since is None:
            self._good_since = (t, index)
        good_t, good_index = self._good_since
        if t - good_t < self.clear_s:
            return
        start, first, reason = self._low
        self._low, self._good_since = None, None
        self._send(TamperAlarm(camera_id=self.camera_id, transition="end", kind="low_quality",
                               score=1.0, reason=reason, start_s=start, end_s=max(start, good_t),
                               at_s=t, first_frame=first,
                               last_frame=max(first, good_index - 1), quality_ok=True))  # fmt: skip

    # ---- the gate's GOP verdicts --------------------------------------------------------
    def to_gate(self, msg: GopClosed) -> None:
        """Send a GOP verdict to the gate once the monitor has seen far enough past it."""
        if self.monitor is None:
            self._gate(msg)
            return
        self._held.append(msg)
        self._release()

    def _release(self) -> None:
        seen = self._seen[-1][0] if self._seen else None
        while self._held and seen is not None and self._held[0].end_pts_s + self.horizon_s <= seen:
            self._gate(self._held.popleft())

    def finish(self) -> None:
        """The source ended: every held verdict goes to the gate, in order."""
        while self._held:
            self._gate(self._held.popleft())
        if self.errors:
            log.warning("%s: the tamper monitor failed %d time(s); recording went on",
                        self.camera_id, self.errors)  # fmt: skip

    def _failed(self, what: str, exc: Exception) -> None:
        self.errors += 1
        if self.errors == 1:
            why = (str(exc).splitlines() or [""])[0] or type(exc).__name__
            log.warning("%s: tamper %s failed (%s); counted, recording goes on",
                        self.camera_id, what, why)  # fmt: skip
