"""The analytics worker process: detector + ByteTrack over frames from the ingest rings.

Order of steps at start: read the model bytes from stdin, check their SHA-256 against the
digest the supervisor verified, open each camera's ring (read-only) and ack file, enter the
sandbox (:mod:`kontur.worker.sandbox`: no network, no file but its scratch dir, seccomp,
limits, uid 65534) — before numpy or an inference runtime is imported, so no other thread
exists yet — then build the detector *from those bytes*, announce :class:`WorkerReady` with
the isolation report. Then, per frame: read it from the ring (read-only mapping), detect,
track, send :class:`TrackFrame` to the verifier; per GOP, send a :class:`DetectionBatch`
to the supervisor for the archive.

The worker is treated as untrusted: everything it says is parsed, never unpickled, and its
results reach an action only through the verifier and the gate.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from kontur.runtime.spec import (
    exit_now,
    install_stop_handler,
    read_spec,
    stop_requested,
    wait_or_stop,
)
from kontur.wire import DetectionBatch, FrameReady, TrackFrame, WorkerReady
from kontur.wire.channel import Outbox
from kontur.worker.bundle import MAX_BUNDLE_BYTES, BundlePart, unpack
from kontur.worker.errors import ACCELERATOR_FAULT_EXIT, AcceleratorFault, ModelIntegrityError
from kontur.worker.faults import FaultPlan, WorkerFault
from kontur.worker.sandbox import SandboxPolicy, enter

if TYPE_CHECKING:  # numpy-importing modules load only after the sandbox is entered
    from kontur.wire.framering import RingReader, RingSlot
    from kontur.worker.detectors import Detector
    from kontur.worker.tracking import CameraTracker

__all__ = ["SANDBOX_PRELOAD", "build_detector", "main", "sandbox_policy"]


def _read_release(spec: dict[str, Any]) -> tuple[bytes, dict[str, bytes]]:
    """The verified release from stdin: ``(release.json bytes, {file: bytes})``, each part
    re-checked against the digest in the spec (:mod:`kontur.worker.bundle`)."""
    index = tuple(BundlePart.from_json(p) for p in spec["bundle"])
    stdin = sys.stdin.buffer
    size = int.from_bytes(stdin.read(8), "big")
    expected = sum(p.size for p in index)
    if size != expected or size > MAX_BUNDLE_BYTES:
        raise ModelIntegrityError(f"release bundle: expected {expected} bytes, got {size}")
    return unpack(stdin.read(size), index)


#: Imported inside the sandbox but before the drop to uid 65534, which may not be able to
#: read the interpreter's tree (see :mod:`kontur.worker.sandbox`, step 7).
SANDBOX_PRELOAD = (
    "kontur.wire.framering",
    "kontur.worker.detectors",
    "kontur.worker.tracking",
    "kontur.worker.motion",
    "kontur.worker.runners",
    "kontur.release.manifest",
    "kontur.config",
    "cv2",
    "onnxruntime",
)
#: Where the ring files live (as :func:`kontur.wire.framering.shm_path`, which imports numpy).
_SHM_DIR = Path("/dev/shm")


def _open_ring_fds(spec: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Per camera, its ring opened read-only and this reader's ack file read-write.

    Opened before the sandbox, which then grants no access to /dev/shm at all.
    """
    fds = {}
    for c in spec["cameras"]:
        name = c["ring"]
        if "/" in name or name.startswith("."):
            raise ValueError(f"expected a ring name without '/' or leading '.', got {name!r}")
        ring_fd = os.open(_SHM_DIR / name, os.O_RDONLY | os.O_CLOEXEC)
        ack = _SHM_DIR / f"{name}.ack{spec['reader_index']}"
        fds[c["camera_id"]] = (ring_fd, os.open(ack, os.O_RDWR | os.O_CLOEXEC))
    return fds


