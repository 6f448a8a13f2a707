"""``kontur verify``: the CLI contract on the reference vectors, and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import run_kontur, shared


def _verify(*args: str) -> tuple[int, dict, str]:
    r = run_kontur("verify", *args, "--json", "-")
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else {}, r.stderr


def test_an_intact_reference_stream_is_authentic_and_exits_0() -> None:
    code, doc, _ = _verify(
        str(shared("oms", "streams", "pets_h265_default.mp4")),
        "--ca",
        str(shared("oms", "keys", "ca_ec.pem")),
    )
    assert code == 0 and doc["authentic"] is True
    assert doc["summary"] == {"AUTHENTIC": 10}
    assert [g["counter"] for g in doc["gops"]] == list(range(1, 11))
    assert set(doc["gops"][0]) == {
        "index", "verdict", "reason", "counter", "start", "end", "time",
    }  # fmt: skip
    # reference-signed times (README quirk 3: a 1975 base) compare as differences: no flag
    assert doc["time"] == {"tolerance_s": 0.1, "retimed": [], "unchecked": []}


def test_a_tampered_stream_names_the_gop_and_exits_1() -> None:
    code, doc, _ = _verify(
        str(shared("oms", "tampered", "pets_h264_swap_gops.mp4")),
        "--ca",
        str(shared("oms", "keys", "ca_ec.pem")),
    )
    assert code == 1 and doc["authentic"] is False
    bad = [g for g in doc["gops"] if g["verdict"] != "AUTHENTIC"]
    assert bad and all(g["verdict"] == "NOT_AUTHENTIC" for g in bad)
    assert any("expected GOP counter" in g["reason"] for g in bad)


def test_a_wrong_trust_anchor_fails_provenance() -> None:
    code, doc, _ = _verify(
        str(shared("oms", "streams", "pets_h264_default.mp4")),
        "--ca",
        str(shared("oms", "keys", "other_ca_examples.pem")),
    )
    assert code == 1 and doc["summary"] == {"NOT_AUTHENTIC": 10}
    assert all("provenance" in g["reason"] for g in doc["gops"])


def test_an_unsigned_file_is_unsigned_and_exits_1() -> None:
    code, doc, _ = _verify(
        str(shared("video", "car_traffic_640x360.mp4")),
        "--ca",
        str(shared("oms", "keys", "ca_ec.pem")),
    )
    assert code == 1 and set(doc["summary"]) == {"UNSIGNED"}
    # no signature, no signed time: said, never flagged (ADR 0018)
    assert doc["time"]["retimed"] == [] and len(doc["time"]["unchecked"]) == len(doc["gops"])
    why = "container times not checked against signed time: the GOP carries no signature"
    assert why in doc["gops"][0]["reason"]


def test_the_restamped_drop_gop_vector_is_retimed_where_the_hole_was_hidden() -> None:
    """The vector's remux gave fresh sequential timestamps after cutting GOP 4: the first
    verified GOP after the cut starts 2 s early against its signed capture time."""
    code, doc, _ = _verify(
        str(shared("oms", "tampered", "pets_h264_drop_gop.mp4")),
        "--ca",
        str(shared("oms", "keys", "ca_ec.pem")),
    )
    assert code == 1
    assert doc["time"] == {"tolerance_s": 0.1, "retimed": [5], "unchecked": [3, 4]}
    row = doc["gops"][5]
    assert row["verdict"] == "RETIMED"
    assert (
        "expected GOP 5 to start 8.000 s after GOP 2 (signed capture times), got 6.000 s in the "
        "container (-2.000 s, tolerance 0.1 s)"
    ) in row["reason"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("nothing.mp4", "--ca", "x.pem"), "expected a video file, found nothing there"),
        (("{video}",), "expected exactly one of --ca CA.pem or --camera ID"),
        (("{video}", "--ca", "{ca}", "--camera", "cam1"), "expected exactly one of --ca"),
        (("{video}", "--ca", "missing.pem"), "--ca missing.pem: expected a readable PEM file"),
        (("{video}", "--ca", "{garbage}"), "expected PEM certificates, got data that does not"),
        (("{garbage}", "--ca", "{ca}"), "expected a video container"),
        (("{video}", "--camera", "cam9", "--data-dir", "{tmp}"), "--camera cam9: expected a"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], fragment: str
) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 100)
    subst = {
        "video": str(shared("oms", "streams", "pets_h264_default.mp4")),
        "ca": str(shared("oms", "keys", "ca_ec.pem")),
        "garbage": str(garbage),
        "tmp": str(tmp_path),
    }
    r = run_kontur("verify", *(a.format(**subst) for a in args))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kontur: error: "), r.stderr
    assert fragment in lines[0]
    assert "Traceback" not in r.stderr


def test_a_clip_just_signed_verifies_against_its_enrolled_camera(tmp_path: Path) -> None:
    # kontur sign stamps the last frame with the signing time (a recording is captured up to
    # now), so a receiver's clock never sees capture times in the future
    data, keys, out = tmp_path / "d", tmp_path / "k", tmp_path / "s.mkv"
    assert run_kontur("camera", "init-ca", "--data-dir", str(data)).returncode == 0
    r = run_kontur("camera", "enroll", "c1", "--issue", "--out", str(keys), "--data-dir", str(data))
    assert r.returncode == 0, r.stderr
    video = shared("video", "car_traffic_640x360.mp4")
    r = run_kontur("sign", str(video), "--key", str(keys / "c1.key"), "--cert",
                   str(keys / "c1.pem"), "--out", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    code, doc, _ = _verify(str(out), "--camera", "c1", "--data-dir", str(data))
    assert code == 0, doc
    assert doc["summary"] == {"AUTHENTIC": 6}
    r = run_kontur("verify", str(tmp_path), "--ca", str(keys / "c1.pem"))
    assert r.returncode == 2 and "expected a video file, got a directory" in r.stderr
