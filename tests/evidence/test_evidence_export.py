"""``kontur archive export`` on an archive the real perimeter wrote, then ``verify-export``.

The span exported holds one GOP from the middle of the stream (GOP 2 of PETS09's four), so
the clip starts after the stream did: its first GOP carries the SEI of a GOP the bundle does
not hold, and the one after it (the lead-out) carries its own signature.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import av
import pytest
from tests.conftest import REPO, run_kontur
from tests.evidence.conftest import DemoArchive, export, mid_span, verify

from kontur.archive import Archive
from kontur.evidence.clip import read_mp4
from kontur.ingest.oms.sei import is_oms_sei

pytestmark = pytest.mark.e2e

#: tests/ingest/oms/vectors/README.md says how to build the reference library's validator
#: driver; it is not committed, so the check skips without it.
REFERENCE_VALIDATOR = Path(
    os.environ.get(
        "KONTUR_OMS_VALIDATE",
        REPO / "tests/ingest/oms/vectors/reference_tools/oms_validate",
    )
)


@pytest.fixture(scope="module")
def exported(
    demo_archive: DemoArchive, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, dict]:
    tmp = tmp_path_factory.mktemp("export")
    data = demo_archive.copy(tmp / "d")
    start, end = mid_span(demo_archive, 2)
    result = export(data, tmp / "gop2.zip", start, end)
    return data, tmp / "gop2.zip", result


def test_export_writes_one_bundle_and_logs_it(exported: tuple[Path, Path, dict]) -> None:
    data, bundle, result = exported
    assert result["gops"] == [2, 3]  # GOP 2, then the lead-out that carries its SEI
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
        readme = zf.read("README.txt").decode()
    assert names[:2] == ["README.txt", "manifest.json"]
    assert {"clip.mp4", "checkpoint.txt", "archive-key.txt", "records.jsonl"} <= set(names)
    assert {"certificates/site-ca.pem", "certificates/camera.pem"} <= set(names)
    assert sum(n.startswith("segments/") for n in names) == 3  # GOP 2; GOP 3 + its signed EOS
    kinds = {r["kind"] for r in manifest["records"]}
    assert {"segment", "verdict", "detections", "decision", "event", "camera"} <= kinds
    assert "kontur archive verify-export gop2.zip --pin-key" in readme
    sha = hashlib.sha256(bundle.read_bytes()).hexdigest()
    with Archive.open_readonly(data) as arc:
        (logged,) = [r for r in arc.iter_records() if r.kind == "export"]
    assert logged.index == result["export_record"] == manifest["created"]["export_record"]
    assert logged.payload["bundle_sha256"] == sha == result["sha256"]
    assert (logged.payload["camera"], logged.payload["by"]) == ("cam1", "evidence-test")
    assert run_kontur("archive", "verify", str(data)).returncode == 0


def test_verify_export_passes_offline_with_the_pinned_key(
    exported: tuple[Path, Path, dict], demo_archive: DemoArchive, tmp_path: Path
) -> None:
    _, bundle, _ = exported
    alone = tmp_path / "alone.zip"  # nothing next to it: no data dir, no archive
    alone.write_bytes(bundle.read_bytes())
    rc, report = verify(alone, "--pin-key", demo_archive.key)
    assert rc == 0, report["failures"]
    assert report["ok"] and report["reason"] is None and report["key_pinned"]
    gops = {g["gop_index"]: g for g in report["gops"]}
    assert list(gops) == [2, 3] and gops[2]["role"] == "span"
    # GOP 3 is the lead-out that carries GOP 2's signature; on a loaded machine a record of
    # its first frames can reach the archive before GOP 2's segment does, inside the span, and
    # the export then holds GOP 3 as span too, verified with its own logged verdict
    assert gops[3]["role"] == "lead_out" or (
        gops[3]["role"] == "span" and gops[3]["logged"] == "AUTHENTIC"
    )
    assert all(g["segments"] == g["clip"] == "authentic" for g in report["gops"])
    assert report["gops"][0]["logged"] == "AUTHENTIC"


def test_the_clip_is_the_segments_remuxed_with_their_seis(
    exported: tuple[Path, Path, dict],
) -> None:
    _, bundle, _ = exported
    with zipfile.ZipFile(bundle) as zf:
        mp4 = zf.read("clip.mp4")
    clip = read_mp4(io.BytesIO(mp4))
    seis = sum(is_oms_sei(n, clip.codec) for unit in clip.units for n in unit)
    assert seis >= 3  # GOP 1's (lead-in), GOP 2's, and the signed end of stream
    with av.open(io.BytesIO(mp4)) as container:
        stream = container.streams.video[0]
        times, pictures = [], 0
        for packet in container.demux(stream):
            try:
                frames = list(packet.decode())
            except av.InvalidDataError:
                continue  # the last sample: the signed end of stream, an SEI and no picture
            pictures += len(frames)
            times += [f.pts for f in frames]
    assert pictures == len(clip.units) - 1
    assert times == sorted(times) and len(set(times)) == len(times)  # B-frames in order


def test_the_clip_passes_the_onvif_reference_validator(
    exported: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    if not REFERENCE_VALIDATOR.exists():
        pytest.skip(
            f"needs the ONVIF reference validator driver at {REFERENCE_VALIDATOR} (build it as "
            "tests/ingest/oms/vectors/README.md says, or set KONTUR_OMS_VALIDATE)"
        )
    _, bundle, _ = exported
    with zipfile.ZipFile(bundle) as zf:
        clip = read_mp4(io.BytesIO(zf.read("clip.mp4")))
        (tmp_path / "ca.pem").write_bytes(zf.read("certificates/site-ca.pem"))
    feed = tmp_path / "nals.bin"
    units = [*clip.parameter_sets, *(n for unit in clip.units for n in unit)]
    feed.write_bytes(b"".join(len(n).to_bytes(4, "big") + n for n in units))
    r = subprocess.run(
        [str(REFERENCE_VALIDATOR), "0", str(tmp_path / "ca.pem"), str(feed)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    last = r.stdout.strip().splitlines()[-1]
    # OMS_AUTHENTICITY_OK, OMS_PROVENANCE_OK: the lead-in SEI is "not feasible", not invalid
    assert last.startswith("accumulated authenticity=4 provenance=3"), r.stdout


def test_export_is_refused_while_another_writer_holds_the_archive(
    demo_archive: DemoArchive, tmp_path: Path
) -> None:
    data = demo_archive.copy(tmp_path / "d")
    start, end = mid_span(demo_archive, 2)
    with Archive.open(data):  # a running perimeter holds the archive so
        r = run_kontur(
            "archive", "export", str(data), "--camera", "cam1", "--from", repr(start),
            "--to", repr(end), "--out", str(tmp_path / "b.zip"),
        )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "stop kontur first" in r.stderr
    assert not (tmp_path / "b.zip").exists()


def test_export_needs_a_checkpoint_covering_the_span(
    demo_archive: DemoArchive, tmp_path: Path
) -> None:
    data = demo_archive.copy(tmp_path / "d")
    # a writer that dies without closing: its last records are committed, not checkpointed
    script = (
        "import os, sys; from kontur.archive import Archive; "
        "a = Archive.open(sys.argv[1]); "
        "a.append('decision', {'camera_id': 'cam1', 'gops': [3], 'frame_index': 790}); "
        "a.flush(); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", script, str(data)], check=True, timeout=60)
    with Archive.open_readonly(data) as arc:
        last = list(arc.iter_records())[-1]
    r = run_kontur(
        "archive", "export", str(data), "--camera", "cam1", "--from", repr(last.at - 0.5),
        "--to", repr(last.at + 0.5), "--out", str(tmp_path / "b.zip"),
    )  # fmt: skip
    assert r.returncode == 2
    assert f"expected a signed checkpoint covering record {last.index}" in r.stderr
    assert "stop the perimeter" in r.stderr and r.stderr.count("\n") == 1


def test_a_span_without_records_of_the_camera_is_refused(
    demo_archive: DemoArchive, tmp_path: Path
) -> None:
    r = run_kontur(
        "archive", "export", str(demo_archive.copy(tmp_path / "d")), "--camera", "cam1",
        "--from", "2001-01-01T00:00:00Z", "--to", "2001-01-02T00:00:00Z",
        "--out", str(tmp_path / "b.zip"),
    )  # fmt: skip
    assert r.returncode == 2 and "expected records of camera cam1" in r.stderr


def test_not_a_bundle_is_bad_input(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    r = run_kontur("archive", "verify-export", str(junk))
    assert r.returncode == 2 and "expected a zip bundle" in r.stderr
