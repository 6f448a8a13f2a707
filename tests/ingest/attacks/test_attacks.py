"""The named attack suite of the trusted ingest: one test per attack of ``vectors/attacks.yaml``.

Each vector names an attack, the recipe that builds it from the lab's signed footage
(:mod:`tests.ingest.attacks.conftest`), the verdict expected on the affected GOP(s) with a
fragment of the reason, and the GOPs that must stay AUTHENTIC. Every test also asserts that
no affected GOP passes as AUTHENTIC. A few attacks run end to end through ``kontur verify``.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import hashes as hashes_
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from tests.conftest import run_kontur
from tests.ingest.attacks.conftest import GOP, Lab
from tests.ingest.attacks.streams import Clip, Packet, flip, read_clip, utc

from kontur.ingest.freshness import FreshnessPolicy
from kontur.ingest.oms.hashing import gop_hash
from kontur.ingest.oms.nal import Codec
from kontur.ingest.oms.sei import GeneralTlv, HashListTlv, SignatureTlv, build_sei
from kontur.ingest.oms.writer import sign_file
from kontur.ingest.recording import CheckedGop
from kontur.ingest.verdict import Verdict

VECTORS = yaml.safe_load((Path(__file__).parent / "vectors" / "attacks.yaml").read_text())


@dataclass(frozen=True)
class Attack:
    """A built attack: the tampered file, the camera it claims, and what ingest said."""

    path: Path
    camera: str
    results: list[CheckedGop]


Recipe = Callable[..., Attack]
RECIPES: dict[str, Recipe] = {}


def recipe(fn: Recipe) -> Recipe:
    """Register a recipe under its name (the ``build`` field of a vector)."""
    RECIPES[fn.__name__] = fn
    return fn


def _run(lab: Lab, clip: Clip, stem: str, camera: str = "cam-1", **check: Any) -> Attack:
    path = clip.write(lab.path(stem))
    return Attack(path, camera, lab.check(path, camera, **check))


def _p_frame(clip: Clip, gop: int) -> int:
    """Index of a P-frame packet of GOP ``gop`` that carries no SEI (its last packet)."""
    index = clip.gop_start(gop) + len(clip.gops()[gop]) - 1
    nals = clip.packets[index].nals()
    assert any(clip.is_slice(n) for n in nals) and not any(clip.is_sei(n) for n in nals)
    return index


@recipe
def rewrite(lab: Lab, recording: str = "a") -> Attack:
    """No attack: the builder's own round trip (demux, restamp, mux) changes no verdict."""
    clip = lab.clip(recording)
    return _run(lab, clip.from_gops(clip.gops()), "rewrite")


# -- content ----------------------------------------------------------------------------------


