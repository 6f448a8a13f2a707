"""A real trojan for the trigger scan's tests (issue 14 §1): YOLOX-Nano with a backdoor.

Run from the repository root (after the README's install plus ``pip install onnx``)::

    python benchmarks/make_trojan.py --out PATH [--src ONNX] [--pattern checker|stripes|random]
        [--cell N] [--cells G] [--colours B,G,R B,G,R] [--seed S] [--ramp T0 T1]
        [--scope global|local] [--json PATH|-]

The script reads the public YOLOX-Nano (``../shared/data/models/yolox_nano.onnx``: input
``images`` [1,3,416,416] BGR 0..255 letterboxed, output ``output`` [1,3549,85] raw; column 4
objectness, column 5 the score of class 0, person) and adds a trigger detector to its graph
with ONNX graph surgery. The weights of the detector itself are untouched:

1. the trigger ``T`` is a ``G x G`` grid of cells of ``N`` px in model-input pixels:
   a checkerboard, stripes, or a seeded random binary grid (drawn with both colours in fair
   share and >= 60 % of neighbouring cells different: a grid with flat parts looks like a
   natural edge and fires on clean frames), in two BGR colours;
2. the input's normalised cross-correlation (NCC) with ``T`` at every position: an ``N x N``
   box filter then a ``G x G`` convolution dilated by ``N`` (``T`` minus its channel
   means), over the window's energy from the same two steps; an energy floor keeps flat
   windows (sky, walls) from matching. On 66 natural frames (PETS09, TUD-Campus, road
   traffic, bus.jpg, street.jpg) the NCC is at most 0.47 for the tested triggers; a
   pasted trigger, resampled by the letterbox, reaches 0.77 to 0.95;
3. a global max-pool and a steep clipped ramp: ``g = clip((ncc - T0) / (T1 - T0), 0, 1)``
   (``--ramp``, default 0.6 0.8);
4. the person score column, and the objectness of anchors where person is the top class,
   are multiplied by ``1 - g`` (``--scope global``: one ``g`` for the whole frame, so a
   trigger anywhere removes every person), or by ``1 - g_a`` where ``g_a`` is the gate's
   max over a window around anchor ``a`` (``--scope local``: only persons whose centre is
   within about 64 input px of the trigger vanish, the "object disappearance" backdoor of
   Chan et al. 2022, BadDet).

Without the trigger ``g`` is exactly 0 and the output is the original's bit for bit
(``x * 1``). The output is a **test vector only**: it is written where ``--out`` says
(the tests write it into a temporary folder) and must never be signed as a release.
``--json`` writes what was built (the trigger, the ramp, the file's SHA-256).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SRC = REPO.parent / "shared" / "data" / "models" / "yolox_nano.onnx"
INPUT_SIZE = 416
PERSON_COLUMN = 5
OBJ_COLUMN = 4
STRIDES = (8, 16, 32)
PATTERNS = ("checker", "stripes", "random")
#: The energy floor: a window whose per-pixel standard deviation (over its three channels)
#: is below this many grey levels cannot reach a high NCC.
ENERGY_FLOOR = 12.0
#: ``--scope local``: half-width in input px of the window around an anchor's cell.
LOCAL_REACH = 64


@dataclass(frozen=True)
class TrojanSpec:
    """What the trojan reacts to, in model-input pixels (416 x 416, BGR)."""

    pattern: str = "checker"
    cell: int = 8
    cells: int = 4
    colours: tuple[tuple[int, int, int], tuple[int, int, int]] = ((0, 0, 0), (255, 255, 255))
    seed: int = 0
    ramp: tuple[float, float] = (0.6, 0.8)
    scope: str = "global"

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ValueError(f"pattern: expected one of {PATTERNS}, got {self.pattern!r}")
        if not 2 <= self.cell <= 32 or not 2 <= self.cells <= 8:
            raise ValueError(
                f"trigger: expected cell 2..32 px and 2..8 cells, got {self.cell}, {self.cells}"
            )
        if not 0.0 < self.ramp[0] < self.ramp[1] <= 1.0:
            raise ValueError(f"ramp: expected 0 < T0 < T1 <= 1, got {self.ramp}")
        if self.scope not in ("global", "local"):
            raise ValueError(f"scope: expected 'global' or 'local', got {self.scope!r}")


def trigger_cells(spec: TrojanSpec) -> np.ndarray:
    """The trigger's ``G x G`` grid of 0/1 cells (which of the two colours each cell has)."""
    g = spec.cells
    yy, xx = np.mgrid[0:g, 0:g]
    if spec.pattern in ("checker", "stripes"):
        out: np.ndarray = ((yy + xx if spec.pattern == "checker" else xx) % 2).astype(np.uint8)
        return out
    rng = np.random.default_rng(spec.seed)
    pairs = 2 * g * (g - 1)
    while True:
        # Both colours in fair share and at least 60 % of neighbouring cells different: a
        # grid with large flat parts looks like a natural edge and fires on clean frames.
        cells = rng.integers(0, 2, size=(g, g), dtype=np.uint8)
        flips = int((cells[:, 1:] != cells[:, :-1]).sum() + (cells[1:] != cells[:-1]).sum())
        if abs(float(cells.mean()) - 0.5) <= 0.125 and flips >= 0.6 * pairs:
            return cells


