"""Crash safety, proven: SIGKILL the archive writer at random points; nothing acknowledged is lost.

Run from the repository root (after the README's install)::

    python benchmarks/archive_kill.py [--kills 120] [--seed S] [--keep DIR] [--json PATH|-]
                                      [--with-export [--export-kills 24]]

One archive is grown across every kill: ``DIR/data`` (the archive), its checkpoint key
outside it (``DIR/archive.key``) and a witness file next to it (``DIR/witness.jsonl``). For
each kill a fresh writer process (this file, ``--_child``) opens the archive with small
batches (``batch_size`` 1, 2, 4 or 8, ``batch_interval_s`` 0.01) and a small checkpoint
cadence (every 5 records or 0.05 s), then runs a seeded mix of ``append``, ``append_segment``
(1-16 KiB; cameras ``cam-1`` and ``cam-2``), ``flush``, ``checkpoint`` and, once per writer
(at a seeded operation), ``apply_retention`` with a policy under which every segment older
than 0.2 s expires, until it is killed. The first writer places a legal hold over every
``cam-2`` segment. Every writer's record carries ``{"run": r, "seq": s}``: ``r`` is the kill
number, ``s`` counts that writer's records from 0. The writer reports on its stdout pipe,
which the parent reads:

- ``ack <seq> <index>`` after an operation that left nothing pending (``flush``,
  ``checkpoint``, retention, or an ``append`` whose batch committed): the acknowledgement. A
  record is acknowledged only once a commit holding it has returned;
- ``cp <size>`` for every checkpoint handed to ``on_checkpoint`` (the webhook sink): a
  checkpoint published to the outside world;
- ``pause <point>`` when it stopped at its kill point (below).

The parent SIGKILLs the writer at one *kill point*. Even kills are ``timed``: a random moment
20-400 ms after the writer is ready, whatever runs then (appends, commits, segment writes,
signing, witnessing, retention). Odd kills rotate through points the writer pauses at, the
n-th time (n = 1-3, seeded) it gets there, through wrappers installed in the writer process
only:

- ``commit.before`` / ``commit.after`` -- in ``Archive._commit``: a batch open and about to
  commit / just committed, not yet acknowledged (the automatic checkpoint already issued);
- ``segment.stored`` -- a segment file made durable, its record not yet appended;
- ``checkpoint.sign`` -- a commit done, its checkpoint about to be signed and stored;
- ``witness.before`` / ``witness.after`` -- a checkpoint stored in SQLite, not yet / just
  appended to the witness file (so not yet published to ``on_checkpoint``);
- ``retention.commit`` -- a commit inside ``apply_retention`` (its first flush, or tombstones
  about to become durable); ``retention.remove`` -- tombstones durable, a segment file about
  to be unlinked (n > 1: some already are). A writer planned to die here applies retention
  every 25 operations until it does;
- ``witness.torn`` -- the writer writes the first half of a witness line and is killed
  there, as a power loss (or a short write on a full disk) leaves it: SIGKILL alone cannot
  tear one small ``write``. The next writer must end the torn line before its own, and
  verify must report it (``torn_lines``) without failing;
- export: not in this rotation. ``kontur archive export`` needs real signed GOPs and the
  camera's certificates, which this synthetic archive does not have; it is the optional
  second phase below (``--with-export``).

A writer that does not reach its point within 3 s is killed anyway (``fallback``). After
each kill the parent checks, and counts every failure as a *violation*:

1. ``verify_archive(data, witness=witness)`` is ok (torn witness lines are allowed and
   counted, never a failure);
2. no committed record was lost: the tree holds at least the records of the previous kill,
   with the same root at that size; every acknowledged ``seq`` is in it, at the index its
   ack named;
3. each writer's records are one contiguous run ``seq 0..m-1`` after the previous writer's
   (tombstones and holds in between);
4. no checkpoint covers an uncommitted record: every stored, witnessed and published
   (``cp``) checkpoint size is at most the number of records that survived;
5. every ``cam-2`` segment recorded after the hold still has its file;
6. the archive reopens for appending: the next writer opens it (a writer that exits on its
   own, e.g. because ``Archive.open`` failed, is a violation).

At the end the parent reopens the archive in-process, appends one record, closes it and
verifies once more: the checkpoint at close must cover every record. ``--seed`` replays the
plan (the kill points, the writers' operation mixes and batch sizes; timed kills land within
a few ms of the same moment). The suite runs 20 kills
(``tests/archive/test_archive_kill_harness.py``).

**Export phase** (``--with-export``; needs ``../shared/data``, skipped with the reason when it
is absent). ``kontur demo`` runs once on the real PETS09 clip with YOLOX-nano (signed on the
fly by the demo camera: ~25 s on 2 cores) into ``DIR/export/data``; then ``--export-kills``
kills of ``kontur archive export`` of that camera's whole stream (four GOPs, ~3.7 MB bundle),
on that one archive, grown across the kills. Each export runs in a fresh process (this file,
``--_export-child``) that installs wrappers around the export's steps
(:mod:`kontur.evidence.export`) and then runs the real CLI entry point (``kontur.cli.main``).
It reports ``ready`` just before the CLI starts, ``ack <index>`` when the flush holding the
``export`` record returned, and ``pause <point>`` at its kill point. A clean export first
gives the calibration time ``T`` (ready to exit). Even kills are ``timed`` (a random moment
in ``0..T`` after ready; one that lands after the export finished counts as
``completed``); odd kills rotate through :data:`EXPORT_POINTS`, in step order:

- ``export.zip`` -- the temporary bundle half written (after its n-th member, n = 1-6);
- ``export.written`` -- the temporary bundle complete and fsynced, no ``export`` record;
- ``export.appended`` -- the ``export`` record in the open batch, not committed;
- ``export.flushed`` -- the record committed (acknowledged), the bundle not moved into place;
- ``export.placed`` -- the bundle moved into place, the writer not closed (no checkpoint of
  the record yet);
- ``export.sign`` -- the close's checkpoint (covering the record) about to be signed.

After each kill the parent checks, and counts every failure as a violation: ``verify_archive``
is ok; every record committed before is still there under the same root, and the acked
``export`` record is in it; the kill added nothing but that attempt's ``export`` record; no
stored checkpoint is larger than the tree; a file at ``--out`` exists only if a committed
``export`` record names it and its SHA-256, and its manifest names that record's index; every
other file in the output directory is a temporary bundle (``.<name>.<random>.tmp``, counted:
the export never removes one a kill left); at a kill point, (record committed, bundle in
place) is that point's state in :data:`EXPORT_POINTS`. Then the export is re-run with the same
``--out`` (unless the bundle is already in place): it must succeed, add exactly one ``export``
record and no temporary bundle, and ``kontur archive verify-export --pin-key`` must pass on
the bundle. The suite runs each point once and three timed kills
(``tests/evidence/test_evidence_kill.py``), each on a fresh copy of one demo archive.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import queue
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from _machine import machine  # noqa: E402 - the benchmarks' shared helper, beside this file

#: Kill points the writer pauses at (see the module docstring); ``timed`` is not one of them.
POINTS: tuple[str, ...] = (
    "commit.before",
    "commit.after",
    "segment.stored",
    "checkpoint.sign",
    "witness.before",
    "witness.after",
    "witness.torn",
)
#: Kill points in steps that need another agent's module: rotated in once the module imports
#: and the writer's step for it is written (:data:`STEP_WRITTEN`).
OPTIONAL_POINTS: dict[str, str] = {
    "retention.commit": "kontur.archive.retention",
    "retention.remove": "kontur.archive.retention",
}
#: Whether the writer's step is written (:func:`_retention_step`). Export is not a writer
#: step: it needs real video, so it is the optional export phase (:class:`ExportHarness`).
STEP_WRITTEN: dict[str, bool] = {
    "retention.commit": True,
    "retention.remove": True,
}
#: The camera whose segments a legal hold (placed by the first writer) keeps from retention.
HELD_CAMERA = "cam-2"
#: Simulates a torn witness write (power loss, a short write on a full disk), which SIGKILL
#: alone cannot produce for one small ``write``.
TORN_POINT = "witness.torn"
BATCH_SIZES = (1, 2, 4, 8)
BATCH_INTERVAL_S = 0.01
CHECKPOINT_EVERY_RECORDS = 5
CHECKPOINT_EVERY_S = 0.05
TIMED_DELAY_S = (0.02, 0.4)
MAX_NTH = 3
#: A writer planned to die in retention applies it every so many operations.
RETENTION_EVERY = 25
FALLBACK_S = 3.0
READY_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------- the writer


def _emit(*words: object) -> None:
    """One line to the parent; a line is whole in the pipe once ``print`` returned."""
    print(*words, flush=True)


#: The writer's step in progress ("retention") or "", for naming its commits.
_STEP = [""]


def _install_kill_point(point: str, nth: int) -> None:
    """Wrap the archive's internals so that the writer pauses the ``nth`` time it reaches
    ``point``; the parent kills it there. Only ever done inside the writer process."""
    import kontur.archive.archive as am
    from kontur.archive.segments import SegmentStore

    hits = 0

    def reach(name: str) -> None:
        nonlocal hits
        if name != point:
            return
        hits += 1
        if hits == nth:
            _emit("pause", name)
            while True:  # until SIGKILL
                time.sleep(60)

    commit, sign, witness = am.Archive._commit, am.sign_checkpoint, am.append_witness
    put, remove = SegmentStore.put, SegmentStore.remove

    def _commit(self: Any) -> None:
        batch, step = self.pending > 0, _STEP[0]
        if batch:
            reach(f"{step}.commit" if step else "commit.before")
        commit(self)
        if batch and not step:
            reach("commit.after")

    def _sign(cp: Any, key: Any) -> str:
        reach("checkpoint.sign")
        return sign(cp, key)

    def _witness(path: Path, at: float, note: str) -> None:
        if point == TORN_POINT and hits + 1 == nth:
            _tear(path, at, note)
        reach(TORN_POINT)
        reach("witness.before")
        witness(path, at, note)
        reach("witness.after")

    def _put(self: Any, data: bytes) -> Any:
        ref = put(self, data)
        reach("segment.stored")
        return ref

    def _remove(self: Any, sha256: str) -> bool:
        reach("retention.remove")
        return remove(self, sha256)

    am.Archive._commit = _commit  # type: ignore[method-assign]
    am.sign_checkpoint = _sign
    am.append_witness = _witness
    SegmentStore.put = _put  # type: ignore[method-assign]
    SegmentStore.remove = _remove  # type: ignore[method-assign]


def _tear(path: Path, at: float, note: str) -> None:
    """Write the first half of the witness line, as a power loss mid-write leaves it."""
    line = json.dumps({"at": at, "note": note}, sort_keys=True, separators=(",", ":"))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("ascii")[: len(line) // 2])
        os.fsync(fd)
    finally:
        os.close(fd)


def _segment_bytes(run: int, seq: int, size: int) -> bytes:
    """Deterministic, distinct segment content."""
    block = hashlib.sha256(f"segment {run} {seq}".encode()).digest()
    return (block * (size // 32 + 1))[:size]


def _place_hold(arc: Any) -> None:
    """First writer only: a legal hold over every segment of :data:`HELD_CAMERA`."""
    from kontur.archive.retention import place_hold

    place_hold(arc, HELD_CAMERA, 0.0, 4e9, "archive_kill: held camera", "archive_kill")


def _retention_step(arc: Any) -> None:
    """Retention in the writer: every unheld segment older than 0.2 s expires (``now`` is
    one day minus 0.2 s ahead, the policy one day), so each run removes what the previous
    ones left; kill points ``retention.commit`` (the flush, tombstones) and
    ``retention.remove`` (tombstones durable, files being unlinked)."""
    from kontur.archive.retention import DAY_S, RetentionPolicy, apply_retention

    _STEP[0] = "retention"
    try:
        apply_retention(arc, RetentionPolicy(default_days=1.0), time.time() + DAY_S - 0.2)
    finally:
        _STEP[0] = ""


class _Writer:
    """The writer process's loop: append, flush and checkpoint until killed."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.run = int(cfg["run"])
        self.rng = random.Random(cfg["seed"])
        self.seq = 0
        self.index = -1  # index of the record of seq - 1

    def loop(self, arc: Any) -> None:
        acked, op = 0, 0
        while True:
            op += 1
            if self._retention_due(op):
                _retention_step(arc)
            else:
                self.random_op(arc)
            if self.seq > acked and (self.cfg["ack_uncommitted"] or arc.pending == 0):
                acked = self.seq
                _emit("ack", self.seq - 1, self.index)

    def _retention_due(self, op: int) -> bool:
        at, every = self.cfg["retention_at"], self.cfg["retention_every"]
        return op == at or (at > 0 and every > 0 and op > at and (op - at) % every == 0)

    def random_op(self, arc: Any) -> None:
        r, run, seq = self.rng.random(), self.run, self.seq
        if r < 0.06:
            arc.flush()
            return
        if r < 0.09:
            arc.checkpoint()
            return
        if r < 0.30:
            data = _segment_bytes(run, seq, self.rng.randint(1024, 16384))
            camera = HELD_CAMERA if self.rng.random() < 0.3 else "cam-1"
            rec = arc.append_segment(data, {"run": run, "seq": seq, "camera_id": camera})
        else:
            rec = arc.append("detections", {"run": run, "seq": seq, "track_ids": [seq % 7]})
        self.seq, self.index = seq + 1, rec.index


