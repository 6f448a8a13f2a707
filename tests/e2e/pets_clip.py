"""Helpers shared by the short e2e demos: a cut of PETS09 as H.264 with 2 s GOPs, the first
GOPs of a clip remuxed, and the archive's payloads of one kind read straight from SQLite
(read-only)."""

from __future__ import annotations

import json
import sqlite3
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import shared


def pets09_h264(out_path: Path, frames: int, fps: int = 10, *, mirror: bool = False) -> Path:
    """PETS09's first ``frames`` frames as H.264 in MP4 (GOPs of 2 s), from the real footage;
    ``mirror``: flipped left to right (another camera's own bitstream of the same scene)."""
    av = pytest.importorskip("av")
    src = shared("video", "pets09_s2l1_480x360.avi")
    with av.open(str(src)) as inp, av.open(str(out_path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 480, 360, "yuv420p"
        stream.options = {"g": str(2 * fps), "bf": "0", "crf": "20"}
        for i, frame in enumerate(inp.decode(video=0)):
            if i >= frames:
                break
            pic = frame.to_ndarray(format="bgr24")
            again = av.VideoFrame.from_ndarray(pic[:, ::-1].copy() if mirror else pic, "bgr24")
            again.pts, again.time_base = i, Fraction(1, fps)
            for packet in stream.encode(again):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return out_path


def first_gops(video: Path, out: Path, gops: int) -> Path:
    """The first ``gops`` GOPs of ``video``, remuxed (the same bitstream): a short clip."""
    av = pytest.importorskip("av")
    with av.open(str(video)) as src, av.open(str(out), "w") as dst:
        stream = src.streams.video[0]
        ostream = dst.add_stream_from_template(stream)
        keyframes = 0
        for p in src.demux(stream):
            keyframes += bool(p.size and p.is_keyframe)
            if not p.size or keyframes > gops:
                continue
            p.stream = ostream
            dst.mux(p)
    return out


def key_flags(video: Path) -> list[bool]:
    """Whether each picture of ``video`` (decode order) starts a GOP, as encoded (an encoder
    may add keyframes; signing adds SEI-only packets, which are not pictures)."""
    av = pytest.importorskip("av")
    with av.open(str(video)) as clip:
        return [p.is_keyframe for p in clip.demux(clip.streams.video[0]) if p.size]


def records(data_dir: Path, kind: str) -> list[dict[str, Any]]:
    """The payloads of the archive's records of ``kind``, in index order."""
    con = sqlite3.connect(f"file:{data_dir / 'archive.sqlite'}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT payload FROM records WHERE kind = ? ORDER BY idx", (kind,)
        ).fetchall()
    finally:
        con.close()
    return [json.loads(r[0]) for r in rows]
