"""``kontur archive manifest``: the latest, ``--run N`` or ``--all``; one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.runmanifest.conftest import host, manifest
from typer.testing import CliRunner, Result

from kontur.archive import Archive
from kontur.cli import app
from kontur.clock import ManualClock
from kontur.runmanifest import record_run


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "80"})


@pytest.fixture
def two_starts(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    with Archive.open(data, ManualClock()) as arc:
        record_run(arc, manifest(), None)
        upgraded = host(dists={"kontur": "0.1.0", "onnxruntime": "1.33.0", "numpy": "2.4.6"})
        record_run(arc, manifest(upgraded), None)
    return data


def test_json_to_stdout_is_the_latest_start(two_starts: Path) -> None:
    r = invoke("archive", "manifest", two_starts, "--json", "-")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    upgraded = host(dists={"kontur": "0.1.0", "onnxruntime": "1.33.0", "numpy": "2.4.6"})
    assert out["run"] == 2 and out["sha256"] == manifest(upgraded).digest()
    assert out["manifest"]["inference"]["onnxruntime"] == {"onnxruntime": "1.33.0"}
    assert out["change"]["previous"]["run"] == 1
    assert "runtime:onnxruntime" in {c["component"] for c in out["change"]["changes"]}
    assert "component" in r.stderr  # the table went to stderr


def test_run_n_and_all(two_starts: Path) -> None:
    r = invoke("archive", "manifest", two_starts, "--run", "1", "--json", "-")
    first = json.loads(r.stdout)
    assert first["run"] == 1 and first["change"] is None
    every = json.loads(invoke("archive", "manifest", two_starts, "--all", "--json", "-").stdout)
    assert [m["run"] for m in every["manifests"]] == [1, 2]


def test_table_fits_80_columns_and_marks_changes(two_starts: Path) -> None:
    r = invoke("archive", "manifest", two_starts)
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any("runtime:onnxruntime" in line and "(was 1.32.0)" in line for line in lines)
    assert any("changed since run 1" in line for line in lines)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--run", "3"], "kontur: error: --run: expected 1..2, got 3"),
        (["--run", "1", "--all"], "kontur: error: expected at most one of --run or --all, got "
         "both"),
    ],
)  # fmt: skip
def test_bad_options_are_one_line(two_starts: Path, args: list[str], fragment: str) -> None:
    r = invoke("archive", "manifest", two_starts, *args)
    assert r.exit_code == 2 and r.stderr.strip() == fragment


def test_missing_archive_is_one_line(tmp_path: Path) -> None:
    r = invoke("archive", "manifest", tmp_path / "nothing")
    assert r.exit_code == 2
    want = f"kontur: error: {tmp_path / 'nothing'}: expected an archive, got no archive.sqlite"
    assert r.stderr.strip() == want


def test_archive_without_a_start_is_one_line(tmp_path: Path) -> None:
    assert invoke("archive", "init", tmp_path / "data").exit_code == 0
    r = invoke("archive", "manifest", tmp_path / "data")
    assert r.exit_code == 2
    assert r.stderr.strip().startswith(
        f"kontur: error: {tmp_path / 'data'}: expected a run manifest (kontur demo/run "
        "archives one at every start), got none in 0 record(s)"
    )