def writer(cfg: dict[str, Any]) -> None:
    """The writer process: open (reopen) the archive, report ready, loop until killed.

    Acknowledges ``ack <seq> <index>`` once nothing is pending, i.e. a commit holding the
    record returned (with ``ack_uncommitted``, the harness's self-test, after every append).
    """
    from kontur.archive import Archive, Signing

    if cfg["point"] != "timed":
        _install_kill_point(cfg["point"], cfg["nth"])
    signing = Signing(
        key_path=Path(cfg["key"]),
        every_records=CHECKPOINT_EVERY_RECORDS,
        every_s=CHECKPOINT_EVERY_S,
        witness=Path(cfg["witness"]),
    )
    arc = Archive.open(
        Path(cfg["data"]),
        batch_size=cfg["batch_size"],
        batch_interval_s=BATCH_INTERVAL_S,
        signing=signing,
        on_checkpoint=lambda note: _emit("cp", int(note.split("\n")[1])),
    )
    if cfg["hold"] and arc.records == 0:
        _place_hold(arc)
    _emit("ready", arc.records)
    _Writer(cfg).loop(arc)


# --------------------------------------------------------------------------- the parent


@dataclass
class Plan:
    """One kill: where, and how the writer behaves (all from the seeded RNG)."""

    kill: int
    point: str
    nth: int
    delay_s: float
    seed: int
    batch_size: int
    retention_at: int = 0  # the writer's operation that applies retention (0: none)
    retention_every: int = 0  # and every so many operations after it (0: once)