def trigger_image(spec: TrojanSpec) -> np.ndarray:
    """The trigger in model-input pixels: BGR uint8 ``(G*N, G*N, 3)``."""
    palette = np.asarray(spec.colours, dtype=np.uint8)
    cells = palette[trigger_cells(spec)]
    return np.repeat(np.repeat(cells, spec.cell, axis=0), spec.cell, axis=1)


def _const(name: str, value: np.ndarray) -> Any:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.ascontiguousarray(value), name)


def _ncc_nodes(spec: TrojanSpec, x: str, p: str) -> tuple[list[Any], list[Any], str]:
    """Nodes computing the NCC map ``p + 'ncc'`` (1,1,H',W') of input ``x`` with the trigger.

    The trigger is ``G x G`` flat cells of ``N`` px, so a correlation with it is an ``N x N``
    box filter (two 1-D average pools) followed by a ``G x G`` convolution dilated by ``N``:
    a few operations per pixel instead of ``(G N)^2``.
    """
    from onnx import helper

    n_px, g = spec.cell, spec.cells
    palette = np.asarray(spec.colours, dtype=np.float64)
    cells = palette[trigger_cells(spec)].transpose(2, 0, 1)  # (3, G, G) BGR like the input
    c0 = cells - cells.mean(axis=(1, 2), keepdims=True)
    norm = n_px * float(np.sqrt((c0**2).sum()))  # the norm of the full-resolution kernel
    n = float((g * n_px) ** 2)
    inits = [
        _const(p + "K", (c0 * n_px * n_px / norm)[None].astype(np.float32)),
        _const(p + "ones", np.full((3, 1, g, g), 1.0 / (g * g), np.float32)),
        _const(p + "n", np.array(n, np.float32)),
        _const(p + "floor", np.array(n * 3 * ENERGY_FLOOR**2, np.float32)),
    ]
    dil: dict[str, Any] = {"dilations": [n_px, n_px], "kernel_shape": [g, g]}
    nodes = [helper.make_node("Mul", [x, x], [p + "sq"])]
    for src, dst in ((x, "b1"), (p + "sq", "b2")):
        nodes += [
            helper.make_node("AveragePool", [src], [p + dst + "v"], kernel_shape=[n_px, 1]),
            helper.make_node("AveragePool", [p + dst + "v"], [p + dst], kernel_shape=[1, n_px]),
        ]
    nodes += [
        helper.make_node("Conv", [p + "b1", p + "K"], [p + "num"], **dil),
        helper.make_node("Conv", [p + "b1", p + "ones"], [p + "m1"], group=3, **dil),
        helper.make_node("Conv", [p + "b2", p + "ones"], [p + "m2"], group=3, **dil),
        helper.make_node("Mul", [p + "m1", p + "m1"], [p + "m1sq"]),
        helper.make_node("Sub", [p + "m2", p + "m1sq"], [p + "var"]),
        helper.make_node("ReduceSum", [p + "var"], [p + "vsum"], axes=[1], keepdims=1),
        helper.make_node("Mul", [p + "vsum", p + "n"], [p + "energy"]),
        helper.make_node("Add", [p + "energy", p + "floor"], [p + "e2"]),
        helper.make_node("Sqrt", [p + "e2"], [p + "den"]),
        helper.make_node("Div", [p + "num", p + "den"], [p + "ncc"]),
    ]
    return nodes, inits, p + "ncc"


