"""``kontur placement explain`` on real footage: the decision a run would make, measured in the
worker's sandbox; the command line itself never loads the model's runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import shared
from tests.e2e.conftest import Clip

pytestmark = pytest.mark.e2e

#: Runs the command line in this interpreter, then says (last stderr line) which inference
#: runtimes the command line's own process had loaded.
_WRAPPED = """\
import json, sys
from kontur.cli import main
sys.argv = ["kontur", *sys.argv[1:]]
try:
    main()
finally:
    loaded = [m for m in ("onnxruntime", "openvino") if m in sys.modules]
    print(json.dumps(loaded), file=sys.stderr)
"""


def _explain(*args: str) -> tuple[int, str, str, list[str]]:
    r = subprocess.run(
        [sys.executable, "-c", _WRAPPED, "placement", "explain", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    loaded = json.loads(r.stderr.strip().splitlines()[-1])
    return r.returncode, r.stdout, r.stderr, loaded


def test_explain_benches_in_the_sandbox_and_places_the_task(
    pets09_cut: Clip, tmp_path: Path
) -> None:
    model = shared("models", "yolox_nano.onnx")
    # the site's checkpoint key and witness file: the throwaway plan touches neither
    key, witness = tmp_path / "site" / "checkpoint.key", tmp_path / "site" / "witness.log"
    config = tmp_path / "kontur.yaml"
    config.write_text(f"archive:\n  key: {key}\n  witness: {witness}\n")
    rc, out, err, loaded = _explain(
        "--source", str(pets09_cut.path), "--model", str(model), "--config", str(config),
        "--json", "-",
    )  # fmt: skip
    assert rc == 0, err
    assert not key.parent.exists()
    assert loaded == []  # the model was loaded, and benched on the clip, in the sandbox only
    doc = json.loads(out)  # stdout is pure JSON
    assert doc["platform"] == "cpu" and doc["admissible_any"] is True
    cpu = doc["platforms"]["cpu"]["measurement"]
    assert cpu["platform"] == "cpu" and cpu["frames"] > 0
    assert cpu["latency_ms"] > 0 and cpu["throughput_fps"] > 0
    assert "placement → cpu" in " ".join(err.split())  # the human tables, on stderr


def test_explain_on_a_corrupt_clip_is_one_line_and_exit_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(bytes(range(256)) * 40)
    rc, out, err, loaded = _explain("--source", str(junk))
    lines = err.strip().splitlines()
    assert rc == 2 and out == "" and loaded == []
    assert len(lines) == 2 and "Traceback" not in err  # the error line, then the wrapper's
    assert lines[0].startswith(f"kontur: error: source {junk}: expected a video container")
