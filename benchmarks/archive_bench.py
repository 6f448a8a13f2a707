"""Archive cost: appends, proofs, verify and bytes per leaf, each against a baseline, one run.

Run from the repository root (after the README's install)::

    python benchmarks/archive_bench.py [--leaves 1000000] [--appends 20000] [--repeats 3]
                                       [--proofs 2000] [--export-minutes 10] [--export-only]
                                       [--keep DIR] [--json PATH|-]
    python benchmarks/archive_bench.py --leaves 100000 --appends 5000 --export-minutes 0
                                                                        # quick, ~10 s

Everything is measured in the same run, on the same machine state, and given as a ratio to a
baseline measured in that run:

- **appends per second** -- ``Archive.append`` of ``--appends`` records (``detections``
  payloads of ~150 bytes of canonical JSON), ``batch_size`` 64 (commits every 64 records;
  ``batch_interval_s`` 1 h so only the size commits), default checkpoint cadence (one signed
  checkpoint per 1000 records), then ``flush``; against **raw SQLite inserts of the same
  rows**: one ``INSERT (idx, kind, at, payload)`` per record into a plain table, the payload
  serialised by ``json.dumps`` (sorted keys, compact), ``BEGIN`` / ``COMMIT`` every 64 rows,
  in a database opened the archive's way (WAL, ``synchronous=FULL``). Each repeat runs both,
  alternating which goes first, each in a fresh directory; medians. Goal >= 0.5x.
- **inclusion proof at ``--leaves`` leaves** -- the archive is built once with
  ``batch_size`` 10 000 (same payload shape), then ``inclusion_proof(i, size)`` +
  ``verify_inclusion`` for ``--proofs`` random indexes through the writer's handle
  (``Archive.open``), mean and p99; against **one SQLite primary-key look-up**
  (``SELECT leaf FROM records WHERE idx = ?``) on the same file, same indexes. The same for
  a read-only handle (``Archive.open_readonly``), which reads the tree size from the
  database on every call (fewer samples). Goal: mean < 1 ms at 10^6 leaves.
- **full verify** -- ``verify_archive`` of that archive (every leaf, node and checkpoint);
  against **SHA-256 of the same bytes**: ``hashlib.sha256`` of each record's payload, the
  payloads already in memory (also shown: reading them from SQLite and hashing, and one
  SHA-256 over all of them concatenated).
- **bytes per leaf** -- ``archive.sqlite`` size / records after ``close`` (the WAL merged
  and removed), against the raw payload bytes per record and against the raw table of the
  same rows (built with ``executemany``, same settings, WAL truncated).
- **export** -- ``export_bundle`` (what ``kontur archive export`` runs) of
  ``--export-minutes`` (default 10) of one camera, the whole stream, and ``verify_file``
  (``kontur archive verify-export``) of the bundle, in-process, ``--repeats`` times
  (medians); against **copying the same segment bytes**: read each segment file of the
  bundle's GOPs, SHA-256 it, write it to one file, fsync; and for verify-export against
  **reading the bundle and SHA-256 of it**. The camera: PETS09 (../shared/data) looped to
  that length at its 10 fps by :func:`looped_clip` (libx264, 2-s GOPs, no B-frames, the
  frame number burnt in so no GOP repeats), then ``kontur demo`` of it once (non-realtime,
  YOLOX-nano, signed on the fly by the demo camera): real signed segments, verdicts,
  detections and decisions. Also one run of each CLI command (interpreter start included).
  Skipped with the reason without ../shared/data; ``--export-minutes 0`` skips it;
  ``--export-only`` runs only it. ``--keep DIR`` keeps the clip and the archive for reuse.

Page cache is warm (the archive was just written); the machine and its load are recorded.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import archive_kill

BATCH = 64
BUILD_BATCH = 10_000
RAW_SCHEMA = "CREATE TABLE records (idx INTEGER PRIMARY KEY, kind TEXT, at REAL, payload BLOB)"
RAW_INSERT = "INSERT INTO records (idx, kind, at, payload) VALUES (?, ?, ?, ?)"
READONLY_PROOFS = 100
GOALS = (
    ("appends_ratio", "min", 0.5, "appends/s >= 0.5x raw SQLite"),
    ("inclusion_mean_ms", "max", 1.0, "inclusion proof + verify < 1 ms"),
)


def payload(i: int) -> dict[str, Any]:
    """A ``detections`` record as the supervisor writes one (~150 bytes canonical)."""
    return {
        "camera_id": f"cam-{i % 4 + 1}",
        "frame_index": i,
        "gop_index": i // 250,
        "track_ids": [i % 97, i % 89, i % 83],
        "boxes": [[i % 480, i % 360, i % 480 + 40, i % 360 + 90]],
        "verdict": "AUTHENTIC",
    }


def _dumps(p: dict[str, Any]) -> bytes:
    return json.dumps(p, sort_keys=True, separators=(",", ":")).encode()


def _raw_connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(RAW_SCHEMA)
    return conn


# --------------------------------------------------------------------------- appends


def append_archive(d: Path, n: int) -> float:
    """Seconds for ``n`` ``Archive.append`` calls and the final flush (batch_size 64)."""
    from kontur.archive import Archive

    rows = [payload(i) for i in range(n)]
    with Archive.open(d, batch_size=BATCH, batch_interval_s=3600.0) as arc:
        t0 = time.perf_counter()
        for p in rows:
            arc.append("detections", p)
        arc.flush()
        return time.perf_counter() - t0


def append_raw(d: Path, n: int) -> float:
    """Seconds for ``n`` raw inserts of the same rows, committed every 64 (the baseline)."""
    d.mkdir(parents=True)
    rows = [payload(i) for i in range(n)]
    conn = _raw_connect(d / "raw.sqlite")
    try:
        t0 = time.perf_counter()
        for i, p in enumerate(rows):
            if i % BATCH == 0:
                conn.execute("BEGIN IMMEDIATE")
            conn.execute(RAW_INSERT, (i, "detections", time.time(), _dumps(p)))
            if i % BATCH == BATCH - 1:
                conn.execute("COMMIT")
        if conn.in_transaction:
            conn.execute("COMMIT")
        return time.perf_counter() - t0
    finally:
        conn.close()


def bench_appends(tmp: Path, n: int, repeats: int, tick: Callable[[], None]) -> dict[str, Any]:
    """Interleaved repeats of archive vs raw appends; medians in records per second."""
    arc_s: list[float] = []
    raw_s: list[float] = []
    for r in range(repeats):
        order = [("archive", append_archive), ("raw", append_raw)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            d = tmp / f"appends-{r}-{name}"
            (arc_s if name == "archive" else raw_s).append(fn(d, n))
            shutil.rmtree(d)
            tick()
    arc_rate, raw_rate = n / statistics.median(arc_s), n / statistics.median(raw_s)
    return {
        "records": n,
        "batch_size": BATCH,
        "archive_per_s": round(arc_rate),
        "raw_sqlite_per_s": round(raw_rate),
        "ratio": round(arc_rate / raw_rate, 3),
        "archive_s": [round(x, 3) for x in arc_s],
        "raw_sqlite_s": [round(x, 3) for x in raw_s],
    }


# --------------------------------------------------------------------------- the big archive


def build(d: Path, n: int, tick: Callable[[int], None]) -> float:
    """Build an ``n``-leaf archive (batch_size 10 000) and close it; seconds."""
    from kontur.archive import Archive

    t0 = time.perf_counter()
    with Archive.open(d, batch_size=BUILD_BATCH, batch_interval_s=3600.0) as arc:
        for i in range(n):
            arc.append("detections", payload(i))
            if i % BUILD_BATCH == BUILD_BATCH - 1:
                tick(BUILD_BATCH)
    tick(n % BUILD_BATCH)
    return time.perf_counter() - t0


def build_raw(d: Path, src: Path) -> int:
    """The same rows in a plain table (executemany, one transaction), WAL truncated; bytes."""
    d.mkdir(parents=True)
    conn = _raw_connect(d / "raw.sqlite")
    try:
        with contextlib.closing(sqlite3.connect(f"{src.as_uri()}?mode=ro", uri=True)) as s:
            rows = s.execute("SELECT idx, kind, at, payload FROM records ORDER BY idx")
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(RAW_INSERT, rows)
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return os.path.getsize(d / "raw.sqlite")


def _dist_ms(ns: list[int]) -> dict[str, float]:
    xs = sorted(ns)
    p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
    return {
        "mean_ms": round(statistics.fmean(xs) / 1e6, 4),
        "p99_ms": round(p99 / 1e6, 4),
        "samples": len(xs),
    }


def _prove(arc: Any, leaves: dict[int, bytes], size: int, root: bytes, idx: list[int]) -> list:
    from kontur.archive import verify_inclusion

    out = []
    for i in idx:
        t0 = time.perf_counter_ns()
        proof = arc.inclusion_proof(i, size)
        verify_inclusion(leaves[i], i, size, proof, root)
        out.append(time.perf_counter_ns() - t0)
    return out


def bench_proofs(d: Path, proofs: int, seed: int) -> dict[str, Any]:
    """Inclusion proof + verify (writer and read-only handles) vs one primary-key look-up."""
    from kontur.archive import Archive

    db = d / "archive.sqlite"
    rng = random.Random(seed)
    with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
        size = conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        idx = [rng.randrange(size) for _ in range(proofs)]
        leaves = {
            i: conn.execute("SELECT leaf FROM records WHERE idx = ?", (i,)).fetchone()[0]
            for i in idx
        }
        pk = []
        for i in idx:
            t0 = time.perf_counter_ns()
            conn.execute("SELECT leaf FROM records WHERE idx = ?", (i,)).fetchone()
            pk.append(time.perf_counter_ns() - t0)
    with Archive.open(d) as arc:
        root = arc.root_at(size)
        writer_ns = _prove(arc, leaves, size, root, idx)
        depth = len(arc.inclusion_proof(idx[0], size))
    with contextlib.closing(Archive.open_readonly(d)) as ro:
        ro_ns = _prove(ro, leaves, size, root, idx[:READONLY_PROOFS])
    writer, baseline = _dist_ms(writer_ns), _dist_ms(pk)
    return {
        "leaves": size,
        "proof_hashes": depth,
        "writer_handle": writer,
        "readonly_handle": _dist_ms(ro_ns),
        "pk_lookup": baseline,
        "ratio_mean": round(writer["mean_ms"] / baseline["mean_ms"], 1),
        "readonly_ratio_mean": round(_dist_ms(ro_ns)["mean_ms"] / baseline["mean_ms"], 1),
    }


def _payloads(db: Path) -> Iterator[bytes]:
    with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
        for (p,) in conn.execute("SELECT payload FROM records ORDER BY idx"):
            yield p


def bench_verify(d: Path) -> dict[str, Any]:
    """``verify_archive`` vs SHA-256 of every payload (in memory; read + hash; one buffer)."""
    from kontur.archive import verify_archive

    db = d / "archive.sqlite"
    sha = hashlib.sha256
    t0 = time.perf_counter()
    for p in _payloads(db):
        sha(p).digest()
    read_hash = time.perf_counter() - t0
    payloads = list(_payloads(db))
    t0 = time.perf_counter()
    for p in payloads:
        sha(p).digest()
    per_payload = time.perf_counter() - t0
    blob = b"".join(payloads)
    t0 = time.perf_counter()
    sha(blob).digest()
    one_buffer = time.perf_counter() - t0
    del payloads, blob
    t0 = time.perf_counter()
    report = verify_archive(d)
    verify_s = time.perf_counter() - t0
    if not report.ok:
        raise RuntimeError(f"archive_bench: verify failed: {report.first_bad}")
    return {
        "records": report.records,
        "verify_s": round(verify_s, 2),
        "verify_per_s": round(report.records / verify_s),
        "sha256_payloads_s": round(per_payload, 3),
        "sha256_read_and_hash_s": round(read_hash, 3),
        "sha256_one_buffer_s": round(one_buffer, 3),
        "ratio": round(verify_s / per_payload, 1),
        "ratio_vs_read_and_hash": round(verify_s / read_hash, 1),
    }


def bench_bytes(d: Path, raw_bytes: int) -> dict[str, Any]:
    """Bytes per leaf of the closed archive vs payload bytes and the raw table's bytes."""
    db = d / "archive.sqlite"
    with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
        n, payload_bytes = conn.execute(
            "SELECT COUNT(*), SUM(LENGTH(payload)) FROM records"
        ).fetchone()
    size = os.path.getsize(db)
    wal = d / "archive.sqlite-wal"
    return {
        "records": n,
        "archive_sqlite_bytes": size,
        "wal_left": wal.exists(),
        "bytes_per_leaf": round(size / n, 1),
        "payload_bytes_per_record": round(payload_bytes / n, 1),
        "raw_table_bytes_per_row": round(raw_bytes / n, 1),
        "ratio_vs_payload": round(size / payload_bytes, 2),
        "ratio_vs_raw_table": round(size / raw_bytes, 2),
    }