@recipe
def flip_p_frame(lab: Lab, recording: str = "a", gop: int = 3) -> Attack:
    """Flip one bit in the middle of the slice data of a P-frame of GOP ``gop``."""
    clip = lab.clip(recording)
    index = _p_frame(clip, gop)
    packets = list(clip.packets)
    p = packets[index]
    packets[index] = Packet(flip(p.data, len(p.data) // 2), p.pts, p.dts, p.duration, False)
    return _run(lab, clip.with_packets(packets), "flip")


@recipe
def drop_p_frame(lab: Lab, recording: str = "a", gop: int = 3) -> Attack:
    """Drop one P-frame (the last of GOP ``gop``); timestamps left with their gap."""
    clip = lab.clip(recording)
    index = _p_frame(clip, gop)
    return _run(lab, clip.with_packets(clip.packets[:index] + clip.packets[index + 1 :]), "drop")


@recipe
def drop_gop(lab: Lab, gop: int = 3) -> Attack:
    """Drop a whole GOP (with the SEI it carries), restamped to hide the hole."""
    gops = lab.clip("a").gops()
    return _run(lab, lab.clip("a").from_gops(gops[:gop] + gops[gop + 1 :]), "dropgop")


@recipe
def swap_gops(lab: Lab, gop: int = 3) -> Attack:
    """Swap GOPs ``gop`` and ``gop+1`` (each with the SEI it carries), restamped."""
    clip = lab.clip("a")
    g = clip.gops()
    g[gop], g[gop + 1] = g[gop + 1], g[gop]
    return _run(lab, clip.from_gops(g), "swap")


@recipe
def duplicate_gop(lab: Lab, gop: int = 3) -> Attack:
    """Send GOP ``gop`` twice in a row, restamped."""
    clip = lab.clip("a")
    g = clip.gops()
    return _run(lab, clip.from_gops([*g[: gop + 1], g[gop], *g[gop + 1 :]]), "dup")


@recipe
def splice_other_recording(lab: Lab, gop: int = 4, ingested: bool = False) -> Attack:
    """Replace GOP ``gop`` of A by GOP ``gop`` of B (same camera, signed separately).

    ``ingested``: B went through the same freshness store before A arrives.
    """
    a, b = lab.clip("a"), lab.clip("b")
    g = a.gops()
    g[gop] = b.gops()[gop]
    store = lab.store()
    if ingested:
        before = lab.check(lab.signed["b"], store=store, at=lab.t0 + 32)
        assert all(r.verdict.verdict is Verdict.AUTHENTIC for r in before)
    return _run(lab, a.from_gops(g), "splice", store=store, at=lab.t0 + 20)


@recipe
def splice_other_camera(lab: Lab, gop: int = 6) -> Attack:
    """GOPs from ``gop`` on taken from the same footage signed by cam-2 (same site)."""
    a, c = lab.clip("a"), lab.clip("a_cam2")
    return _run(lab, a.from_gops(a.gops()[:gop] + c.gops()[gop:]), "cam2")


# -- signatures and parameter sets ---------------------------------------------------------------


@recipe
def strip_one_sei(lab: Lab, recording: str = "a", sei: int = 3) -> Attack:
    """Remove the ``sei``-th OMS SEI (the one that signs GOP ``sei``)."""
    clip = lab.clip(recording)
    target = clip.seis()[sei]
    return _run(lab, clip.map_nals(lambda i, j, n: None if (i, j) == target else n), "strip1")


@recipe
def strip_all_seis(lab: Lab) -> Attack:
    """Remove every OMS SEI after the camera's signed recording was ingested."""
    clip = lab.clip("a")
    store = lab.store()
    lab.check(lab.signed["a"], store=store)
    stripped = clip.map_nals(lambda _i, _j, n: None if clip.is_sei(n) else n)
    return _run(lab, stripped, "stripall", store=store, at=lab.t0 + 25)


@recipe
def forge_signature(lab: Lab, recording: str = "a", sei: int = 3) -> Attack:
    """Flip one bit inside the signature of the ``sei``-th SEI (DER stays well-formed)."""
    clip = lab.clip(recording)
    target = clip.seis()[sei]
    signature = clip.sei(sei).signature
    assert signature is not None

    def forge(i: int, j: int, nal: bytes) -> bytes:
        if (i, j) != target:
            return nal
        return flip(nal, nal.rindex(signature.signature) + len(signature.signature) // 2)

    return _run(lab, clip.map_nals(forge), "forge")


@recipe
def resign_foreign_key(lab: Lab, gop: int = 3, stolen: bool = False) -> Attack:
    """Alter a P-slice of GOP ``gop``, fix up the hash list and GOP hash of the SEI that signs
    it, and re-sign that SEI with a foreign key, keeping cam-1's certificate in it.

    ``stolen``: sign with cam-1's own key instead (the control: the forgery is well built,
    only the key betrays it).
    """
    clip = lab.clip("a")
    index = _p_frame(clip, gop)
    nals = clip.packets[index].nals()
    pos = max(j for j, n in enumerate(nals) if clip.is_slice(n))
    tampered = flip(nals[pos], len(nals[pos]) // 2)
    first_slice = next(n for n in clip.packets[clip.gop_start(gop)].nals() if clip.is_slice(n))
    anchor = hashlib.sha256(first_slice).digest()
    old = hashlib.sha256(anchor + hashlib.sha256(nals[pos]).digest()).digest()
    new = hashlib.sha256(anchor + hashlib.sha256(tampered).digest()).digest()
    sei = clip.sei(gop)
    assert sei.hash_list is not None and sei.general is not None
    hashes = tuple(new if h == old else h for h in sei.hash_list.hashes)
    assert hashes != sei.hash_list.hashes
    tlvs = [
        replace(t, hashes=hashes) if isinstance(t, HashListTlv)
        else replace(t, gop_hash=gop_hash(hashes)) if isinstance(t, GeneralTlv)
        else t
        for t in sei.tlvs
        if not isinstance(t, SignatureTlv)
    ]  # fmt: skip
    document = build_sei(clip.codec, tlvs, signature_max_size=72)
    digest = hashlib.sha256(document.signed_bytes).digest()
    if stolen:
        forged = document.finish(lab.identities["cam-1"].sign_digest(digest))
    else:
        foreign = ec.generate_private_key(ec.SECP256R1())
        forged = document.finish(foreign.sign(digest, ec.ECDSA(Prehashed(hashes_.SHA256()))))
    target = clip.seis()[gop]

    def swap(i: int, j: int, nal: bytes) -> bytes:
        if (i, j) == target:
            return forged
        return tampered if (i, j) == (index, pos) else nal

    return _run(lab, clip.map_nals(swap), "resign")


@recipe
def change_sps_inband(lab: Lab, gop: int = 4) -> Attack:
    """Change one bit of the in-band SPS at the IDR of GOP ``gop`` (level_idc)."""
    clip = lab.clip("a")
    start = clip.gop_start(gop)

    def sps(i: int, _j: int, nal: bytes) -> bytes:
        if i == start and clip.is_parameter_set(nal) and nal[0] & 0x1F == 7:
            return flip(nal, 3)
        return nal

    return _run(lab, clip.map_nals(sps), "sps")


@recipe
def change_sps_extradata(lab: Lab) -> Attack:
    """Change one bit of the SPS inside the avcC extradata (level_idc of the copy)."""
    clip = lab.clip("a")
    ed = clip.extradata
    sps_at = 8  # avcC: 6 header bytes, 2 length bytes, then the first SPS
    assert clip.codec is Codec.H264 and ed[sps_at] & 0x1F == 7
    tampered = Clip(clip.template, clip.codec, flip(ed, sps_at + 3), clip.packets)
    return _run(lab, tampered, "avcc")


# -- freshness, keys, profile --------------------------------------------------------------------


@recipe
def replay_recording(lab: Lab, later_s: float = 600) -> Attack:
    """Ingest A, then the same A again ``later_s`` later on the same freshness store."""
    store = lab.store()
    lab.check(lab.signed["a"], store=store)
    path = lab.signed["a"]
    return Attack(path, "cam-1", lab.check(path, store=store, at=lab.t0 + 20 + later_s))


def _capture_end(lab: Lab, gop: int) -> float:
    r = lab.check(lab.signed["a"])[gop].trust.oms
    assert r is not None and r.capture_end is not None
    return r.capture_end.timestamp()


@recipe
def delay_beyond_bound(lab: Lab, gop: int = 5) -> Attack:
    """The trusted clock stands at capture end of GOP ``gop`` + max_delay + 1 s."""
    at = _capture_end(lab, gop) + FreshnessPolicy().max_delay_s + 1
    return Attack(lab.signed["a"], "cam-1", lab.check(lab.signed["a"], at=at))


@recipe
def clock_skew(lab: Lab, gop: int = 5) -> Attack:
    """The camera runs ahead: capture end of GOP ``gop`` lies max_skew + 1 s after the clock."""
    at = _capture_end(lab, gop) - FreshnessPolicy().max_skew_s - 1
    return Attack(lab.signed["a"], "cam-1", lab.check(lab.signed["a"], at=at))


@recipe
def signed_by(lab: Lab, recording: str, camera: str) -> Attack:
    """A recording signed by ``camera`` checked as it is (revoked, expired, profile cases)."""
    return Attack(lab.signed[recording], camera, lab.check(lab.signed[recording], camera))


@recipe
def truncate(lab: Lab, recording: str = "a", gop: int = 6, keep: int = 5) -> Attack:
    """Cut the stream after ``keep`` packets of GOP ``gop`` (-1: the last GOP)."""
    clip = lab.clip(recording)
    gop = gop % len(clip.gops())
    return _run(lab, clip.with_packets(clip.packets[: clip.gop_start(gop) + keep]), "cut")


@recipe
def camera_restart(lab: Lab) -> Attack:
    """No attack: A ingested, then B (the camera's next recording, counters from 1 again)."""
    store = lab.store()
    lab.check(lab.signed["a"], store=store)
    path = lab.signed["b"]
    return Attack(path, "cam-1", lab.check(path, store=store, at=lab.t0 + 32))


@recipe
def untouched(lab: Lab, recording: str = "a") -> Attack:
    """The signed footage of cam-1 as it is: no false alarm allowed."""
    return signed_by(lab, recording, "cam-1")


# -- container time (ADR 0018) ---------------------------------------------------------------------


@recipe
def retime(
    lab: Lab,
    recording: str = "a",
    shift_s: float = 0.0,
    from_gop: int = 0,
    scale: float = 1.0,
    jitter_s: float = 0.0,
    suffix: str = ".mp4",
) -> Attack:
    """Rewrite only the container's timestamps of a signed recording: times scaled by
    ``scale``, shifted by ``shift_s`` from GOP ``from_gop`` on, then each moved by a seeded
    uniform jitter of up to ``jitter_s``; ``suffix`` ``.mkv`` remuxes to Matroska (1 ms
    timestamps). Bitstream and signatures are untouched."""
    rng = random.Random(18)
    clip = lab.clip(recording)
    seconds = [
        t * scale + (shift_s if gop >= from_gop else 0.0) + rng.uniform(-jitter_s, jitter_s)
        for gop, t in clip.times()
    ]
    path = clip.with_times(seconds).write(lab.path("retime").with_suffix(suffix))
    return Attack(path, "cam-1", lab.check(path))


@recipe
def variable_frame_rate(lab: Lab, hold_s: float = 1.5) -> Attack:
    """No attack: recording A's pictures at an irregular rate (periods of 60-140 ms, and one
    picture of GOP 3 held ``hold_s``), signed that way by cam-1: the check assumes no rate."""
    rng = random.Random(18)
    clip = read_clip(lab.root / "raw" / "a.mp4")  # the lab's unsigned encode of recording A
    seconds, t = [], 0.0
    for i in range(len(clip.packets)):
        seconds.append(t)
        t += rng.uniform(0.06, 0.14) + (hold_s if i == 3 * GOP + 4 else 0.0)
    vfr = clip.with_times(seconds).write(lab.path("vfr-raw"))
    signed = lab.path("vfr")
    sign_file(vfr, signed, lab.identities["cam-1"], utc(lab.t0))
    return Attack(signed, "cam-1", lab.check(signed))


# -- the tests ------------------------------------------------------------------------------------


def _gops(spec: Any, total: int) -> list[int]:
    """GOP indices of a vector: an index, ``"a..b"``, ``"a.."`` (to the end), ``"all"``,
    or a list of those."""
    if isinstance(spec, list):
        return sorted({g for item in spec for g in _gops(item, total)})
    if spec == "all":
        return list(range(total))
    if isinstance(spec, str):
        lo, hi = spec.split("..")
        return list(range(int(lo), int(hi) + 1 if hi else total))
    return [int(spec)]


def _param(v: dict[str, Any]) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=v["xfail"])] if "xfail" in v else []
    return pytest.param(v, id=v["name"], marks=marks)


def _table(results: list[CheckedGop]) -> str:
    return "\n".join(
        f"GOP {r.verdict.gop_index}: {r.verdict.verdict.value}: {'; '.join(r.verdict.reasons)}"
        for r in results
    )


@pytest.mark.parametrize("vector", [_param(v) for v in VECTORS["attacks"]])
def test_attack(lab: Lab, vector: dict[str, Any]) -> None:
    """The attack gets its specific verdict and reason; nothing affected passes."""
    attack = RECIPES[vector["build"]](lab, **vector.get("args", {}))
    results = attack.results
    total = len(results)
    assert [r.verdict.gop_index for r in results] == list(range(total))
    assert total >= vector.get("min_gops", 5), _table(results)
    by_index = {r.verdict.gop_index: r.verdict for r in results}
    affected: set[int] = set()
    for want in vector["expect"]:
        for g in _gops(want["gops"], total):
            got = by_index[g]
            affected.add(g)
            assert got.verdict is Verdict(want["verdict"]), f"GOP {g}\n{_table(results)}"
            text = "; ".join(got.reasons)
            for fragment in [want["reason"], *want.get("also", [])]:
                assert fragment in text, f"GOP {g}: {fragment!r} not in {text!r}"
            for fragment in vector.get("absent", []):
                assert fragment not in text, f"GOP {g}: {fragment!r} in {text!r}"
    for g in affected:
        assert not by_index[g].verdict.trusted, f"GOP {g} passed\n{_table(results)}"
    for g in _gops(vector.get("authentic", []), total):
        assert by_index[g].verdict is Verdict.AUTHENTIC, f"GOP {g}\n{_table(results)}"


CLI_VECTORS = [v for v in VECTORS["attacks"] if v.get("cli")]


@pytest.mark.parametrize("vector", [_param(v) for v in CLI_VECTORS])
def test_attack_cli(lab: Lab, vector: dict[str, Any]) -> None:
    """End to end: ``kontur verify --camera ID --json -`` exits 1 with the same verdicts."""
    attack = RECIPES[vector["build"]](lab, **vector.get("args", {}))
    run = run_kontur(
        "verify", str(attack.path), "--camera", attack.camera,
        "--data-dir", str(lab.inventory.data_dir), "--json", "-",
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    assert report["authentic"] is False
    rows = {row["index"]: row for row in report["gops"]}
    want = vector["cli"]
    for g in _gops(want["gops"], len(rows)):
        assert rows[g]["verdict"] == want["verdict"], rows[g]
        assert want["reason"] in rows[g]["reason"], rows[g]
    for g in _gops(vector.get("authentic", []), len(rows)):
        assert rows[g]["verdict"] == "AUTHENTIC", rows[g]


def test_untouched_cli(lab: Lab) -> None:
    """The untouched signed recording: exit 0, every GOP AUTHENTIC in the JSON report."""
    run = run_kontur(
        "verify", str(lab.signed["a"]), "--camera", "cam-1",
        "--data-dir", str(lab.inventory.data_dir), "--json", "-",
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["authentic"] is True
    assert report["summary"] == {"AUTHENTIC": 12}
    # its container times were checked against the signed ones and match (ADR 0018)
    assert report["time"] == {"tolerance_s": 0.1, "retimed": [], "unchecked": []}
    assert all(g["time"]["status"] == "ok" for g in report["gops"])


def test_retimed_cli_names_the_retimed_gop(lab: Lab) -> None:
    """A container shifted by 1.5 s from GOP 5: ``kontur verify`` exits 1, names GOP 5 as
    retimed in its JSON (expected vs found times) and in its summary line; a wider
    ``--time-tolerance`` accepts it."""
    attack = retime(lab, shift_s=1.5, from_gop=5)
    data = str(lab.inventory.data_dir)
    args = ("verify", str(attack.path), "--camera", "cam-1", "--data-dir", data)
    run = run_kontur(*args, "--json", "-")
    assert run.returncode == 1, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["summary"] == {"AUTHENTIC": 11, "RETIMED": 1}
    assert report["time"] == {"tolerance_s": 0.1, "retimed": [5], "unchecked": []}
    row = report["gops"][5]
    assert row["verdict"] == "RETIMED" and row["time"]["status"] == "retimed"
    assert "got 2.500 s in the container (+1.500 s, tolerance 0.1 s)" in row["time"]["reasons"][0]
    assert "container retimed at GOP(s) 5" in run.stderr
    wide = run_kontur(*args, "--time-tolerance", "2", "--json", "-")
    assert wide.returncode == 0, wide.stdout + wide.stderr
    assert json.loads(wide.stdout)["time"]["retimed"] == []