def sandbox_policy(
    spec: dict[str, Any], spec_path: Path, preload: tuple[str, ...] = SANDBOX_PRELOAD
) -> SandboxPolicy:
    """The sandbox the spec's ``sandbox`` dict asks for (defaults: the full sandbox), with
    ``preload`` (the worker's by default) and the spec's own preload imported before the drop.

    The default scratch dir is ``<run dir>/scratch/worker-<pid>``, the run dir being the
    one that holds ``specs/`` (where the supervisor wrote the spec). The run dir's parent,
    the data dir with the archive, is always denied: a policy exposing it is refused.
    """
    run_dir = spec_path.resolve().parent.parent
    policy = SandboxPolicy.from_json(
        spec.get("sandbox") or {}, default_scratch=run_dir / "scratch" / f"worker-{os.getpid()}"
    )
    runtime = ("openvino",) if spec.get("platform") == "npu" else ()
    return dataclasses.replace(
        policy,
        preload=(*preload, *runtime, *policy.preload),
        denied_paths=(*policy.denied_paths, run_dir.parent),
    )


def build_detector(
    spec: dict[str, Any], release: tuple[bytes, dict[str, bytes]] | None
) -> Detector:
    """The detector the spec asks for, built from the verified bytes (inside the sandbox:
    parsing ``release.json`` and building the model session are untrusted work)."""
    from kontur.worker.detectors import HogPersonDetector

    w = spec["worker"]
    if spec["detector"] == "hog":
        return HogPersonDetector(
            score_threshold=w["score_threshold"],
            nms_threshold=w["nms_threshold"],
            threads=w["intra_op_threads"],
        )
    from kontur.release.manifest import ReleaseManifest
    from kontur.worker.runners import build_detector as build_release_detector
    from kontur.worker.runners import simulated_accelerator

    assert release is not None
    manifest_raw, files = release
    # `--inject-fault accelerator-reset | driver-unapproved`: the CPU runner behind a simulated
    # accelerator whose EP fails (kontur.worker.runners.simulated); never outside a demo fault
    simulated = spec.get("simulated_accelerator") if spec["platform"] != "cpu" else None
    detector = build_release_detector(
        ReleaseManifest.from_json(manifest_raw),
        files,
        model_id=spec["model_id"],
        platform="cpu" if simulated else spec["platform"],
        intra_op_threads=w["intra_op_threads"],
    )
    if not simulated:
        return detector
    from kontur.worker.runners import ReleaseDetector

    assert isinstance(detector, ReleaseDetector)
    return simulated_accelerator(detector, spec["platform"], simulated.get("reset_after_calls"))


@dataclass
class _Camera:
    reader: RingReader
    tracker: CameraTracker
    #: The shared detector, or a per-camera :class:`MotionGate` in front of it.
    detector: Detector
    gop: int | None = None
    frames: int = 0
    detections: int = 0
    track_ids: set[int] = field(default_factory=set)
    classes: Counter[str] = field(default_factory=Counter)