# --------------------------------------------------------------------------- export

#: The looped clip: PETS09's own rate; 2-s GOPs (a camera's usual; PETS09 has 25-s ones).
CLIP_FPS = 10
CLIP_GOP_FRAMES = 20
CLIP_X264 = {"preset": "veryfast", "tune": "zerolatency", "crf": "23", "sc_threshold": "0"}
#: Rows of 8x8 luma blocks at the top left: the frame number in binary, as a camera's OSD.
STAMP_BITS = 20


def looped_clip(src: Path, out: Path, minutes: float) -> dict[str, Any]:
    """``minutes`` of video at :data:`CLIP_FPS`: ``src``'s frames looped, re-encoded by
    libx264 (no B-frames, :data:`CLIP_GOP_FRAMES`-frame GOPs) into an unsigned MP4.

    Each frame carries its number burnt into the top-left corner: looping alone repeats the
    GOPs of the first pass byte for byte, and ingest rightly calls those REPLAYED.
    """
    import av

    frames = round(minutes * 60 * CLIP_FPS)
    t0 = time.perf_counter()
    with av.open(str(out), "w") as dst:
        stream = dst.add_stream(
            "libx264",
            rate=CLIP_FPS,
            options={**CLIP_X264, "g": str(CLIP_GOP_FRAMES), "keyint_min": str(CLIP_GOP_FRAMES)},
        )
        n = 0
        while n < frames:
            with av.open(str(src)) as inp:
                for frame in inp.decode(video=0):
                    if n == 0:
                        stream.width, stream.height = frame.width, frame.height
                        stream.pix_fmt = "yuv420p"
                    if n >= frames:
                        break
                    for packet in stream.encode(_stamped(frame, n)):
                        dst.mux(packet)
                    n += 1
        for packet in stream.encode():
            dst.mux(packet)
    return {
        "frames": frames,
        "fps": CLIP_FPS,
        "gop_frames": CLIP_GOP_FRAMES,
        "bytes": out.stat().st_size,
        "build_s": round(time.perf_counter() - t0, 1),
    }