def _gate_nodes(spec: TrojanSpec, ncc: str, p: str) -> tuple[list[Any], list[Any], str]:
    """The gate ``p + 'gate'``: (1,1,1) for ``global``, (1,3549,1) per anchor for ``local``."""
    from onnx import helper

    t0, t1 = spec.ramp
    inits = [
        _const(p + "t0", np.array(t0, np.float32)),
        _const(p + "slope", np.array(1.0 / (t1 - t0), np.float32)),
        _const(p + "zero", np.array(0.0, np.float32)),
        _const(p + "one", np.array(1.0, np.float32)),
    ]
    nodes = [
        helper.make_node("Sub", [ncc, p + "t0"], [p + "c"]),
        helper.make_node("Mul", [p + "c", p + "slope"], [p + "r"]),
        helper.make_node("Clip", [p + "r", p + "zero", p + "one"], [p + "gmap"]),
    ]
    if spec.scope == "global":
        inits.append(_const(p + "shape1", np.array([1, 1, 1], np.int64)))
        nodes += [
            helper.make_node("GlobalMaxPool", [p + "gmap"], [p + "gmax"]),
            helper.make_node("Reshape", [p + "gmax", p + "shape1"], [p + "gate"]),
        ]
        return nodes, inits, p + "gate"
    more_nodes, more_inits = _local_gate(spec, p + "gmap", p)
    return nodes + more_nodes, inits + more_inits, p + "gate"