class WorkerLoop:
    """Runs the detector over every camera's ring."""

    def __init__(
        self,
        spec: dict[str, Any],
        detector: Detector,
        ring_fds: dict[str, tuple[int, int]] | None = None,
    ) -> None:
        """``ring_fds``: descriptors from :func:`_open_ring_fds` (else rings open by name)."""
        from kontur.wire.framering import RingReader
        from kontur.worker.tracking import CameraTracker

        def reader(c: dict[str, Any]) -> RingReader:
            if ring_fds is None:
                return RingReader(c["ring"], spec["reader_index"])
            return RingReader.from_fds(c["ring"], *ring_fds[c["camera_id"]])

        self.spec, self.detector = spec, detector
        self.platform: str = spec["platform"]
        self.config_id: str = spec["config_id"]
        self.wake_fd: int = spec["wake_fd"]
        os.set_blocking(self.wake_fd, False)
        self.to_verifier = Outbox(spec["verifier_fd"])
        self.to_supervisor = Outbox(spec["supervisor_fd"])
        fault = spec.get("fault")  # `kontur demo --inject-fault worker-…` only (ADR 0025)
        self.faults = (
            {c["camera_id"]: WorkerFault(FaultPlan.from_json(fault)) for c in spec["cameras"]}
            if fault
            else {}
        )
        self.cameras = {
            c["camera_id"]: _Camera(
                reader(c),
                CameraTracker(c["fps"], detector.class_names),
                self._camera_detector(c),
            )
            for c in spec["cameras"]
        }

    def _camera_detector(self, c: dict[str, Any]) -> Detector:
        if not c.get("motion_gating"):
            return self.detector
        from kontur.config import MotionConfig
        from kontur.worker.motion import MotionGate

        return MotionGate(self.detector, MotionConfig(**self.spec["worker"]["motion"]))

    def _flush_batch(self, cam_id: str, cam: _Camera) -> None:
        if cam.gop is None:
            return
        self.to_supervisor.send(
            DetectionBatch(
                camera_id=cam_id,
                gop_index=cam.gop,
                model_id=self.detector.model_id,
                config_id=self.config_id,
                platform=self.platform,
                frames=cam.frames,
                detections=cam.detections,
                track_ids=tuple(sorted(cam.track_ids)),
                classes=dict(cam.classes),
            )
        )
        cam.frames, cam.detections, cam.track_ids, cam.classes = 0, 0, set(), Counter()

    def _process(self, cam_id: str, cam: _Camera, slot: RingSlot) -> None:
        try:
            meta = FrameReady.model_validate_json(slot.meta)
        except ValidationError:
            return  # a torn or foreign slot: nothing to analyse
        if cam.gop is not None and meta.gop_index != cam.gop:
            self._flush_batch(cam_id, cam)
        cam.gop = meta.gop_index
        if not meta.analyse:
            return
        dets = cam.detector.infer(slot.frame)
        tracks = TrackFrame(
            camera_id=cam_id,
            frame_index=meta.frame_index,
            pts_s=meta.pts_s,
            model_id=self.detector.model_id,
            config_id=self.config_id,
            platform=self.platform,
            objects=cam.tracker.update(dets),
            detections=len(dets),
        )
        if cam_id in self.faults:  # the simulated compromised worker lies here
            tracks = self.faults[cam_id].apply(tracks, meta.width, meta.height)
        cam.frames += 1
        cam.detections += len(dets)
        cam.track_ids.update(o.track_id for o in tracks.objects)
        cam.classes.update(o.class_name for o in tracks.objects)
        self.to_verifier.send(tracks)

    def drain(
        self, cameras: dict[str, _Camera] | None = None, halt: threading.Event | None = None
    ) -> None:
        """Analyse what the rings of ``cameras`` (default: all) hold, one frame per camera in
        turn, until a whole round finds every ring empty: a camera that keeps its ring full
        (an unpaced file, a burst) never starves the others, whose frames are taken in the
        next round they arrive. Stops early when asked to stop or ``halt`` is set."""
        cams = self.cameras if cameras is None else cameras
        busy = True
        while busy and not stop_requested() and not (halt is not None and halt.is_set()):
            busy = False
            for cam_id, cam in cams.items():
                slot = cam.reader.read_next()
                if slot is not None:
                    busy = True
                    self._process(cam_id, cam, slot)

    def wait_wake(self) -> bool:
        """Wait up to 0.2 s for ingest's wake-up byte; False once every writer is gone (the
        supervisor died), so the worker stops rather than spins."""
        wait_or_stop([self.wake_fd], 0.2)
        with contextlib.suppress(BlockingIOError):
            if os.read(self.wake_fd, 4096) == b"":
                return False
        return True

    def shards(self) -> list[dict[str, _Camera]]:
        """The cameras split among the analysis threads (``worker.analysis_threads``)."""
        n = analysis_threads(self.spec["worker"].get("analysis_threads", 1), len(self.cameras))
        items = list(self.cameras.items())
        return [dict(items[k::n]) for k in range(n)]

    def run(self) -> None:
        """Process frames until asked to stop: on this thread when one analysis thread is
        asked for, else on :class:`_Analysers`."""
        shards = self.shards()
        if len(shards) > 1:
            _Analysers(self, shards).run()
        else:
            while not stop_requested() and self.wait_wake():
                self.drain()
        for cam_id, cam in self.cameras.items():
            self._flush_batch(cam_id, cam)


