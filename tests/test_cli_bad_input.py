"""Bad input a new user tried on the CLI (the fourteenth stop's sweep): each gets one line
``kontur: error: …`` saying what was expected and what was found, and a non-zero exit.

The console entry point (:func:`kontur.cli.main`) is run in-process, as ``kontur`` runs it:
usage errors (an unknown option, a value out of range) are its to print.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kontur.archive import WitnessError, read_witness, witness_line
from kontur.archive.witness import append_witness
from kontur.cli import app, main


def _main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    argv = sys.argv
    sys.argv = ["kontur", *args]
    try:
        with pytest.raises(SystemExit) as exited:
            main()
    finally:
        sys.argv = argv
    got = capsys.readouterr()
    return int(exited.value.code or 0), got.out, got.err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["sign", "--bogus"], "No such option: --bogus"),
        (["sign", "--bogus"], "(see 'kontur sign --help')"),
        (["eval", "tamper", "--video", "v.mp4", "--seed", "-1"], "'--seed'"),
        (
            [
                "model",
                "release",
                "m.onnx",
                "--format",
                "yolox",
                "--name",
                "n",
                "--version",
                "1",
                "--key",
                "k",
                "--out",
                "o",
                "--valid-days",
                "inf",
            ],
            "'--valid-days'",
        ),
        (["verify", "x.mp4", "--time-tolerance", "nan"], "'--time-tolerance'"),
        (["eval", "tamper"], "Missing option '--video'"),
    ],
)
def test_a_usage_error_is_one_line(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _main(args, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("kontur: error: ") and fragment in err, err
    assert "Traceback" not in err


def test_the_entry_point_keeps_help_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main(["version", "--json", "-"], capsys)
    assert code == 0 and out.strip().startswith("{")
    code, out, err = _main(["eval"], capsys)  # a group without its command: its help
    assert code == 2 and "tamper" in out + err and "Traceback" not in err
    code, out, _ = _main(["--help"], capsys)
    assert code == 0 and "Usage" in out
    code, _, err = _main(["eval", "tamper", "--video", "/nonexistent.mp4"], capsys)
    assert code == 2 and err.startswith("kontur: error: --video /nonexistent.mp4")


def test_a_pipe_as_the_release_key_is_refused(tmp_path: Path) -> None:
    """``--pub <(cat key.pub)``: model-signing reads the key a second time and found the pipe
    empty (a traceback)."""
    fifo = tmp_path / "pub"
    os.mkfifo(fifo)
    r = CliRunner().invoke(app, ["model", "verify", str(tmp_path), "--pub", str(fifo)])
    assert r.exit_code == 2
    assert r.stderr.strip() == (
        f"kontur: error: --pub {fifo}: expected a regular file, got a directory, pipe or device"
    )


def test_a_password_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app,
        [
            "user",
            "add",
            "gina",
            "--role",
            "viewer",
            "--password-stdin",
            "--data-dir",
            str(tmp_path),
        ],
        input=b"\xff\xfe\xfdabcdefghijklmnop\n",
    )
    assert r.exit_code == 2 and "expected UTF-8 text on stdin" in r.stderr, r.stderr


def test_a_witness_of_garbage_is_refused_and_a_torn_line_is_reported(tmp_path: Path) -> None:
    """A witness file of garbage verified as OK ("0 checkpoint(s) agree"): its lines were
    skipped as torn. Only the start of a witness line, cut short, is a torn line."""
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"hello world not a witness\n")
    with pytest.raises(WitnessError, match="line 1: expected a witnessed checkpoint"):
        read_witness(garbage)
    witness = tmp_path / "witness"
    append_witness(witness, 1.0, "note one")
    with witness.open("ab") as f:
        f.write(b'{"at":2.0,"no')  # a crash mid-line
    append_witness(witness, 3.0, "note three")
    lines, torn = read_witness(witness)
    assert [w.note for w in lines] == ["note one", "note three"] and torn == [2]
    assert witness_line({"checkpoints": 2, "torn_lines": torn}) == (
        "witness: 2 checkpoint(s) agree; skipped 1 line(s) a crash cut short (2)"
    )
    with witness.open("ab") as f:
        f.write(b"junk in the middle\n")
    append_witness(witness, 4.0, "note four")
    with pytest.raises(WitnessError, match="line 4"):
        read_witness(witness)


def test_an_unreadable_witness_fails_the_incident_in_one_line(tmp_path: Path) -> None:
    from kontur.runtime.incidents import _copy_prefix

    with pytest.raises(WitnessError, match="expected a readable file, got Is a directory"):
        _copy_prefix(tmp_path, tmp_path / "copy", 10)