def _stamped(frame: Any, n: int) -> Any:
    import av

    a = frame.to_ndarray(format="yuv420p")
    for bit in range(STAMP_BITS):
        a[0:8, bit * 8 : bit * 8 + 8] = 235 if (n >> bit) & 1 else 16
    out = av.VideoFrame.from_ndarray(a, format="yuv420p")
    out.pts = n
    return out


def _copy_and_hash(paths: list[Path], dest: Path) -> float:
    """The baseline: read every segment file, hash it, write it to one file, fsync; seconds."""
    t0 = time.perf_counter()
    with dest.open("wb") as f:
        for p in paths:
            data = p.read_bytes()
            hashlib.sha256(data).digest()
            f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return time.perf_counter() - t0


def _read_and_hash(path: Path) -> float:
    """The baseline for verify-export: read the bundle and SHA-256 it; seconds."""
    t0 = time.perf_counter()
    hashlib.sha256(path.read_bytes()).digest()
    return time.perf_counter() - t0


def _export_once(data: Path, camera: str, span: tuple[float, float], out: Path) -> Any:
    from kontur.evidence.export import ExportRequest, export_bundle

    request = ExportRequest(data, camera, span[0], span[1], out, "archive_bench")
    return export_bundle(request, time.time())


def _verify_once(bundle: Path, key: Any) -> float:
    from datetime import UTC, datetime

    from kontur.evidence.bundle import verify_file

    t0 = time.perf_counter()
    report = verify_file(bundle, key, datetime.now(UTC))
    took = time.perf_counter() - t0
    if not report.ok:
        raise RuntimeError(f"archive_bench: verify-export of {bundle} failed: {report.reason}")
    return took