def analysis_threads(setting: int | str, cameras: int) -> int:
    """How many threads analyse frames: the setting, or for ``auto`` one per CPU this
    process may run on; never more than there are cameras."""
    wanted = len(os.sched_getaffinity(0)) if setting == "auto" else int(setting)
    return max(1, min(wanted, cameras))


class _Analysers:
    """One thread per shard of cameras. Each drains its own cameras' rings, so a camera's
    frames stay in order while different cameras' inference runs at once (the runtimes
    release the GIL). The calling thread waits on the wake pipe and wakes them all.

    The first error on any thread (an :class:`AcceleratorFault`, a crash) stops the others
    and is raised from :meth:`run`, as the single-threaded loop would raise it.
    """

    def __init__(self, loop: WorkerLoop, shards: list[dict[str, _Camera]]) -> None:
        self.loop = loop
        self.done = threading.Event()
        self.errors: list[BaseException] = []
        self.wakes = [threading.Event() for _ in shards]
        self.threads = [
            threading.Thread(
                target=self._serve, args=(shard, wake), name=f"analysis-{k}", daemon=True
            )
            for k, (shard, wake) in enumerate(zip(shards, self.wakes, strict=True))
        ]

    def _serve(self, shard: dict[str, _Camera], wake: threading.Event) -> None:
        try:
            while not self.done.is_set():
                wake.wait(0.2)
                wake.clear()
                self.loop.drain(shard, halt=self.done)
        except BaseException as exc:  # handed to the main thread, which re-raises the first
            if self.errors:
                print(f"analysis thread also failed: {exc!r}", file=sys.stderr)
            self.errors.append(exc)
            self.done.set()

    def run(self) -> None:
        """Serve until stopped, the supervisor is gone, or a thread failed: the others stop
        within the frame they are analysing, and the first error is raised."""
        try:
            for t in self.threads:
                t.start()
            while not stop_requested() and not self.done.is_set() and self.loop.wait_wake():
                for wake in self.wakes:
                    wake.set()
        finally:
            self.done.set()
            for wake in self.wakes:
                wake.set()
            for t in self.threads:
                if t.is_alive():
                    t.join()
        if self.errors:
            raise self.errors[0]


def main() -> int:
    """Entry point: ``python -m kontur.worker.process SPEC.json`` (model bytes on stdin)."""
    install_stop_handler()
    spec = read_spec()
    release = _read_release(spec) if spec["detector"] != "hog" else None
    ring_fds = _open_ring_fds(spec)
    isolation = enter(sandbox_policy(spec, Path(sys.argv[1])))
    detector = build_detector(spec, release)
    loop = WorkerLoop(spec, detector, ring_fds)
    loop.to_supervisor.send(
        WorkerReady(
            model_id=detector.model_id,
            platform=loop.platform,
            detector=detector.name,
            isolation=isolation.to_json(),
        )
    )
    try:
        loop.run()
    except AcceleratorFault as exc:  # the EP failed: the supervisor moves us to the CPU
        print(f"accelerator fault: {exc}", file=sys.stderr)
        return ACCELERATOR_FAULT_EXIT
    return 0


if __name__ == "__main__":
    exit_now(main())  # (not the teardown of ONNX Runtime and scipy: ADR 0059)