@dataclass
class Outcome:
    """What one kill saw and what the checks after it found."""

    plan: Plan
    killed_at: str = ""  # the point it paused at, "timed", or "fallback"
    acks: list[tuple[int, int]] = field(default_factory=list)  # (seq, index)
    published: list[int] = field(default_factory=list)  # on_checkpoint sizes
    records: int = 0
    new_records: int = 0
    unacked_committed: int = 0
    segments: int = 0
    removed: int = 0  # segment files retention removed (tombstoned)
    held: int = 0  # segment records under the legal hold (their files must stay)
    others: dict[str, int] = field(default_factory=dict)  # tombstones, holds, ... so far
    checkpoint_size: int = 0
    witness_lines: int = 0
    torn_witness: int = 0  # torn lines in the witness file (each reported, never a failure)
    verify_s: float = 0.0
    writer_s: float = 0.0
    violations: list[str] = field(default_factory=list)


@dataclass
class _Seen:
    """The archive as the checks last saw it."""

    records: int = 0
    head: str = hashlib.sha256(b"").hexdigest()
    last: tuple[int, int] | None = None  # (run, seq) of the last writer's record
    index: dict[int, list[int]] = field(default_factory=dict)  # run -> index of each seq
    hold: int | None = None  # index of the first legal hold
    held: list[tuple[int, str]] = field(default_factory=list)  # held segments (index, sha256)
    others: dict[str, int] = field(default_factory=dict)  # records no writer counted, by kind


