"""A fixed camera whose pictures the verifier cannot judge is a disagreement (ADR 0058).

The pixel checks (foreground support, ``evasion``, ``vanished``) need the background model
(:class:`~kontur.verifier.foreground.ForegroundModel`) to judge the frame. It stops judging
while it relearns: after a cut, a change of the lights, or a whole-pixel shift of the picture.
It relearns for 1.5 s, or less when the camera comes back (ADR 0056). A camera that keeps
moving by a picture pixel or more (shaken, swaying on its pole, flickering) makes it relearn
again and again. Until now it judged nothing then and said nothing: a person the worker left
out went unseen, and the findings agreed.

:class:`Blindness` watches how much of a camera's recent picture time the model judged. Once
the camera has shown itself fixed (:data:`FIXED_S` judged in all), a window of
:data:`BLIND_WINDOW_S` with less than :data:`BLIND_SHARE` of it judged is a scene reason on
each frame until the share comes back. A camera that never stood still (handheld, a PTZ
tour) is the tamper monitor's to flag (ADR 0055), and the verifier vouches for none of its
tracks either way. Pure: fed each picture's pts and whether it was judged; no clock.
"""

from __future__ import annotations

from collections import deque

__all__ = ["BLIND_SHARE", "BLIND_WINDOW_S", "FIXED_S", "Blindness"]

#: Judged picture time (seconds, in all) after which the camera counts as fixed.
FIXED_S = 10.0
#: The window whose judged share is taken (seconds of pts)...
BLIND_WINDOW_S = 5.0
#: ...and the share under which the camera is blind. One relearn (1.5 s: a cut, a view that
#: stays moved, the lights) or a knock and back (ADR 0056) leaves 68% or more of any window
#: judged; a camera that keeps moving leaves next to none.
BLIND_SHARE = 0.5
#: A gap between two pictures counts for at most this long (seconds): frames that did not
#: come say nothing about whether the model could judge.
MAX_STEP_S = 0.5


class Blindness:
    """How much of one camera's recent picture time its background model judged."""

    def __init__(self) -> None:
        self._steps: deque[tuple[float, float, bool]] = deque()
        """(pts, seconds since the picture before, judged) over the last window."""
        self._window_s = 0.0
        self._judged_s = 0.0
        self._judged_total_s = 0.0
        self._pts: float | None = None
        self._note = ""

    def observe(self, pts_s: float, judged: bool, note: str | None) -> str | None:
        """Take the next picture (``note``: why the model did not judge it); the scene reason
        while the fixed camera is blind, else None. ``pts_s`` must increase."""
        step = 0.0 if self._pts is None else min(pts_s - self._pts, MAX_STEP_S)
        self._pts = pts_s
        self._steps.append((pts_s, step, judged))
        self._window_s += step
        if judged:
            self._judged_s += step
            self._judged_total_s += step
        elif note:
            self._note = note
        while self._steps and self._steps[0][0] <= pts_s - BLIND_WINDOW_S:
            _, gone, was_judged = self._steps.popleft()
            self._window_s -= gone
            self._judged_s -= gone if was_judged else 0.0
        return self._reason()

    def _reason(self) -> str | None:
        if self._judged_total_s < FIXED_S or self._window_s < BLIND_WINDOW_S - MAX_STEP_S:
            return None  # not yet shown fixed, or too little time seen to say
        share = max(self._judged_s, 0.0) / self._window_s
        if share >= BLIND_SHARE:
            return None
        return (
            f"blind: the background model judged {share:.0%} of this fixed camera's last "
            f"{BLIND_WINDOW_S:g} s of pictures, expected at least {BLIND_SHARE:.0%} "
            f"({self._note}); a person the worker leaves out would go unseen"
        )