def _cli_s(*args: str) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(
        [archive_kill.kontur_exe(), *args], capture_output=True, text=True, check=False
    )
    if r.returncode != 0:
        raise RuntimeError(f"archive_bench: kontur {args[:2]} exited {r.returncode}: {r.stderr}")
    return time.perf_counter() - t0


def bench_export(work: Path, minutes: float, repeats: int) -> dict[str, Any]:
    """Export + verify-export of ``minutes`` of one camera vs copying + hashing its segments.

    The archive comes from ``kontur demo`` (non-realtime, YOLOX-nano, signed on the fly) of
    a looped PETS09 clip (:func:`looped_clip`); skipped without ../shared/data.
    """
    from kontur.archive import Archive

    if minutes <= 0:
        return {"skipped": "--export-minutes 0"}
    for need in (archive_kill.DEMO_VIDEO, archive_kill.DEMO_MODEL):
        if not need.exists():
            return {"skipped": f"needs {need} (../shared/data is absent)"}
    d = work / "export"
    d.mkdir(parents=True, exist_ok=True)
    clip = d / f"pets09-loop-{minutes:g}min.mp4"
    res: dict[str, Any] = {"minutes": minutes, "clip": None, "demo_s": None}
    if not clip.exists():  # --keep: reuse the clip and the archive of an earlier run
        res["clip"] = looped_clip(archive_kill.DEMO_VIDEO, clip, minutes)
    demo_s, _ = archive_kill.demo_archive(d / "data", clip, archive_kill.DEMO_MODEL)
    res["demo_s"] = round(demo_s, 1) if demo_s else None
    camera, span = archive_kill.whole_stream(d / "data")
    with contextlib.closing(Archive.open_readonly(d / "data")) as arc:
        key, segs = arc.verifier_key, arc.segments
    res.update(_export_repeats(d, camera, span, key, segs, repeats))
    (d / "cli.zip").unlink(missing_ok=True)
    res["cli_export_s"] = round(
        _cli_s("archive", "export", str(d / "data"), "--camera", camera, "--from",
               repr(span[0]), "--to", repr(span[1]), "--out", str(d / "cli.zip")), 2,
    )  # fmt: skip
    res["cli_verify_export_s"] = round(
        _cli_s("archive", "verify-export", str(d / "cli.zip"), "--pin-key", str(key)), 2
    )
    res["cli_startup_s"] = round(_cli_s("version"), 2)
    return res


