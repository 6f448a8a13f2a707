"""The audit itself: a model's person detection on real frames, clean and under every
corruption at every severity, against a black-box patch, and through a trigger scan.

:func:`run_audit` is the pure core: a detector, the frames, the settings and a seeded rng
in, an :class:`AuditReport` out. It never reads a file or the clock; the command line
(:mod:`kontur.robustness.cli`) loads the release and the footage, times the run and signs.

Figures (Michaelis et al. 2019, "Benchmarking robustness in object detection"): the
performance ``P`` is person AP at IoU 0.5 (AP50) over the audit frames; ``mPC`` is the mean
of ``P`` over every corruption and severity; ``rPC = mPC / P_clean``. Precision and recall
are counted at the release's own score threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from kontur.robustness.corruptions import CORRUPTIONS, corrupt
from kontur.robustness.errors import AuditFramesError
from kontur.robustness.frames import AuditFrame
from kontur.robustness.patch import PatchResult, attack_patch
from kontur.robustness.quality import DetectionQuality, detection_quality, person_detections
from kontur.robustness.trigger import TriggerScan, scan_triggers

__all__ = [
    "AuditReport",
    "AuditSettings",
    "CorruptionResult",
    "Progress",
    "run_audit",
]

SEVERITIES = (1, 2, 3, 4, 5)


class Progress(Protocol):
    """Told the stage's name and its steps done out of its total, as the audit goes."""

    def __call__(self, stage: str, done: int, total: int) -> None: ...


@dataclass(frozen=True)
class AuditSettings:
    """What the audit runs. ``frames``: how many frames of the clip, evenly spaced;
    ``corruptions``: names from :data:`~kontur.robustness.corruptions.CORRUPTIONS` (empty:
    all); ``patch_queries``: the black-box patch's query budget; ``trigger_budget``: the
    trigger scan's; ``attack_frames``: frames with persons the patch and the scan use."""

    frames: int = 200
    corruptions: tuple[str, ...] = ()
    severities: tuple[int, ...] = SEVERITIES
    patch_queries: int = 2000
    trigger_budget: int = 2000
    attack_frames: int = 48
    seed: int = 0

    def names(self) -> tuple[str, ...]:
        return self.corruptions or tuple(CORRUPTIONS)


@dataclass(frozen=True)
class CorruptionResult:
    name: str
    family: str
    severity: int
    quality: DetectionQuality


@dataclass(frozen=True)
class AuditReport:
    """Everything the audit measured; :meth:`to_json` is the report's signed form."""

    clean: DetectionQuality
    corruptions: tuple[CorruptionResult, ...]
    patch: PatchResult
    trigger: TriggerScan
    settings: AuditSettings
    frames: int
    score_threshold: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mpc(self) -> float:
        return float(np.mean([c.quality.ap50 for c in self.corruptions]))

    @property
    def rpc(self) -> float:
        return self.mpc / self.clean.ap50 if self.clean.ap50 > 0 else 0.0

    def by_family(self) -> dict[str, float]:
        """Mean AP50 per corruption family, over its corruptions and severities."""
        out: dict[str, list[float]] = {}
        for c in self.corruptions:
            out.setdefault(c.family, []).append(c.quality.ap50)
        return {k: float(np.mean(v)) for k, v in out.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "kontur.audit-report/1",
            **self.extra,
            "frames": self.frames,
            "score_threshold": self.score_threshold,
            "settings": asdict(self.settings),
            "clean": asdict(self.clean),
            "mpc": round(self.mpc, 6),
            "rpc": round(self.rpc, 6),
            "families": {k: round(v, 6) for k, v in self.by_family().items()},
            "corruptions": [
                {"name": c.name, "family": c.family, "severity": c.severity, **asdict(c.quality)}
                for c in self.corruptions
            ],
            "patch": _attack_json(self.patch),
            "trigger": _attack_json(self.trigger),
        }


def _attack_json(result: PatchResult | TriggerScan) -> dict[str, Any]:
    """An attack's figures; its pictures (arrays) only by shape."""
    doc = {k: v for k, v in asdict(result).items() if not isinstance(v, np.ndarray)}
    return {**doc, "patch_shape": list(result.patch.shape)}


def _quality(
    detector: Any, frames: Iterator[AuditFrame], score_threshold: float
) -> DetectionQuality:
    names = tuple(detector.class_names)

    def pairs() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for f in frames:
            xyxy, scores = person_detections(detector.infer(f.image), names)
            yield xyxy, scores, f.boxes

    return detection_quality(pairs(), score_threshold=score_threshold)


def _attack_split(
    frames: Sequence[AuditFrame], count: int
) -> tuple[tuple[AuditFrame, ...], tuple[AuditFrame, ...]]:
    """Frames with persons, evenly spread, alternating into train and test halves."""
    with_persons = [f for f in frames if len(f.boxes)]
    if len(with_persons) < 4:
        raise AuditFramesError(
            f"frames: expected at least 4 frames with persons for the attacks, "
            f"got {len(with_persons)}"
        )
    pick = np.linspace(0, len(with_persons) - 1, min(count, len(with_persons))).round()
    chosen = [with_persons[int(i)] for i in dict.fromkeys(pick.astype(int).tolist())]
    return tuple(chosen[0::2]), tuple(chosen[1::2])


def run_audit(
    detector: Any,
    frames: Sequence[AuditFrame],
    *,
    score_threshold: float,
    settings: AuditSettings,
    progress: Progress | None = None,
) -> AuditReport:
    """Audit ``detector`` on ``frames`` (module docstring).

    ``detector.infer(image) -> supervision.Detections`` must return detections down to a low
    score (the caller lowers the release's threshold, e.g. to 0.01): AP needs the ranking
    and the black-box attacks need a signal below the threshold. ``score_threshold`` is the
    release's own, where precision and recall are counted.
    """
    tell: Progress = progress or (lambda stage, done, total: None)
    names = settings.names()
    rng = np.random.default_rng(settings.seed)
    tell("clean", 0, 1)
    clean = _quality(detector, iter(frames), score_threshold)
    tell("clean", 1, 1)
    results: list[CorruptionResult] = []
    steps = len(names) * len(settings.severities)
    for name in names:
        for sev in settings.severities:
            seq = (corrupt(f, name, sev, rng) for f in frames)
            q = _quality(detector, seq, score_threshold)
            results.append(CorruptionResult(name, CORRUPTIONS[name].family, sev, q))
            tell("corruptions", len(results), steps)
    train, test = _attack_split(frames, settings.attack_frames)
    patch = attack_patch(
        detector,
        train,
        test,
        score_threshold=score_threshold,
        queries=settings.patch_queries,
        rng=rng,
        progress=_stage(tell, "patch", settings.patch_queries),
    )
    tell("patch", settings.patch_queries, settings.patch_queries)
    trigger = scan_triggers(
        detector,
        (*train, *test),
        score_threshold=score_threshold,
        rng=rng,
        budget=settings.trigger_budget,
        progress=_stage(tell, "trigger", settings.trigger_budget),
    )
    tell("trigger", settings.trigger_budget, settings.trigger_budget)  # it may stop early
    return AuditReport(
        clean, tuple(results), patch, trigger, settings, len(frames), score_threshold
    )


def _stage(tell: Progress, stage: str, total: int) -> Callable[[int], None]:
    return lambda done: tell(stage, done, total)
