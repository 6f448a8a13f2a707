"""Prometheus exposition of the run state (issue 11 §8), built fresh for every scrape.

The figures are the supervisor's (:class:`~kontur.wire.runstate.RunState`); the API keeps no
counters of its own, so each scrape builds a new :class:`CollectorRegistry` with one
:class:`RunStateCollector` over the snapshot just read. Counters count since the run started
(``_created`` is the run's start, so a restart of ``kontur run`` reads as a counter reset).

Names follow the Prometheus conventions: ``kontur_`` prefix, ``_total`` counters, base unit
``_seconds``. The frame-to-decision latency is a *gauge histogram*
(``kontur_decision_latency_seconds``): the snapshot holds the recent latencies (the last
256 per camera), not cumulative buckets, and a gauge histogram is Prometheus's type for a
distribution that may go down. Label values from the untrusted worker (class names) are
bounded in number and length.

Accelerator resets are the ``accelerator_reset`` degradation trigger's count
(``kontur_accelerator_resets_total``, 0 on a CPU-only site). Accelerator *memory* errors have
no series: neither ONNX Runtime nor OpenVINO reports them apart from a failed run, which the
worker's crash or hang triggers already count.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from kontur import __version__
from kontur.redact import redact_url
from kontur.wire.runstate import CameraState, RunState
from kontur.wire.verdict import SystemState

__all__ = ["LATENCY_BUCKETS", "RunStateCollector", "exposition"]

#: Upper bounds (seconds) of the latency histogram's buckets.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_MAX_CLASSES = 64


def _label(value: str) -> str:
    return redact_url(value)[:64]


class RunStateCollector(Collector):
    """Every metric of one run-state snapshot."""

    def __init__(self, state: RunState, now: float) -> None:
        self._s = state
        self._now = now

    def collect(self) -> Iterator[Metric]:
        """The metric families (see the module)."""
        yield from self._cameras()
        yield from self._latency()
        yield from self._system()
        yield from self._triggers()
        yield from self._blocks()

    def _counter(self, name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
        return CounterMetricFamily(name, doc, labels=labels, created=self._s.started_at)

    def _cameras(self) -> Iterator[Metric]:
        frames = self._counter("kontur_frames", "Frames ingested per camera.", ["camera"])
        skipped = self._counter(
            "kontur_frames_skipped",
            "Frames skipped for analysis (never for recording).",
            ["camera"],
        )
        gops = self._counter("kontur_gop_verdicts", "GOP verdicts.", ["camera", "verdict"])
        agree = self._counter(
            "kontur_verifier_agreements",
            "Verifier findings agreeing with the worker.",
            ["camera"],
        )
        disagree = self._counter(
            "kontur_verifier_disagreements",
            "Verifier findings disagreeing with the worker.",
            ["camera"],
        )
        classes = self._counter(
            "kontur_detections_by_class",
            "Detections by class (the worker's claim).",
            ["camera", "class"],
        )
        decisions = self._counter("kontur_decisions", "Gate decisions.", ["camera", "outcome"])
        for cam in self._s.cameras:
            c = _label(cam.id)
            frames.add_metric([c], cam.frames)
            skipped.add_metric([c], cam.frames_skipped)
            agree.add_metric([c], cam.verifier_agree)
            disagree.add_metric([c], cam.verifier_disagree)
            for verdict, n in sorted(cam.gops.items()):
                gops.add_metric([c, _label(verdict)], n)
            for outcome, n in sorted(cam.decisions.items()):
                decisions.add_metric([c, _label(outcome)], n)
            for cls, n in sorted(cam.classes.items())[:_MAX_CLASSES]:
                classes.add_metric([c, _label(cls)], n)
        yield from (frames, skipped, gops, agree, disagree, classes, decisions)

    def _latency(self) -> Iterator[Metric]:
        hist = GaugeHistogramMetricFamily(
            "kontur_decision_latency_seconds",
            "Frame-to-decision latency over the recent decisions (a gauge histogram).",
            labels=["camera"],
        )
        for cam in self._s.cameras:
            buckets, total = _buckets(cam)
            hist.add_metric([_label(cam.id)], buckets, gsum_value=total)
        yield hist

    def _system(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "kontur_degradation_state", "1 for the current degradation state.", labels=["state"]
        )
        known = [s.value for s in SystemState]
        for name in sorted({*known, _label(self._s.state)}):
            state.add_metric([name], 1.0 if name == self._s.state else 0.0)
        per_camera = GaugeMetricFamily(
            "kontur_camera_degradation_state",
            "1 for each camera's effective degradation state (its own or the site's, ADR 0040).",
            labels=["camera", "state"],
        )
        for cam in self._s.cameras:
            for name in sorted({*known, _label(cam.state)}):
                value = 1.0 if name == cam.state else 0.0
                per_camera.add_metric([_label(cam.id), name], value)
        transitions = self._counter(
            "kontur_degradation_transitions", "Degradation state changes.", []
        )
        transitions.add_metric([], self._s.transitions)
        records = self._counter("kontur_archive_records", "Records in the archive.", [])
        records.add_metric([], self._s.archive_records)
        pending = GaugeMetricFamily(
            "kontur_operator_requests_pending", "OPERATOR requests waiting for a person."
        )
        pending.add_metric([], len(self._s.pending))
        age = GaugeMetricFamily("kontur_run_state_age_seconds", "Age of the run-state snapshot.")
        age.add_metric([], max(0.0, self._now - self._s.at))
        info = InfoMetricFamily("kontur_build", "kontur, model release and runtime.")
        info.add_metric(
            [],
            {
                "version": __version__,
                "release": _label(self._s.release or "none"),
                "runtime": _label(self._s.runtime or "none"),
                "site": _label(self._s.site),
            },
        )
        yield from (state, per_camera, transitions, records, pending, age, info)

    def _triggers(self) -> Iterator[Metric]:
        raised = self._counter(
            "kontur_degradation_triggers", "Degradation triggers raised.", ["trigger"]
        )
        for name, n in sorted(self._s.triggers.items())[:_MAX_CLASSES]:
            raised.add_metric([_label(name)], n)
        resets = self._counter(
            "kontur_accelerator_resets",
            "Accelerator (GPU/NPU) resets seen: the accelerator_reset trigger.",
            [],
        )
        resets.add_metric([], self._s.triggers.get("accelerator_reset", 0))
        yield from (raised, resets)

    def _blocks(self) -> Iterator[Metric]:
        restarts = self._counter("kontur_block_restarts", "Block restarts.", ["block"])
        up = GaugeMetricFamily(
            "kontur_block_up", "1 when the block's process is alive.", labels=["block"]
        )
        for b in self._s.blocks:
            restarts.add_metric([_label(b.name)], b.restarts)
            up.add_metric([_label(b.name)], 1.0 if b.alive else 0.0)
        depth = GaugeMetricFamily(
            "kontur_queue_depth", "Messages waiting in a queue.", labels=["queue"]
        )
        for queue, n in sorted(self._s.queue_depths.items()):
            depth.add_metric([_label(queue)], n)
        yield from (restarts, up, depth)


def _buckets(cam: CameraState) -> tuple[list[tuple[str, float]], float]:
    lat = [x for x in cam.latency_s if x >= 0]
    out = [(repr(b), float(sum(1 for x in lat if x <= b))) for b in LATENCY_BUCKETS]
    out.append(("+Inf", float(len(lat))))
    return out, float(sum(lat))


def exposition(state: RunState, now: float) -> bytes:
    """The text exposition of ``state`` (a fresh registry per call)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunStateCollector(state, now))
    return generate_latest(registry)