def _export_repeats(
    d: Path, camera: str, span: tuple[float, float], key: Any, segs: Any, repeats: int
) -> dict[str, Any]:
    """Interleaved repeats of export vs copy + hash, verify-export vs read + hash; medians
    (the modules both import lazily, PyAV among them, are imported first, untimed)."""
    import kontur.evidence.bundle
    import kontur.evidence.export
    import kontur.ingest.inventory  # noqa: F401  (the export reads the certificates with it)

    exp, copy, ver, read = [], [], [], []
    first = None
    for r in range(repeats):
        bundle = d / f"bundle-{time.time_ns()}.zip"
        if r % 2 == 1:
            copy.append(_copy_and_hash(_paths(first, segs), d / "copy.bin"))
        t0 = time.perf_counter()
        result = _export_once(d / "data", camera, span, bundle)
        exp.append(time.perf_counter() - t0)
        first = first or result
        if r % 2 == 0:
            copy.append(_copy_and_hash(_paths(first, segs), d / "copy.bin"))
        read.append(_read_and_hash(bundle))
        ver.append(_verify_once(bundle, key))
        (d / "copy.bin").unlink()
        if r:
            bundle.unlink()
    m = first.manifest
    seg_bytes = sum(p.stat().st_size for p in _paths(first, segs))
    med = statistics.median
    return {
        "camera": camera,
        "span_s": round(span[1] - span[0], 1),
        "gops": len(m.gops),
        "segments": len(_paths(first, segs)),
        "records": len(m.records),
        "segment_bytes": seg_bytes,
        "bundle_bytes": first.size,
        "export_s": round(med(exp), 3),
        "copy_sha256_s": round(med(copy), 3),
        "export_ratio": round(med(exp) / med(copy), 1),
        "verify_export_s": round(med(ver), 3),
        "read_sha256_s": round(med(read), 3),
        "verify_ratio": round(med(ver) / med(read), 1),
        "export_runs_s": [round(x, 3) for x in exp],
        "verify_runs_s": [round(x, 3) for x in ver],
    }


