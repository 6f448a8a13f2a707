"""The tamper monitor's settings: a frozen, validated dataclass a site's ``tamper:`` maps onto.

Every threshold is relative to the camera's own rolling baseline unless its name says
``min_``/``max_`` (an absolute quality floor). ADR 0024 gives the rationale of each default.
:meth:`TamperConfig.from_mapping` builds one from a plain mapping (a YAML section), refusing
unknown keys and out-of-range values with one line each.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from kontur.tamper.errors import TamperConfigError
from kontur.tamper.model import TamperKind

__all__ = ["TamperConfig"]


def _all_kinds() -> frozenset[TamperKind]:
    return frozenset(TamperKind)


@dataclass(frozen=True)
class TamperConfig:
    """Settings of one camera's :class:`~kontur.tamper.TamperMonitor` (seconds, ratios)."""

    kinds: frozenset[TamperKind] = field(default_factory=_all_kinds)
    """Which kinds raise events (all by default)."""
    width: int = 160
    """Width in pixels of the coarse analysis picture (the fine one is twice as wide)."""
    warmup_s: float = 2.0
    """Seconds of picture taken as the first baseline and the enrolled reference view."""
    baseline_tau_s: float = 60.0
    """Time constant of the rolling baseline (frames seen while no kind is pending)."""
    onset_s: float = 1.0
    """A condition must hold this long before an event starts (the minimum duration)."""
    frozen_onset_s: float = 1.5
    """The same for ``frozen`` (a lull in a scene looks frozen for a moment)."""
    screen_onset_s: float = 0.5
    """The same for ``screen``: its flicker is already a median over 1.2 s of picture."""
    gap_s: float = 0.3
    """A pending condition survives a miss this short (one bad frame does not restart it)."""
    clear_s: float = 2.0
    """An event ends once its score stayed below ``clear_ratio`` this long (hysteresis)."""
    clear_ratio: float = 0.7
    """Scores are 1.0 at the onset threshold; an event clears below this fraction of it."""
    max_gap_s: float = 5.0
    """A pause in the frames longer than this re-enrols (the picture may have changed)."""

    low_light_ratio: float = 0.5
    """``low_light`` when brightness falls below this fraction of the baseline ..."""
    low_contrast_ratio: float = 0.45
    """... or contrast below this fraction of the baseline."""
    glare_excess: float = 0.02
    """``glare`` when this fraction of the frame newly saturates (plus half the baseline's)."""
    glare_wash: float = 0.5
    """... or brightness climbs this fraction of the way from the baseline to white."""
    defocus_ratio: float = 0.5
    """``defocus`` when sharpness (over contrast) falls below this fraction of the baseline."""
    covered_fraction: float = 0.2
    """``covered`` when this fraction of the textured cells lost texture and layout."""
    shift_fraction: float = 0.035
    """``shifted`` when the view moved by this fraction of the width against the reference."""
    redirect_fraction: float = 0.6
    """... or this fraction of the textured cells no longer match the reference at all."""
    frozen_motion_ratio: float = 0.05
    """``frozen`` when motion falls below this fraction of the camera's usual motion."""
    frozen_min_motion: float = 0.004
    """``frozen`` is armed only on a camera whose usual moving fraction is at least this."""
    screen_moire: float = 10.0
    """A periodic peak this many times the baseline's spectrum adds 0.3 to ``screen``'s score
    (and no more: a peak alone is never a screen)."""
    screen_flicker: float = 3.0
    """``screen`` when the whole picture flickers this many times more than the baseline's
    (and by at least 0.5 % per 0.1 s)."""

    min_brightness: float = 25.0
    """Quality floor: mean grey level below this refuses decisions."""
    min_contrast: float = 8.0
    """Quality floor: grey standard deviation below this refuses decisions."""
    max_saturated: float = 0.35
    """Quality floor: a saturated fraction above this refuses decisions."""

    def __post_init__(self) -> None:
        kinds = frozenset(TamperKind.parse(k) for k in self.kinds)
        object.__setattr__(self, "kinds", kinds)
        for f in fields(self):
            if f.name == "kinds":
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TamperConfigError(f"tamper.{f.name}: expected a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise TamperConfigError(
                    f"tamper.{f.name}: expected a finite number >= 0, got {value}"
                )
        self._check_ranges()

    def _check_ranges(self) -> None:
        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                got = getattr(self, name)
                raise TamperConfigError(f"tamper.{name}: expected {what}, got {got}")

        need(isinstance(self.width, int) and 32 <= self.width <= 640, "width", "an int 32..640")
        need(0.5 <= self.warmup_s <= 600, "warmup_s", "0.5..600 s")
        need(self.baseline_tau_s >= 5 * self.onset_s, "baseline_tau_s", ">= 5 x onset_s")
        need(0 < self.onset_s <= 10, "onset_s", "0 < onset_s <= 10 s")
        need(0 < self.frozen_onset_s <= 10, "frozen_onset_s", "0 < frozen_onset_s <= 10 s")
        need(0 < self.screen_onset_s <= 10, "screen_onset_s", "0 < screen_onset_s <= 10 s")
        need(self.gap_s < min(self.onset_s, self.screen_onset_s), "gap_s", "less than every onset")
        need(0 < self.clear_s <= 600, "clear_s", "0 < clear_s <= 600 s")
        need(0 < self.clear_ratio < 1, "clear_ratio", "0 < clear_ratio < 1")
        need(self.max_gap_s > self.gap_s, "max_gap_s", "more than gap_s")
        for name in ("low_light_ratio", "low_contrast_ratio", "defocus_ratio",
                     "frozen_motion_ratio", "glare_wash", "redirect_fraction"):  # fmt: skip
            need(0 < getattr(self, name) < 1, name, "a ratio between 0 and 1")
        for name in ("glare_excess", "covered_fraction", "shift_fraction", "max_saturated"):
            need(0 < getattr(self, name) <= 1, name, "a fraction in (0, 1]")
        need(self.frozen_min_motion < 1, "frozen_min_motion", "a fraction below 1")
        need(self.screen_moire > 1, "screen_moire", "a ratio above 1")
        need(self.screen_flicker > 1, "screen_flicker", "a ratio above 1")
        need(self.min_brightness < 255, "min_brightness", "a grey level below 255")
        need(self.min_contrast < 128, "min_contrast", "a grey level below 128")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> TamperConfig:
        """A config from a ``tamper:`` mapping; unknown keys and bad values are one-line errors."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise TamperConfigError(f"tamper: expected a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise TamperConfigError(
                f"tamper.{unknown[0]}: expected one of {', '.join(sorted(known))}, got an "
                "unknown key"
            )
        values = dict(data)
        if "kinds" in values:
            kinds = values["kinds"]
            if isinstance(kinds, str) or not isinstance(kinds, list | tuple | set | frozenset):
                raise TamperConfigError(f"tamper.kinds: expected a list of kinds, got {kinds!r}")
            try:
                values["kinds"] = frozenset(TamperKind.parse(k) for k in kinds)
            except Exception as exc:  # TamperInputError: re-raise as a config error
                raise TamperConfigError(f"tamper.kinds: {exc}") from None
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """Every setting, ``kinds`` as a sorted list."""
        doc: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        doc["kinds"] = sorted(k.value for k in self.kinds)
        return doc