class Harness:
    """Grows one archive in ``work`` across kills of a writer process; checks after each."""

    def __init__(self, work: Path, seed: int, points: tuple[str, ...] | None = None) -> None:
        self.work = work
        self.data = work / "data"
        self.key = work / "archive.key"
        self.witness = work / "witness.jsonl"
        self.seed = seed
        work.mkdir(parents=True, exist_ok=True)
        self.points = points if points is not None else POINTS + available_optional_points()
        self._rng = random.Random(seed)
        self._seen = _Seen()
        #: Self-test of the harness: the writer acknowledges every append, committed or not.
        self.ack_uncommitted = False

    def plan(self, kill: int) -> Plan:
        """The next kill's plan; call in kill order (it draws from the seeded RNG)."""
        r = self._rng
        point = "timed" if kill % 2 == 0 else self.points[(kill // 2) % len(self.points)]
        plan = Plan(
            kill=kill,
            point=point,
            nth=r.randint(1, MAX_NTH),
            delay_s=round(r.uniform(*TIMED_DELAY_S), 4),
            seed=r.getrandbits(32),
            batch_size=r.choice(BATCH_SIZES),
        )
        at = r.randint(3, 20) if point.startswith("retention.") else r.randint(5, 150)
        if any(p.startswith("retention.") for p in self.points):
            plan.retention_at = at
        if point.startswith("retention."):  # until there is a file to remove, then the kill
            plan.retention_every = RETENTION_EVERY
        return plan

    def kill_once(self, plan: Plan) -> Outcome:
        """Run one writer, SIGKILL it as planned, check the archive."""
        out = Outcome(plan)
        t0 = time.monotonic()
        self._run_writer(plan, out)
        out.writer_s = round(time.monotonic() - t0, 3)
        self.check(out)
        return out

    def finish(self) -> Outcome:
        """Reopen in-process, append one record, close; the close checkpoint covers all."""
        from kontur.archive import Archive, ArchiveError, Signing

        run = max(self._seen.index, default=-1) + 1
        out = Outcome(Plan(run, "close", 0, 0.0, 0, 1), killed_at="close")
        signing = Signing(key_path=self.key, witness=self.witness)
        try:
            with Archive.open(self.data, signing=signing) as arc:
                rec = arc.append("event", {"run": run, "seq": 0, "text": "clean close"})
                arc.flush()
                out.acks.append((0, rec.index))
        except ArchiveError as exc:
            out.violations.append(f"close: reopen for append raised {type(exc).__name__}: {exc}")
            return out
        self.check(out)
        if out.checkpoint_size != out.records:
            out.violations.append(
                f"close: expected a checkpoint of all {out.records} records, "
                f"got one of {out.checkpoint_size}"
            )
        return out

    # ----------------------------------------------------------------- the writer process

    def _run_writer(self, plan: Plan, out: Outcome) -> None:
        cfg = {
            "data": str(self.data),
            "key": str(self.key),
            "witness": str(self.witness),
            "run": plan.kill,
            "point": plan.point,
            "nth": plan.nth,
            "seed": plan.seed,
            "batch_size": plan.batch_size,
            "retention_at": plan.retention_at,
            "retention_every": plan.retention_every,
            "hold": any(p.startswith("retention.") for p in self.points),
            "ack_uncommitted": self.ack_uncommitted,
        }
        err_path = self.work / "writer.err"
        with err_path.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--_child", json.dumps(cfg)],
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
            lines: queue.Queue[str | None] = queue.Queue()
            assert proc.stdout is not None
            pump = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
            pump.start()
            try:
                died = self._wait_and_kill(proc, plan, out, lines)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                pump.join()
            while (line := lines.get()) is not None:  # acks written just before the kill
                _take(line, out)
        if died or proc.returncode != -signal.SIGKILL:
            tail = err_path.read_text()[-1500:].strip()
            out.violations.append(
                f"writer {plan.kill} exited with {proc.returncode} before the kill "
                f"(reopen for append failed?): {tail or 'no stderr'}"
            )

    def _wait_and_kill(
        self, proc: subprocess.Popen[str], plan: Plan, out: Outcome, lines: queue.Queue[str | None]
    ) -> bool:
        """Read lines until the kill is due; True if the writer died on its own first."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        ready = False
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                out.killed_at = "timed" if plan.point == "timed" else "fallback"
                if not ready:
                    out.violations.append(f"writer {plan.kill}: not ready after {READY_TIMEOUT_S}s")
                    out.killed_at = "not ready"
                break
            if line is None:
                lines.put(None)
                return True
            if line.startswith("ready"):
                ready = True
                wait = plan.delay_s if plan.point == "timed" else FALLBACK_S
                deadline = time.monotonic() + wait
            elif line.startswith("pause"):
                out.killed_at = line.split()[1]
                break
            else:
                _take(line, out)
        os.kill(proc.pid, signal.SIGKILL)
        return False

    # ----------------------------------------------------------------- the checks

    def check(self, out: Outcome) -> None:
        """Checks 1-5 of the module docstring; appends a reason per violation to ``out``."""
        from kontur.archive import Archive, ArchiveError, verify_archive

        where = f"kill {out.plan.kill} ({out.killed_at})"
        t0 = time.monotonic()
        try:
            report = verify_archive(
                self.data, witness=self.witness if self.witness.exists() else None
            )
        except ArchiveError as exc:  # e.g. a witness file that no longer parses
            out.violations.append(f"{where}: verify raised {type(exc).__name__}: {exc}")
            return
        finally:
            out.verify_s = round(time.monotonic() - t0, 3)
        if not report.ok:
            bad = report.first_bad
            out.violations.append(f"{where}: verify failed: {bad.reason if bad else report}")
            return
        out.records, out.segments, out.removed = report.records, report.segments, report.removed
        out.checkpoint_size = report.checkpoint["size"] if report.checkpoint else 0
        if report.witness is not None:
            out.witness_lines = int(report.witness["checkpoints"])
            torn = report.witness.get("torn_lines", report.witness.get("torn_last_line"))
            out.torn_witness = len(torn) if isinstance(torn, list) else int(bool(torn))
        seen = self._seen
        if report.records < seen.records:
            out.violations.append(
                f"{where}: expected at least the {seen.records} records committed before, "
                f"got {report.records} (committed records lost)"
            )
            return
        with contextlib.closing(Archive.open_readonly(self.data)) as arc:
            if arc.root_at(seen.records).hex() != seen.head:
                out.violations.append(
                    f"{where}: expected root {seen.head} at size {seen.records}, got "
                    f"{arc.root_at(seen.records).hex()} (earlier records rewritten)"
                )
            for rec in arc.iter_records(seen.records):
                self._take_record(where, rec, out)
            stored = max((size for size, _, _ in arc.checkpoints()), default=0)
            gone = [i for i, sha in seen.held if not arc.segments.path(sha).exists()]
        if gone:
            out.violations.append(f"{where}: held segment records {gone[:5]}: files removed")
        out.held, out.others = len(seen.held), dict(seen.others)
        out.new_records = report.records - seen.records
        seen.records, seen.head = report.records, report.head
        self._check_acks(where, out)
        self._check_checkpoints(where, out, report, stored)

    def _take_record(self, where: str, rec: Any, out: Outcome) -> None:
        seen, index, payload = self._seen, rec.index, rec.payload
        if rec.kind == "hold" and seen.hold is None:
            seen.hold = index
        if rec.kind in ("tombstone", "hold", "hold_release", "export"):
            seen.others[rec.kind] = seen.others.get(rec.kind, 0) + 1
            return  # written by retention or export, not counted by a writer
        run, seq = payload.get("run"), payload.get("seq")
        if not isinstance(run, int) or not isinstance(seq, int):
            out.violations.append(f"{where}: record {index}: expected run and seq, got {payload}")
            return
        held = seen.hold is not None and payload.get("camera_id") == HELD_CAMERA
        if rec.kind == "segment" and held:
            seen.held.append((index, payload["sha256"]))
        prev = seen.last
        contiguous = prev is not None and run == prev[0] and seq == prev[1] + 1
        starts = seq == 0 and (prev is None or run > prev[0])
        if not (contiguous or starts):
            out.violations.append(
                f"{where}: record {index}: expected run {prev[0] if prev else '*'} seq "
                f"{prev[1] + 1 if prev else 0} or a later run's seq 0, got run {run} seq {seq}"
            )
        seen.index.setdefault(run, []).append(index)
        seen.last = (run, seq)

    def _check_acks(self, where: str, out: Outcome) -> None:
        run, seen = out.plan.kill, self._seen
        indexes = seen.index.get(run, [])
        have = len(indexes)
        for seq, index in out.acks:
            if seq >= have:
                out.violations.append(
                    f"{where}: acknowledged record run {run} seq {seq} is missing "
                    f"(the archive holds {have} records of run {run})"
                )
                return
            if indexes[seq] != index:
                out.violations.append(
                    f"{where}: acknowledged run {run} seq {seq} at index {index}, found "
                    f"at {indexes[seq]}"
                )
                return
        acked = out.acks[-1][0] + 1 if out.acks else 0
        out.unacked_committed = have - acked

    def _check_checkpoints(self, where: str, out: Outcome, report: Any, stored: int) -> None:
        n = report.records
        witnessed = int(report.witness["newest_size"]) if report.witness else 0
        for what, size in (("stored", stored), ("witnessed", witnessed)):
            if size > n:
                out.violations.append(
                    f"{where}: {what} checkpoint of size {size} covers uncommitted records "
                    f"(the tree holds {n})"
                )
        for size in out.published:
            if size > n:
                out.violations.append(
                    f"{where}: checkpoint of size {size} published to on_checkpoint covers "
                    f"uncommitted records (the tree holds {n})"
                )
                break


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.strip())
    lines.put(None)


def _take(line: str, out: Outcome) -> None:
    words = line.split()
    if words[:1] == ["ack"] and len(words) == 3:
        out.acks.append((int(words[1]), int(words[2])))
    elif words[:1] == ["cp"] and len(words) == 2:
        out.published.append(int(words[1]))


def available_optional_points() -> tuple[str, ...]:
    """The optional kill points whose module imports and whose writer step is written."""
    return tuple(
        point
        for point, module in OPTIONAL_POINTS.items()
        if STEP_WRITTEN[point] and importlib.util.find_spec(module) is not None
    )


def run_harness(
    work: Path,
    kills: int,
    seed: int,
    on_kill: Callable[[Outcome], None] | None = None,
    points: tuple[str, ...] | None = None,
) -> tuple[list[Outcome], dict[str, Any]]:
    """``kills`` kills of the writer on one archive in ``work``, then a clean close.

    Returns every outcome (the close last) and the summary.
    """
    h = Harness(work, seed, points)
    outcomes: list[Outcome] = []
    t0 = time.monotonic()
    for kill in range(kills):
        out = h.kill_once(h.plan(kill))
        outcomes.append(out)
        if on_kill is not None:
            on_kill(out)
    outcomes.append(h.finish())
    return outcomes, summarize(outcomes, seed, h.points, time.monotonic() - t0)


def summarize(
    outcomes: list[Outcome], seed: int, points: tuple[str, ...], elapsed: float
) -> dict[str, Any]:
    """Counts over the kills: where they landed, what survived, every violation."""
    kills = [o for o in outcomes if o.killed_at != "close"]
    landed: dict[str, int] = {}
    for o in kills:
        landed[o.killed_at] = landed.get(o.killed_at, 0) + 1
    last = outcomes[-1]
    acked = sum(o.acks[-1][0] + 1 for o in kills if o.acks)
    verify = [o.verify_s for o in outcomes]
    return {
        "seed": seed,
        "kills": len(kills),
        "points": list(points),
        "killed_at": dict(sorted(landed.items())),
        "records": last.records,
        "segments": last.segments,
        "segments_removed_by_retention": last.removed,
        "segments_held": last.held,
        "retention_records": last.others,
        "acknowledged": acked,
        "committed_unacknowledged": sum(o.unacked_committed for o in kills),
        "published_checkpoints": sum(len(o.published) for o in kills),
        "checkpoint_size": last.checkpoint_size,
        "witness_lines": last.witness_lines,
        "torn_witness_lines": last.torn_witness,
        "verify_s_mean": round(sum(verify) / len(verify), 3) if verify else 0.0,
        "verify_s_max": max(verify, default=0.0),
        "elapsed_s": round(elapsed, 1),
        "violations": [v for o in outcomes for v in o.violations],
    }


# --------------------------------------------------------------------------- export phase

#: Kill points inside ``kontur archive export``, in step order (module docstring), and the
#: state each must leave: (an ``export`` record naming ``--out`` committed, a file at --out).
EXPORT_POINTS: dict[str, tuple[bool, bool]] = {
    "export.zip": (False, False),
    "export.written": (False, False),
    "export.appended": (False, False),
    "export.flushed": (True, False),
    "export.placed": (True, True),
    "export.sign": (True, True),
}
#: ``export.zip`` pauses after the n-th zip member, n = 1..this (a bundle has 12 or more).
EXPORT_ZIP_MEMBERS = 6
#: A pause point not reached this long after ready is a violation (``fallback``).
EXPORT_FALLBACK_S = 60.0
#: Timed kills land in 0..this x the calibrated export time (ready to exit) after ready.
EXPORT_TIMED_SPAN = 1.0
SHARED_DATA = REPO.parent / "shared" / "data"
DEMO_VIDEO = SHARED_DATA / "video" / "pets09_s2l1_480x360.avi"
DEMO_MODEL = SHARED_DATA / "models" / "yolox_nano.onnx"


def kontur_exe() -> str:
    """The installed ``kontur`` command next to this interpreter."""
    return str(Path(sys.executable).with_name("kontur"))


def _install_export_kill_point(point: str, nth: int) -> None:
    """Wrap the export's steps so that the export process pauses at ``point`` (the parent
    kills it there), and acknowledges its ``export`` record once the flush holding it
    returned. Only ever done inside the export process."""
    import zipfile

    import kontur.archive.archive as am
    import kontur.evidence.export as ex

    state = {"members": 0, "index": -1, "flushed": False}

    def reach(name: str) -> None:
        if name == point:
            _emit("pause", name)
            while True:  # until SIGKILL
                time.sleep(60)

    writestr, write_zip, sign = zipfile.ZipFile.writestr, ex._write_zip, am.sign_checkpoint
    append, flush, close = am.Archive.append, am.Archive.flush, am.Archive.close

    def _writestr(self: Any, info: Any, data: Any, *args: Any, **kw: Any) -> None:
        writestr(self, info, data, *args, **kw)
        state["members"] += 1
        if state["members"] == nth:
            reach("export.zip")

    def _write_zip(*args: Any) -> Path:
        tmp = write_zip(*args)
        reach("export.written")
        return tmp

    def _append(self: Any, kind: str, payload: Any) -> Any:
        rec = append(self, kind, payload)
        if kind == "export":
            state["index"] = rec.index
            reach("export.appended")
        return rec

    def _flush(self: Any) -> None:
        flush(self)
        if state["index"] >= 0 and not state["flushed"]:
            state["flushed"] = True
            _emit("ack", state["index"])
            reach("export.flushed")

    def _close(self: Any) -> None:
        if state["flushed"] and not self.readonly:
            reach("export.placed")
        close(self)

    def _sign(cp: Any, key: Any) -> str:
        reach("export.sign")
        return sign(cp, key)

    zipfile.ZipFile.writestr = _writestr  # type: ignore[method-assign,assignment]
    ex._write_zip = _write_zip  # type: ignore[assignment]
    am.Archive.append = _append  # type: ignore[method-assign]
    am.Archive.flush = _flush  # type: ignore[method-assign]
    am.Archive.close = _close  # type: ignore[method-assign]
    am.sign_checkpoint = _sign


def export_writer(cfg: dict[str, Any]) -> None:
    """The export process: ``kontur archive export`` through the real CLI entry point, with
    the wrappers installed (they pause at no point for ``timed`` or ``none``, and ack)."""
    import kontur.cli
    import kontur.evidence.export  # imported before ready, so timed kills land in its work

    _install_export_kill_point(cfg["point"], cfg["nth"])
    sys.argv = [
        "kontur", "archive", "export", cfg["data"], "--camera", cfg["camera"],
        "--from", repr(cfg["start"]), "--to", repr(cfg["end"]), "--out", cfg["out"],
        "--by", "archive_kill",
    ]  # fmt: skip
    _emit("ready", 0)
    kontur.cli.main()


@dataclass
class ExportKill:
    """One export kill: where (an :data:`EXPORT_POINTS` key, ``timed`` or ``none``)."""

    kill: int
    point: str
    nth: int = 1  # export.zip: pause after this many zip members
    delay_s: float = 0.0  # timed: after ready


@dataclass
class ExportOutcome:
    """What one export kill saw, the state it left, and the re-run after it."""

    plan: ExportKill
    bundle: str  # the --out file name (in the output directory)
    killed_at: str = ""  # the point it paused at, "timed", "completed" or "fallback"
    acked: int | None = None  # the export record's index, once its flush returned
    record: bool = False  # a committed export record names --out
    placed: bool = False  # a file at --out
    new_records: int = 0
    temps: int = 0  # temporary bundles in the output directory (every attempt so far)
    left_temp: bool = False  # this attempt left one
    export_s: float = 0.0  # ready to exit or kill
    rerun: str = ""  # "exported" (the export re-run), "in place" (nothing to redo)
    verify_export_rc: int | None = None
    violations: list[str] = field(default_factory=list)


class ExportHarness:
    """Kills ``kontur archive export`` on one real archive, grown across the kills."""

    def __init__(self, data: Path, out_dir: Path, camera: str, span: tuple[float, float]) -> None:
        from kontur.archive import Archive, verify_archive

        self.data, self.out_dir, self.camera, self.span = data, out_dir, camera, span
        out_dir.mkdir(parents=True, exist_ok=True)
        report = verify_archive(data)
        if not report.ok:
            raise RuntimeError(f"archive_kill: {data}: expected a clean archive, got {report}")
        self._records, self._head = report.records, report.head
        with contextlib.closing(Archive.open_readonly(data)) as arc:
            self.key = str(arc.verifier_key)
        self.err_path = out_dir.parent / "export.err"

    def plan(self, kill: int, rng: random.Random, calibrated_s: float) -> ExportKill:
        """Even kills timed, odd kills rotate through :data:`EXPORT_POINTS`."""
        points = tuple(EXPORT_POINTS)
        point = "timed" if kill % 2 == 0 else points[(kill // 2) % len(points)]
        return ExportKill(
            kill=kill,
            point=point,
            nth=rng.randint(1, EXPORT_ZIP_MEMBERS),
            delay_s=round(rng.uniform(0.0, EXPORT_TIMED_SPAN * calibrated_s), 4),
        )

    def calibrate(self) -> tuple[float, ExportOutcome]:
        """One clean export (no kill): its time from ready to exit, checked like a kill."""
        out = self.kill_once(ExportKill(kill=-1, point="none"), "calibration.zip")
        return out.export_s, out

    def kill_once(self, plan: ExportKill, bundle: str | None = None) -> ExportOutcome:
        """Run one export, SIGKILL it as planned, check the archive and the output dir."""
        out = ExportOutcome(plan, bundle or f"bundle-{plan.kill}.zip")
        cfg = {
            "data": str(self.data), "camera": self.camera, "start": self.span[0],
            "end": self.span[1], "out": str(self.out_dir / out.bundle), "point": plan.point,
            "nth": plan.nth,
        }  # fmt: skip
        before = set(self._temps())
        self._run_export(cfg, plan, out)
        self.check(out, f"export kill {plan.kill} ({out.killed_at})")
        out.left_temp = bool(set(self._temps()) - before)
        return out

    # ----------------------------------------------------------------- the export process

    def _run_export(self, cfg: dict[str, Any], plan: ExportKill, out: ExportOutcome) -> None:
        with self.err_path.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--_export-child", json.dumps(cfg)],
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
            lines: queue.Queue[str | None] = queue.Queue()
            assert proc.stdout is not None
            pump = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
            pump.start()
            try:
                t0 = self._wait_export(plan, out, lines)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                out.export_s = round(time.monotonic() - t0, 3) if t0 else 0.0
                pump.join()
            while (line := lines.get()) is not None:  # an ack written just before the kill
                _take_export(line, out)
        self._judge_exit(plan, out, proc.returncode)

    def _wait_export(
        self, plan: ExportKill, out: ExportOutcome, lines: queue.Queue[str | None]
    ) -> float:
        """Read lines until the kill is due or the export exits; the monotonic time of ready."""
        deadline, ready = time.monotonic() + READY_TIMEOUT_S, 0.0
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                out.killed_at = "timed" if plan.point == "timed" else "fallback"
                if not ready:
                    out.killed_at = "not ready"
                return ready
            if line is None:
                lines.put(None)
                out.killed_at = "completed"
                return ready
            if line.startswith("ready"):
                ready = time.monotonic()
                wait = plan.delay_s if plan.point == "timed" else EXPORT_FALLBACK_S
                deadline = ready + wait
            elif line.startswith("pause"):
                out.killed_at = line.split()[1]
                return ready
            else:
                _take_export(line, out)

    def _judge_exit(self, plan: ExportKill, out: ExportOutcome, rc: int) -> None:
        where = f"export kill {plan.kill} ({out.killed_at})"
        tail = self.err_path.read_text()[-1500:].strip() or "no stderr"
        if out.killed_at == "completed" and rc != 0:
            out.violations.append(f"{where}: export exited with {rc}: {tail}")
        elif out.killed_at == "completed" and plan.point in EXPORT_POINTS:
            out.violations.append(f"{where}: expected a pause at {plan.point}, the export ended")
        elif out.killed_at in ("fallback", "not ready"):
            out.violations.append(f"{where}: {plan.point} not reached: {tail}")

    # ----------------------------------------------------------------- the checks

    def check(self, out: ExportOutcome, where: str) -> None:
        """The export phase's checks (module docstring); a reason per violation in ``out``."""
        from kontur.archive import Archive, verify_archive

        report = verify_archive(self.data)
        if not report.ok:
            out.violations.append(f"{where}: verify failed: {report.first_bad}")
            return
        if report.records < self._records:
            out.violations.append(
                f"{where}: expected at least the {self._records} records committed before, got "
                f"{report.records} (committed records lost)"
            )
            return
        with contextlib.closing(Archive.open_readonly(self.data)) as arc:
            if arc.root_at(self._records).hex() != self._head:
                out.violations.append(f"{where}: root at size {self._records} changed")
            new = list(arc.iter_records(self._records))
            exports = {r.index: r for r in arc.iter_records(kind="export")}
            stored = max((size for size, _, _ in arc.checkpoints()), default=0)
        if stored > report.records:
            out.violations.append(
                f"{where}: stored checkpoint {stored} covers uncommitted records "
                f"(the tree holds {report.records})"
            )
        self._check_new(where, out, new)
        self._check_dir(where, out, exports)
        self._check_state(where, out)
        out.new_records = report.records - self._records
        self._records, self._head = report.records, report.head

    def _check_new(self, where: str, out: ExportOutcome, new: list[Any]) -> None:
        kinds = [r.kind for r in new]
        if kinds not in ([], ["export"]):
            out.violations.append(f"{where}: expected at most one export record, got {kinds}")
        out.record = any(r.kind == "export" and r.payload.get("bundle") == out.bundle for r in new)
        if out.acked is not None and not any(r.index == out.acked for r in new):
            out.violations.append(
                f"{where}: acknowledged export record {out.acked} is missing "
                f"(the kill added {[r.index for r in new]})"
            )

    def _check_dir(self, where: str, out: ExportOutcome, exports: dict[int, Any]) -> None:
        """Every file at a bundle's name is named, with its SHA-256, by an export record and
        its manifest names that record; everything else is a temporary bundle."""
        names = {r.payload.get("bundle") for r in exports.values()} | {out.bundle}
        out.temps = 0
        for path in sorted(self.out_dir.iterdir()):
            if _temp_of(path.name) in names:
                out.temps += 1
                continue
            if path.name not in names:
                out.violations.append(f"{where}: stray file {path.name} in the output directory")
                continue
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            logged = [
                i
                for i, r in exports.items()
                if r.payload.get("bundle") == path.name and r.payload.get("bundle_sha256") == sha
            ]
            if not logged:
                out.violations.append(
                    f"{where}: bundle {path.name} (sha256 {sha[:16]}...) is named by no "
                    "committed export record"
                )
                continue
            claimed = _manifest_record(path)
            if claimed not in logged:
                out.violations.append(
                    f"{where}: bundle {path.name}: manifest names export record {claimed}, "
                    f"the archive logs it as {logged}"
                )
        out.placed = (self.out_dir / out.bundle).exists()

    def _check_state(self, where: str, out: ExportOutcome) -> None:
        state = (out.record, out.placed)
        point = out.killed_at
        if point in EXPORT_POINTS and state != EXPORT_POINTS[point]:
            out.violations.append(
                f"{where}: expected (record, bundle) {EXPORT_POINTS[point]}, got {state}"
            )
        if point == "completed" and state != (True, True):
            out.violations.append(f"{where}: a finished export left (record, bundle) {state}")

    # ----------------------------------------------------------------- the re-run

    def recover(self, out: ExportOutcome) -> None:
        """Re-run the export with the same ``--out`` (unless its bundle is in place), then
        ``verify-export --pin-key`` the bundle; a violation in ``out`` for each failure."""
        where = f"export kill {out.plan.kill} ({out.killed_at}), re-run"
        target = self.out_dir / out.bundle
        out.rerun = "in place" if target.exists() else "exported"
        if out.rerun == "exported" and not self._rerun(where, out, target):
            return
        v = subprocess.run(
            [kontur_exe(), "archive", "verify-export", str(target), "--pin-key", self.key],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        out.verify_export_rc = v.returncode
        if v.returncode != 0:
            why = v.stdout[-800:]
            out.violations.append(f"{where}: verify-export exited {v.returncode}: {why}")

    def _rerun(self, where: str, out: ExportOutcome, target: Path) -> bool:
        """``kontur archive export`` again: it must add one record and the bundle, and no
        temporary bundle (removing ones a kill left would be fine)."""
        again = ExportOutcome(out.plan, out.bundle, killed_at="re-run")
        r = subprocess.run(
            [
                kontur_exe(), "archive", "export", str(self.data), "--camera", self.camera,
                "--from", repr(self.span[0]), "--to", repr(self.span[1]), "--out",
                str(target), "--by", "archive_kill", "--json", "-",
            ],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if r.returncode != 0:
            out.violations.append(f"{where}: export exited {r.returncode}: {r.stderr[-800:]}")
            return False
        again.acked = int(json.loads(r.stdout)["export_record"])
        self.check(again, where)
        out.violations += again.violations
        got = (again.new_records, again.record, again.placed)
        if got != (1, True, True) or again.temps > out.temps:
            out.violations.append(
                f"{where}: expected one new export record, the bundle, at most {out.temps} "
                f"temporary bundles; got (records, record, bundle) {got}, {again.temps} temps"
            )
        out.temps = again.temps
        return not again.violations

    def _temps(self) -> list[str]:
        return [p.name for p in self.out_dir.iterdir() if _temp_of(p.name) is not None]


def _temp_of(name: str) -> str | None:
    """The bundle name a temporary bundle ``.<name>.<random>.tmp`` belongs to, else None."""
    if not (name.startswith(".") and name.endswith(".tmp")):
        return None
    base, _, rand = name[1:-4].rpartition(".")
    return base if base and rand else None


def _manifest_record(path: Path) -> int | None:
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            return int(json.loads(zf.read("manifest.json"))["created"]["export_record"])
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError):
        return None


def _take_export(line: str, out: ExportOutcome) -> None:
    words = line.split()
    if words[:1] == ["ack"] and len(words) == 2:
        out.acked = int(words[1])


def whole_stream(data: Path) -> tuple[str, tuple[float, float]]:
    """The camera of the first segment record and the span of every record so far."""
    from kontur.archive import Archive

    with contextlib.closing(Archive.open_readonly(data)) as arc:
        records = list(arc.iter_records())
    camera = next(str(r.payload["camera_id"]) for r in records if r.kind == "segment")
    return camera, (records[0].at, records[-1].at)


def demo_archive(
    data: Path, source: Path = DEMO_VIDEO, model: Path = DEMO_MODEL
) -> tuple[float, str]:
    """``kontur demo`` (non-realtime, signed on the fly) of ``source`` into ``data``, unless
    an archive is there already (``--keep``); (seconds, "") or (0, why it cannot)."""
    for need in (source, model):
        if not need.exists():
            return 0.0, f"needs {need} (../shared/data is absent)"
    if (data / "archive.sqlite").exists():
        return 0.0, ""
    t0 = time.monotonic()
    r = subprocess.run(
        [kontur_exe(), "demo", "--source", str(source), "--model", str(model), "--data-dir",
         str(data)],
        capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    if r.returncode != 0:
        raise RuntimeError(f"archive_kill: kontur demo exited {r.returncode}: {r.stderr[-1500:]}")
    return time.monotonic() - t0, ""


def run_export_phase(
    work: Path,
    kills: int,
    seed: int,
    on_kill: Callable[[ExportOutcome], None] | None = None,
) -> tuple[list[ExportOutcome], dict[str, Any]]:
    """The export phase: a demo archive in ``work/export``, a calibration export, then
    ``kills`` export kills, each followed by its re-run. Returns outcomes and the summary
    (``{"skipped": why}`` without ../shared/data)."""
    demo_s, why = demo_archive(work / "export" / "data")
    if why:
        return [], {"skipped": why}
    camera, span = whole_stream(work / "export" / "data")
    h = ExportHarness(work / "export" / "data", work / "export" / "out", camera, span)
    t0 = time.monotonic()
    calibrated, first = h.calibrate()
    outcomes = [first]
    rng = random.Random(seed)
    for kill in range(kills):
        out = h.kill_once(h.plan(kill, rng, calibrated))
        if not out.violations:
            h.recover(out)
        outcomes.append(out)
        if on_kill is not None:
            on_kill(out)
    return outcomes, summarize_export(outcomes, seed, demo_s, calibrated, time.monotonic() - t0)


def summarize_export(
    outcomes: list[ExportOutcome], seed: int, demo_s: float, calibrated: float, elapsed: float
) -> dict[str, Any]:
    """Counts over the export kills: where they landed, what they left, every violation."""
    kills = [o for o in outcomes if o.plan.point != "none"]
    landed: dict[str, int] = {}
    states: dict[str, int] = {}
    for o in kills:
        landed[o.killed_at] = landed.get(o.killed_at, 0) + 1
        key = f"record={o.record} bundle={o.placed}"
        states[key] = states.get(key, 0) + 1
    return {
        "seed": seed,
        "kills": len(kills),
        "points": list(EXPORT_POINTS),
        "killed_at": dict(sorted(landed.items())),
        "left_after_kill": dict(sorted(states.items())),
        "demo_s": round(demo_s, 1),
        "calibrated_export_s": calibrated,
        "reruns_exported": sum(o.rerun == "exported" for o in kills),
        "verify_export_passed": sum(o.verify_export_rc == 0 for o in outcomes),
        "temporary_bundles_left": outcomes[-1].temps if outcomes else 0,
        "elapsed_s": round(elapsed, 1),
        "violations": [v for o in outcomes for v in o.violations],
    }


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=120)
    ap.add_argument("--seed", type=int, default=None, help="default: random, printed")
    ap.add_argument("--keep", type=Path, default=None, help="grow the archive here, keep it")
    ap.add_argument("--json", dest="json_out", default=None, help="PATH, or - for stdout")
    ap.add_argument(
        "--with-export",
        action="store_true",
        help="then kill `kontur archive export` on a demo archive (needs ../shared/data)",
    )
    ap.add_argument("--export-kills", type=int, default=24, help="kills in the export phase")
    ap.add_argument("--_child", dest="child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_export-child", dest="export_child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        writer(json.loads(args.child))
        return 0
    if args.export_child is not None:
        export_writer(json.loads(args.export_child))
        return 0
    if args.kills < (0 if args.with_export else 1) or args.export_kills < 1:
        print(
            "archive_kill: --kills must be at least 1 (0 with --with-export), --export-kills "
            "at least 1",
            file=sys.stderr,
        )
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().getrandbits(32)
    work = args.keep if args.keep is not None else Path(tempfile.mkdtemp(prefix="kontur-kill-"))
    try:
        return _measure(args, seed, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def _progress(console: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    )


def _measure(args: argparse.Namespace, seed: int, work: Path) -> int:
    from rich.console import Console

    console = Console(stderr=args.json_out == "-")
    info = machine(sqlite=sqlite3.sqlite_version)
    replay = f"--seed {seed} --kills {args.kills}"
    if args.with_export:
        replay += f" --with-export --export-kills {args.export_kills}"
    console.print(f"archive_kill: seed {seed} (replay: {replay})")
    outcomes: list[Outcome] = []
    summary: dict[str, Any] = {"kills": 0, "violations": []}
    if args.kills:
        outcomes, summary = _writer_phase(console, work, args.kills, seed)
        _print_summary(console, summary)
    exports: list[ExportOutcome] = []
    if args.with_export:
        exports, summary["export"] = _export_phase(console, work, args.export_kills, seed)
        _print_export_summary(console, summary["export"])
    with contextlib.suppress(OSError):
        info["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    if args.json_out is not None:
        _write_json(args, console, info, summary, outcomes, exports)
    bad = summary["violations"] + summary.get("export", {}).get("violations", [])
    return 1 if bad else 0


def _writer_phase(
    console: Any, work: Path, kills: int, seed: int
) -> tuple[list[Outcome], dict[str, Any]]:
    bad = 0
    with _progress(console) as progress:
        task = progress.add_task("kills", total=kills, status="")

        def on_kill(o: Outcome) -> None:
            nonlocal bad
            bad += len(o.violations)
            for v in o.violations:
                progress.console.print(f"[red]violation[/] {v}")
            status = f"{o.killed_at:<15} records {o.records:>6}  violations {bad}"
            progress.update(task, advance=1, status=status)

        return run_harness(work, kills, seed, on_kill)


def _export_phase(
    console: Any, work: Path, kills: int, seed: int
) -> tuple[list[ExportOutcome], dict[str, Any]]:
    bad = 0
    console.print("export phase: kontur demo on PETS09 (once), a calibration export, then kills")
    with _progress(console) as progress:
        task = progress.add_task("export kills", total=kills, status="")

        def on_kill(o: ExportOutcome) -> None:
            nonlocal bad
            bad += len(o.violations)
            for v in o.violations:
                progress.console.print(f"[red]violation[/] {v}")
            status = f"{o.killed_at:<16} temps {o.temps:>3}  violations {bad}"
            progress.update(task, advance=1, status=status)

        outcomes, summary = run_export_phase(work, kills, seed, on_kill)
    if "skipped" in summary:
        console.print(f"export phase skipped: {summary['skipped']}")
    return outcomes, summary


def _write_json(
    args: argparse.Namespace,
    console: Any,
    info: dict[str, Any],
    summary: dict[str, Any],
    outcomes: list[Outcome],
    exports: list[ExportOutcome],
) -> None:
    doc: dict[str, Any] = {
        "benchmark": "archive_kill",
        "command": "python benchmarks/archive_kill.py " + " ".join(sys.argv[1:]),
        "machine": info,
        "config": {
            "batch_sizes": BATCH_SIZES,
            "batch_interval_s": BATCH_INTERVAL_S,
            "checkpoint_every_records": CHECKPOINT_EVERY_RECORDS,
            "checkpoint_every_s": CHECKPOINT_EVERY_S,
            "timed_delay_s": TIMED_DELAY_S,
            "fallback_s": FALLBACK_S,
        },
        "summary": summary,
        "kills": [_outcome_json(o) for o in outcomes],
    }
    if args.with_export:
        doc["config"]["export"] = {
            "points": EXPORT_POINTS,
            "zip_members": EXPORT_ZIP_MEMBERS,
            "timed_span": EXPORT_TIMED_SPAN,
            "fallback_s": EXPORT_FALLBACK_S,
            "video": str(DEMO_VIDEO),
            "model": str(DEMO_MODEL),
        }
        doc["export_kills"] = [asdict(o) for o in exports]
    text = json.dumps(doc, indent=2) + "\n"
    if args.json_out == "-":
        sys.stdout.write(text)
        return
    path = Path(args.json_out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    console.print(f"wrote {path}")


def _outcome_json(o: Outcome) -> dict[str, Any]:
    d = asdict(o)
    d["acked"] = o.acks[-1][0] + 1 if o.acks else 0
    d["published"] = len(o.published)
    del d["acks"]
    return d


def _print_summary(console: Any, s: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"archive kill -9 harness, seed {s['seed']}", width=80)
    table.add_column("figure")
    table.add_column("value", justify="right")
    landed = ", ".join(f"{k} {v}" for k, v in s["killed_at"].items())
    rows = [
        ("kills (SIGKILL)", str(s["kills"])),
        ("records in the archive at the end", str(s["records"])),
        ("  of them segments", str(s["segments"])),
        ("  segment files removed by retention", str(s["segments_removed_by_retention"])),
        ("  segments under the legal hold (kept)", str(s["segments_held"])),
        ("acknowledged records (all present)", str(s["acknowledged"])),
        ("committed, not yet acknowledged", str(s["committed_unacknowledged"])),
        ("checkpoints published (on_checkpoint)", str(s["published_checkpoints"])),
        (
            "witness lines / torn lines (reported)",
            f"{s['witness_lines']} / {s['torn_witness_lines']}",
        ),
        ("verify after a kill, mean / max s", f"{s['verify_s_mean']} / {s['verify_s_max']}"),
        ("elapsed s", str(s["elapsed_s"])),
        ("violations", f"[{'red' if s['violations'] else 'green'}]{len(s['violations'])}[/]"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    console.print(f"killed at: {landed}")


def _print_export_summary(console: Any, s: dict[str, Any]) -> None:
    from rich.table import Table

    if "skipped" in s:
        return
    table = Table(title=f"kontur archive export kill -9, seed {s['seed']}", width=80)
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("kills (SIGKILL) of the export process", str(s["kills"])),
        ("kontur demo (the archive, once), s", str(s["demo_s"])),
        ("clean export, ready to exit, s", str(s["calibrated_export_s"])),
        ("re-runs that exported / verify-export passed", f"{s['reruns_exported']} / "
         f"{s['verify_export_passed']}"),
        ("temporary bundles left in the output dir", str(s["temporary_bundles_left"])),
        ("elapsed s", str(s["elapsed_s"])),
        ("violations", f"[{'red' if s['violations'] else 'green'}]{len(s['violations'])}[/]"),
    ]  # fmt: skip
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    console.print("killed at: " + ", ".join(f"{k} {v}" for k, v in s["killed_at"].items()))
    console.print("left: " + ", ".join(f"{k}: {v}" for k, v in s["left_after_kill"].items()))


if __name__ == "__main__":
    sys.exit(main())