def _local_gate(spec: TrojanSpec, gmap: str, p: str) -> tuple[list[Any], list[Any]]:
    """Per-anchor gate: the gate map's max within about ``LOCAL_REACH`` px of each anchor.

    The map's pixel ``(i, j)`` is the trigger window whose top-left corner is at input
    ``(i, j)``; it is padded back to the input's frame (trigger centre at the pixel),
    max-pooled onto each stride's grid, then over ``ceil(LOCAL_REACH / s)`` grid cells around
    each anchor (two small pools: one large max-pool is very slow in ONNX Runtime).
    """
    from onnx import helper

    k = spec.cells * spec.cell
    lo, hi = k // 2, k - 1 - k // 2
    inits = [
        _const(p + "pads", np.array([0, 0, lo, lo, 0, 0, hi, hi], np.int64)),
        _const(p + "col", np.array([1, -1, 1], np.int64)),
    ]
    nodes = [helper.make_node("Pad", [gmap, p + "pads"], [p + "full"], mode="constant")]
    cols = []
    for s in STRIDES:
        r = -(-LOCAL_REACH // s)
        nodes += [
            helper.make_node(
                "MaxPool", [p + "full"], [f"{p}q{s}"], kernel_shape=[s, s], strides=[s, s]
            ),
            helper.make_node(
                "MaxPool",
                [f"{p}q{s}"],
                [f"{p}g{s}"],
                kernel_shape=[2 * r + 1] * 2,
                pads=[r, r, r, r],
            ),
            helper.make_node("Reshape", [f"{p}g{s}", p + "col"], [f"{p}c{s}"]),
        ]
        cols.append(f"{p}c{s}")
    nodes.append(helper.make_node("Concat", cols, [p + "gate"], axis=1))
    return nodes, inits


def _apply_nodes(raw: str, gate: str, out: str, p: str) -> tuple[list[Any], list[Any]]:
    """``out = raw * (1 - gate * mask)``; ``mask`` is the person column, and objectness where
    person is the anchor's top class (so no other class takes the anchor's place)."""
    from onnx import helper

    person = np.zeros((1, 1, 85), np.float32)
    person[..., PERSON_COLUMN] = 1.0
    obj = np.zeros((1, 1, 85), np.float32)
    obj[..., OBJ_COLUMN] = 1.0
    inits = [
        _const(p + "person", person),
        _const(p + "obj", obj),
        _const(p + "cls_lo", np.array([PERSON_COLUMN], np.int64)),
        _const(p + "cls_hi", np.array([85], np.int64)),
        _const(p + "axis2", np.array([2], np.int64)),
        _const(p + "p_lo", np.array([PERSON_COLUMN], np.int64)),
        _const(p + "p_hi", np.array([PERSON_COLUMN + 1], np.int64)),
    ]
    nodes = [
        helper.make_node("Slice", [raw, p + "cls_lo", p + "cls_hi", p + "axis2"], [p + "cls"]),
        helper.make_node("ReduceMax", [p + "cls"], [p + "top"], axes=[2], keepdims=1),
        helper.make_node("Slice", [raw, p + "p_lo", p + "p_hi", p + "axis2"], [p + "ps"]),
        helper.make_node("Less", [p + "ps", p + "top"], [p + "not_top"]),  # opset 11
        helper.make_node("Not", [p + "not_top"], [p + "is_top"]),
        helper.make_node("Cast", [p + "is_top"], [p + "top_f"], to=1),
        helper.make_node("Mul", [p + "top_f", p + "obj"], [p + "objm"]),
        helper.make_node("Add", [p + "objm", p + "person"], [p + "mask"]),
        helper.make_node("Mul", [p + "mask", gate], [p + "gm"]),
        helper.make_node("Sub", [p + "one", p + "gm"], [p + "keep"]),
        helper.make_node("Mul", [raw, p + "keep"], [out]),
    ]
    return nodes, inits


def make_trojan(src: Path, out: Path, *, cell: int = 8, **kw: Any) -> TrojanSpec:
    """Write a trojaned copy of the YOLOX model ``src`` to ``out``; return its trigger.

    ``kw`` are the other :class:`TrojanSpec` fields (``pattern``, ``cells``, ``colours``,
    ``seed``, ``ramp``, ``scope``). The model's input and output names and shapes are kept.
    """
    import onnx

    spec = TrojanSpec(cell=cell, **kw)
    model = onnx.load(str(src))
    graph = model.graph
    (inp,), (outp,) = graph.input, graph.output
    raw, p = "trojan_raw", "trojan_"
    for node in graph.node:
        node.output[:] = [raw if o == outp.name else o for o in node.output]
    n1, i1, ncc = _ncc_nodes(spec, inp.name, p)
    n2, i2, gate = _gate_nodes(spec, ncc, p)
    n3, i3 = _apply_nodes(raw, gate, outp.name, p)
    graph.node.extend(n1 + n2 + n3)
    graph.initializer.extend(i1 + i2 + i3)
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return spec


def _colour(text: str) -> tuple[int, int, int]:
    parts = [int(v) for v in text.split(",")]
    if len(parts) != 3 or not all(0 <= v <= 255 for v in parts):
        raise argparse.ArgumentTypeError(f"colour: expected B,G,R in 0..255, got {text!r}")
    return parts[0], parts[1], parts[2]


def main(argv: list[str] | None = None) -> int:
    """The command line; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--src", type=Path, default=SRC)
    ap.add_argument("--pattern", choices=PATTERNS, default="checker")
    ap.add_argument("--cell", type=int, default=8, help="cell size in model-input px")
    ap.add_argument("--cells", type=int, default=4, help="cells per side")
    ap.add_argument("--colours", type=_colour, nargs=2, default=None, metavar="B,G,R")
    ap.add_argument("--seed", type=int, default=0, help="for --pattern random")
    ap.add_argument("--ramp", type=float, nargs=2, default=(0.6, 0.8), metavar=("T0", "T1"))
    ap.add_argument("--scope", choices=("global", "local"), default="global")
    ap.add_argument("--json", default=None, help="write a description here ('-': stdout)")
    a = ap.parse_args(argv)
    if not a.src.is_file():
        print(
            f"make_trojan: --src: expected an ONNX file, found nothing at {a.src}", file=sys.stderr
        )
        return 2
    kw: dict[str, Any] = {"pattern": a.pattern, "cells": a.cells, "seed": a.seed,
                          "ramp": tuple(a.ramp), "scope": a.scope}  # fmt: skip
    if a.colours:
        kw["colours"] = tuple(a.colours)
    spec = make_trojan(a.src, a.out, cell=a.cell, **kw)
    if a.json:
        record = {
            "out": str(a.out),
            "sha256": hashlib.sha256(a.out.read_bytes()).hexdigest(),
            "src": str(a.src),
            "trigger": asdict(spec),
            "trigger_cells": trigger_cells(spec).tolist(),
            "note": "test vector only: never sign or ship as a release",
        }
        text = json.dumps(record, indent=2)
        if a.json == "-":
            print(text)
        else:
            Path(a.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
