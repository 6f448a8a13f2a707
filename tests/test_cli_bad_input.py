"""Bad input a new user tried on the CLI (the fourteenth stop's sweep): each gets one line
``kontur: error: …`` saying what was expected and what was found, and a non-zero exit.

The console entry point (:func:`kontur.cli.main`) is run in-process, as ``kontur`` runs it:
usage errors (an unknown option, a value out of range) are its to print.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kontur import cli
from kontur._cli import MAX_ERROR_CHARS, error_line
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


def test_an_argument_that_is_not_utf8_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Python keeps an argument's non-UTF-8 bytes as lone surrogates, which failed deep in
    SQLite or X.509 with a traceback (a revocation's reason, an export's file name)."""
    data = tmp_path / "d"
    bad = "a" + b"\xff".decode("utf-8", "surrogateescape")
    code, out, err = _main(
        ["camera", "revoke", "c1", "--reason", bad, "--data-dir", str(data)], capsys
    )
    assert code == 2 and out == "" and "Traceback" not in err
    assert err == (
        "kontur: error: argument 5: expected UTF-8 text, got bytes that are not UTF-8 at "
        "character 1: a\\udcff\n"
    )
    assert not data.exists()  # refused before the command ran
    code, out, err = _main(["archive", "verify", str(data) + bad, "--json", "-"], capsys)
    assert code == 2 and json.loads(out) == {
        "error": err[len("kontur: error: ") :].strip(),
        "exit_code": 2,
    }


def test_with_json_dash_an_error_is_json_on_stdout_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = tmp_path / "nowhere"
    code, out, err = _main(["archive", "verify", str(nowhere), "--json", "-"], capsys)
    line = f"{nowhere}: expected archive.sqlite, got none"
    assert code == 2 and err == f"kontur: error: {line}\n"
    assert json.loads(out) == {"error": line, "exit_code": 2}  # stdout: one JSON document
    code, out, err = _main(["archive", "verify", str(nowhere)], capsys)  # no --json: as before
    assert code == 2 and out == "" and err == f"kontur: error: {line}\n"


def test_a_bug_is_one_line_and_exit_70_and_debug_shows_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug in kontur (here one put into the command table) is still one line, never a
    traceback; KONTUR_DEBUG=1 lets it through for the one fixing it."""

    def broken(**_: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(cli, "app", broken)
    monkeypatch.delenv("KONTUR_DEBUG", raising=False)
    code, out, err = _main(["version"], capsys)
    assert code == 70 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("kontur: error: internal error: RuntimeError: boom second line (a bug")
    monkeypatch.setenv("KONTUR_DEBUG", "0")  # only "1" turns it on
    assert _main(["version"], capsys)[0] == 70
    monkeypatch.setenv("KONTUR_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        cli.main()


@pytest.mark.parametrize("name", ["", "a" * 65, "tab\there", "Объект" * 6])
def test_the_site_ca_name_must_fit_x509(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d"
    code, out, err = _main(["camera", "init-ca", "--data-dir", str(data), "--name", name], capsys)
    assert code == 2 and out == "" and "Traceback" not in err and err.count("\n") == 1
    assert err.startswith(
        "kontur: error: --name: expected printable text of 1 to 64 bytes in UTF-8, got "
        f"{len(name.encode())} bytes: "
    )
    assert not (data / "inventory.sqlite").exists()  # nothing half made


def test_an_error_line_is_capped() -> None:
    """A hostile file's bytes quoted in an error made one line of megabytes."""
    line = error_line("release.sig: expected JSON, got " + "\\x00" * 10_000)
    assert len(line) <= MAX_ERROR_CHARS and line.endswith("(40032 characters in all)")
    assert error_line("two\n  lines") == "two lines"


def test_archive_init_with_a_bad_key_makes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad --key left a half-made archive that then blocked the retry ("expected no
    archive, got an existing archive.sqlite")."""
    data, junk = tmp_path / "a", tmp_path / "junk.key"
    junk.write_bytes(os.urandom(64))
    code, _, err = _main(["archive", "init", str(data), "--key", str(junk)], capsys)
    assert (
        code == 2
        and err
        == f"kontur: error: archive key {junk}: expected a PEM private key, got other bytes\n"
    )
    assert not data.exists()
    missing = tmp_path / "not-mounted" / "archive.key"
    code, _, err = _main(["archive", "init", str(data), "--key", str(missing)], capsys)
    assert (code, err) == (
        2,
        f"kontur: error: archive key {missing}: expected its folder {missing.parent} to exist, "
        "found none\n",
    )
    assert not data.exists() and not missing.parent.exists()
    code, out, err = _main(
        ["archive", "init", str(data), "--key", str(tmp_path / "new.key")], capsys
    )
    assert code == 0 and "created" in out and (tmp_path / "new.key").exists()


def test_archive_prove_names_the_argument_that_is_out_of_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--size -5`` read "--index: expected 0..-6, got 0"."""
    from kontur.archive import Archive

    data = tmp_path / "a"
    with Archive.open(data) as arc:
        pass
    code, _, err = _main(["archive", "prove", str(data), "--index", "0"], capsys)
    assert (code, err) == (
        2,
        "kontur: error: --index: expected a record to prove, got an archive with none yet\n",
    )
    with Archive.open(data) as arc:
        for n in range(3):
            arc.append("event", {"n": n})
    for size in ("-5", "0", "4"):
        code, _, err = _main(
            ["archive", "prove", str(data), "--index", "0", "--size", size], capsys
        )
        assert (code, err) == (
            2,
            f"kontur: error: --size: expected 1..3 (the archive's records), got {size}\n",
        )
    code, _, err = _main(["archive", "prove", str(data), "--index", "2", "--size", "2"], capsys)
    assert (code, err) == (2, "kontur: error: --index: expected 0..1, got 2\n")
    code, _, err = _main(
        ["archive", "prove", str(data), "--from-size", "1", "--to-size", "9"], capsys
    )
    assert (code, err) == (
        2,
        "kontur: error: --to-size: expected at most 3 (the archive's records), got 9\n",
    )
    code, out, _ = _main(["archive", "prove", str(data), "--index", "1", "--json", "-"], capsys)
    assert code == 0 and json.loads(out)["tree_size"] == 3


@pytest.mark.parametrize("by", ["\x1b[31mred", "a\u202eb", "", "x" * 201])
def test_an_export_by_a_name_a_screen_would_replay_is_refused(
    by: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "b.zip"
    args = ["archive", "export", str(tmp_path), "--camera", "c", "--from", "0", "--to", "1"]
    code, _, err = _main([*args, "--out", str(out), "--by", by], capsys)
    assert code == 2 and err.startswith("kontur: error: --by: expected a name of 1 to 200 ")
    assert not out.exists()