def _paths(result: Any, segs: Any) -> list[Path]:
    """The segment files of the bundle's GOPs, in clip order."""
    shas = dict.fromkeys(s.sha256 for g in result.manifest.gops for s in g.segments)
    return [segs.path(sha) for sha in shas]


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--leaves", type=int, default=1_000_000, help="leaves of the big archive")
    ap.add_argument("--appends", type=int, default=20_000, help="records per append repeat")
    ap.add_argument("--repeats", type=int, default=3, help="append repeats (medians)")
    ap.add_argument("--proofs", type=int, default=2000, help="random inclusion proofs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--export-minutes", type=float, default=10.0, help="minutes of one camera (0: skip)"
    )
    ap.add_argument("--export-only", action="store_true", help="only the export measurement")
    ap.add_argument("--keep", type=Path, default=None, help="build the archives here, keep them")
    ap.add_argument("--json", dest="json_out", default=None, help="PATH, or - for stdout")
    args = ap.parse_args(argv)
    if min(args.leaves, args.appends, args.repeats, args.proofs) < 1:
        print(
            "archive_bench: --leaves, --appends, --repeats, --proofs must be >= 1", file=sys.stderr
        )
        return 2
    work = args.keep if args.keep is not None else Path(tempfile.mkdtemp(prefix="kontur-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _measure(args, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def _measure(args: argparse.Namespace, work: Path) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=args.json_out == "-")
    info = archive_kill.machine_info()
    res: dict[str, Any] = {}
    t_start = time.perf_counter()
    with Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        if not args.export_only:
            _core(args, work, res, progress)
        t = progress.add_task(f"export {args.export_minutes:g} min", total=1)
        res["export"] = bench_export(work, args.export_minutes, args.repeats)
        progress.advance(t)
    res["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    with contextlib.suppress(OSError):
        info["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    goals = _goals(res)
    _print(console, res, goals)
    if args.json_out is not None:
        _write_json(args, console, info, res, goals)
    return 0


def _core(args: argparse.Namespace, work: Path, res: dict[str, Any], progress: Any) -> None:
    """Appends, the big archive, proofs, verify, bytes per leaf."""
    big = work / "big"
    t = progress.add_task("appends (archive / raw)", total=2 * args.repeats)
    res["appends"] = bench_appends(work, args.appends, args.repeats, lambda: progress.advance(t))
    t = progress.add_task(f"build {args.leaves} leaves", total=args.leaves)
    if not (big / "archive.sqlite").exists():
        res["build_s"] = round(build(big, args.leaves, lambda k: progress.advance(t, k)), 1)
    else:
        progress.advance(t, args.leaves)  # --keep: reuse the archive built before
    t = progress.add_task("raw table, same rows", total=1)
    raw_bytes = build_raw(work / f"raw-{time.time_ns()}", big / "archive.sqlite")
    progress.advance(t)
    t = progress.add_task("inclusion proofs", total=1)
    res["inclusion"] = bench_proofs(big, args.proofs, args.seed)
    progress.advance(t)
    t = progress.add_task("full verify vs sha256", total=1)
    res["verify"] = bench_verify(big)
    progress.advance(t)
    res["bytes"] = bench_bytes(big, raw_bytes)


def _goals(res: dict[str, Any]) -> list[dict[str, Any]]:
    if "appends" not in res:  # --export-only
        return []
    values = {
        "appends_ratio": res["appends"]["ratio"],
        "inclusion_mean_ms": res["inclusion"]["writer_handle"]["mean_ms"],
    }
    out = []
    for key, kind, limit, label in GOALS:
        v = values[key]
        met = v >= limit if kind == "min" else v < limit
        out.append({"goal": label, "key": key, "value": v, "limit": limit, "met": met})
    return out


def _print(console: Any, res: dict[str, Any], goals: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="kontur archive benchmark (ratios vs a baseline of the same run)", width=80)
    table.add_column("measurement")
    table.add_column("kontur", justify="right")
    table.add_column("baseline", justify="right")
    table.add_column("ratio", justify="right")
    rows = _core_rows(res) if "appends" in res else []
    e = res["export"]
    if "skipped" in e:
        rows.append(("export + verify-export", "skipped", "", ""))
    else:
        rows += [
            (
                f"export {e['minutes']:g} min ({e['gops']} GOPs, {e['bundle_bytes'] >> 20} MiB), s",
                f"{e['export_s']:.2f}",
                f"{e['copy_sha256_s']:.3f} copy",
                f"{e['export_ratio']}x",
            ),
            (
                "verify-export of that bundle, s",
                f"{e['verify_export_s']:.2f}",
                f"{e['read_sha256_s']:.3f} sha256",
                f"{e['verify_ratio']}x",
            ),
            (
                "  CLI export / verify-export, s",
                f"{e['cli_export_s']} / {e['cli_verify_export_s']}",
                f"{e['cli_startup_s']} start",
                "",
            ),
        ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for g in goals:
        mark = "[green]met[/]" if g["met"] else "[red]not met[/]"
        console.print(f"goal {g['goal']}: {g['value']} -> {mark}")
    console.print(f"export: {e.get('skipped', 'measured')}; elapsed {res['elapsed_s']} s")


def _core_rows(res: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    a, inc, v, b = res["appends"], res["inclusion"], res["verify"], res["bytes"]
    w, ro, pk = inc["writer_handle"], inc["readonly_handle"], inc["pk_lookup"]
    return [
        (
            "appends/s, batch 64",
            f"{a['archive_per_s']:,}",
            f"{a['raw_sqlite_per_s']:,} raw",
            f"{a['ratio']:.2f}x",
        ),
        (
            f"proof+verify @{inc['leaves']:,} leaves, mean ms",
            f"{w['mean_ms']:.3f}",
            f"{pk['mean_ms']:.4f} pk",
            f"{inc['ratio_mean']}x",
        ),
        ("  p99 ms", f"{w['p99_ms']:.3f}", f"{pk['p99_ms']:.4f}", ""),
        (
            "  read-only handle, mean ms",
            f"{ro['mean_ms']:.3f}",
            "",
            f"{inc['readonly_ratio_mean']}x",
        ),
        (
            f"full verify, {v['records']:,} records, s",
            f"{v['verify_s']:.1f}",
            f"{v['sha256_payloads_s']:.2f} sha256",
            f"{v['ratio']}x",
        ),
        (
            "bytes per leaf",
            f"{b['bytes_per_leaf']:.0f}",
            f"{b['payload_bytes_per_record']:.0f} payload",
            f"{b['ratio_vs_payload']}x",
        ),
        (
            "  vs raw table of the same rows",
            "",
            f"{b['raw_table_bytes_per_row']:.0f}",
            f"{b['ratio_vs_raw_table']}x",
        ),
    ]


def _write_json(
    args: argparse.Namespace,
    console: Any,
    info: dict[str, Any],
    res: dict[str, Any],
    goals: list[dict[str, Any]],
) -> None:
    doc = {
        "benchmark": "archive_bench",
        "command": "python benchmarks/archive_bench.py " + " ".join(sys.argv[1:]),
        "machine": info,
        "config": {
            "leaves": args.leaves,
            "appends": args.appends,
            "repeats": args.repeats,
            "proofs": args.proofs,
            "seed": args.seed,
            "payload_example": payload(0),
            "export_minutes": args.export_minutes,
            "export_only": args.export_only,
            "clip": {"fps": CLIP_FPS, "gop_frames": CLIP_GOP_FRAMES, "x264": CLIP_X264},
        },
        "results": res,
        "goals": goals,
    }
    text = json.dumps(doc, indent=2) + "\n"
    if args.json_out == "-":
        sys.stdout.write(text)
        return
    path = Path(args.json_out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    console.print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
