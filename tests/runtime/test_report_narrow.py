"""Issue 9, 5e: ``kontur demo``'s summary is readable at 80 columns and when piped.

A ten-column table squeezed into 80 columns cut its headers ("veri…", "OPER…"). Below
``NARROW_BELOW`` columns each camera and each placement is a vertical ``key  value`` block;
wide consoles keep the tables, which wrap but never cut.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from kontur.runtime.report import NARROW_BELOW, print_summary

HEAD = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
REASON = (
    "cpu: lowest risk R 0.412 among the admissible platforms (gpu: latency 310.5 ms > Lmax "
    "250.0 ms; npu: not present on this machine)"
)


def _summary() -> dict:
    cam = {
        "id": "entrance-north",
        "source": "rtsp://***@10.0.0.7:554/live",
        "frames": 795,
        "frames_skipped": 12,
        "gops": {"AUTHENTIC": 3, "NOT_AUTHENTIC": 1, "UNSIGNED": 2},
        "detections": 31337,
        "tracks": 42,
        "verifier": {"agree": 7001, "disagree": 95},
        "decisions": {"ALLOW": 11, "RESTRICT": 22, "OPERATOR": 33, "DENY": 44},
        "error": None,
        "state": "DEGRADED",
    }
    failed = dict(
        cam,
        id="yard",
        state="NORMAL",
        error="ingest:yard exited with code 1 before its source ended",
    )
    return {
        "cameras": [cam, failed],
        "placement": [
            {
                "task": "detect-track:entrance-north",
                "platform": "cpu",
                "risk": {"cpu": 0.412, "gpu": 0.5551, "npu": 0.9},
                "admissible": {"cpu": True, "gpu": False, "npu": False},
                "reason": REASON,
            }
        ],
        "degradation": {
            "state": "DEGRADED",
            "transitions": [
                {"at": 1.0, "from": "NORMAL", "to": "DEGRADED", "trigger": "x", "camera": "yard"}
            ],
        },
        "archive": {
            "path": "/var/lib/kontur/sites/north-gate/runs/2024-05-01T12-00-00",
            "records": 1234,
            "head": HEAD,
        },
        "processes": [{"name": "supervisor", "pid": 4242}, {"name": "ingest:yard", "pid": 4343}],
        "detector": {"name": "yolox-onnx", "model_id": "yolox-nano@3", "fallback": False},
        "fps": 25.4,
        "elapsed_s": 31.3,
        "notes": ["yard: the unsigned clip is signed on the fly by a simulated camera"],
    }


#: What a person reads the summary for: each must appear whole, on one line.
FIGURES = [
    "entrance-north", "yard", "795", "AUTHENTIC 3", "UNSIGNED 2", "31337", "42", "7001/95",
    "frames", "GOP verdicts", "detections", "tracks", "verifier agree/disagree",
    "ALLOW", "RESTRICT", "OPERATOR", "DENY", "detect-track:entrance-north", "platform",
    "risk R", "cpu 0.412", "gpu 0.555", "admissible", "cpu yes", "gpu no", "reason",
    HEAD, "1234 records", "DEGRADED", "25.4 fps",
]  # fmt: skip


def _render(console: Console) -> str:
    print_summary(_summary(), console)
    return console.export_text()


def _assert_readable(text: str, width: int) -> None:
    lines = text.splitlines()
    assert "…" not in text, [ln for ln in lines if "…" in ln]
    assert max(len(ln) for ln in lines) <= width, max(lines, key=len)
    missing = [f for f in FIGURES if not any(f in ln for ln in lines)]
    assert not missing, (missing, text)


def test_80_columns_give_one_block_per_camera_without_cut_headers() -> None:
    text = _render(Console(width=80, record=True, file=io.StringIO(), force_terminal=True))
    _assert_readable(text, 80)
    lines = [ln.rstrip() for ln in text.splitlines()]
    assert "camera entrance-north" in lines and "placement detect-track:entrance-north" in lines
    assert (
        "  verifier agree/disagree  7001/95" in lines and "  DENY                     44" in lines
    )
    yard = lines[lines.index("camera yard") :]
    assert yard[10] == "  state                    NORMAL"  # ADR 0040: each camera's own
    assert yard[11].startswith("  error") and "ingest:yard exited with code 1" in yard[11]
    assert "  NORMAL → DEGRADED  (x on yard)" in lines
    assert "kontur demo: cameras" not in text  # no squeezed table


def test_piped_output_is_narrow_and_readable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    console = Console(file=io.StringIO(), record=True)  # not a terminal: rich's default width
    assert not console.is_terminal and console.width < NARROW_BELOW
    _assert_readable(_render(console), console.width)


@pytest.mark.parametrize("width", [80, 99, 100, 120, 200])
def test_no_width_cuts_a_header_or_a_value(width: int) -> None:
    _assert_readable(_render(Console(width=width, record=True, file=io.StringIO())), width)


def test_a_wide_console_keeps_the_tables() -> None:
    text = _render(Console(width=260, record=True, file=io.StringIO()))
    _assert_readable(text, 260)
    assert "kontur demo: cameras" in text and "camera entrance-north" not in text
