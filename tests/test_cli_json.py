"""Issue 9, 5c: one ``--json PATH|-`` convention on every command.

``--json PATH`` writes the JSON to PATH and the usual human output still shows on stdout;
``--json -`` writes the JSON to stdout, which then holds nothing else (the human output goes
to stderr). The test walks the typer app, so a command added without the option fails here.
``archive …`` is covered by the archive's own CLI tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner, Result

from kontur.cli import app

SKIPPED_GROUPS = ("archive",)


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    subs = getattr(command, "commands", None)
    if subs is None:
        yield " ".join(path), command
        return
    for name, sub in sorted(subs.items()):
        if not path and name in SKIPPED_GROUPS:
            continue
        yield from _walk(sub, (*path, name))


COMMANDS = dict(_walk(get_command(app)))


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def ok(*args: str | Path) -> Result:
    r = invoke(*args)
    assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)
    return r


# --- what each cheap command needs before it can run --------------------------------------


def _site(tmp: Path) -> Path:
    data = tmp / "data"
    ok("camera", "init-ca", "--data-dir", data)
    return data


def _enrolled(tmp: Path) -> Path:
    data = _site(tmp)
    ok("camera", "enroll", "cam1", "--issue", "--out", tmp / "cam-keys", "--data-dir", data)
    return data


def _release(tmp: Path) -> tuple[Path, Path]:
    ok("model", "keygen", "--out", tmp / "keys")
    model = tmp / "tiny.onnx"
    model.write_bytes(bytes(range(256)) * 16)  # the release layer signs bytes, never parses
    ok(
        "model", "release", model, "--format", "yolox", "--name", "tiny", "--version", "1",
        "--key", tmp / "keys" / "release-signing.key", "--out", tmp / "rel",
    )  # fmt: skip
    return tmp / "keys" / "release-signing.pub", tmp / "rel"


def _verify(tmp: Path) -> list[str | Path]:
    pub, rel = _release(tmp)
    return ["model", "verify", rel, "--pub", pub, "--name", "tiny"]


def _install(tmp: Path) -> list[str | Path]:
    pub, rel = _release(tmp)
    return ["model", "install", rel, "--pub", pub, "--name", "tiny", "--store", tmp / "store"]


def _model_release(tmp: Path) -> list[str | Path]:
    ok("model", "keygen", "--out", tmp / "keys")
    (tmp / "m.onnx").write_bytes(b"\x08\x07" * 512)
    return [
        "model", "release", tmp / "m.onnx", "--format", "yolox", "--name", "m", "--version",
        "3", "--key", tmp / "keys" / "release-signing.key", "--out", tmp / "rel",
    ]  # fmt: skip


#: Commands cheap enough to run here, each with the keys its JSON must hold. The others
#: (demo, eval mot, placement explain, sign, verify) run real footage in their own tests.
RUNS: dict[str, tuple[Callable[[Path], list[str | Path]], set[str]]] = {
    "version": (lambda t: ["version"], {"version"}),
    "camera init-ca": (
        lambda t: ["camera", "init-ca", "--data-dir", t / "data"],
        {"ca_cert", "ca_sha256"},
    ),
    "camera enroll": (
        lambda t: ["camera", "enroll", "cam1", "--issue", "--out", t / "k", "--data-dir", _site(t)],
        {"camera", "issued_key"},
    ),
    "camera list": (lambda t: ["camera", "list", "--data-dir", _enrolled(t)], {"cameras"}),
    "camera revoke": (
        lambda t: ["camera", "revoke", "cam1", "--reason", "stolen", "--data-dir", _enrolled(t)],
        {"camera"},
    ),
    "model keygen": (lambda t: ["model", "keygen", "--out", t / "k"], {"public_key"}),
    "model release": (_model_release, {"name", "version", "digest", "directory"}),
    "model verify": (_verify, {"valid", "digest", "signer"}),
    "model install": (_install, {"valid", "installed", "store"}),
}


def test_the_walk_found_every_command() -> None:
    assert {"demo", "version", "sign", "verify", "placement explain", "eval mot"} <= set(COMMANDS)
    assert {"camera list", "model verify"} <= set(COMMANDS)
    assert not [c for c in COMMANDS if c.startswith("archive")]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_takes_json_path_or_dash(name: str) -> None:
    params = [p for p in COMMANDS[name].params if "--json" in getattr(p, "opts", ())]
    assert len(params) == 1, f"{name}: expected a --json option, got {len(params)}"
    [option] = params
    assert not option.is_flag and option.nargs == 1, f"{name}: --json must take a value"
    assert option.metavar == "PATH|-"
    # a value left out (the old bare flag) is refused in one line, before anything runs
    r = invoke(*name.split(), "--json", "--no-such-option")
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert r.stderr.strip() == (
        "kontur: error: --json: expected PATH or '-', got the option '--no-such-option'"
    )


@pytest.mark.parametrize("name", sorted(RUNS))
def test_json_dash_makes_stdout_pure_json(name: str, tmp_path: Path) -> None:
    args, keys = RUNS[name][0](tmp_path), RUNS[name][1]
    r = ok(*args, "--json", "-")
    doc = json.loads(r.stdout)
    assert isinstance(doc, dict) and keys <= set(doc), doc
    assert r.stderr.strip(), "the human output goes to stderr"


@pytest.mark.parametrize("name", sorted(RUNS))
def test_json_path_writes_the_file_and_keeps_the_human_output(name: str, tmp_path: Path) -> None:
    args, keys = RUNS[name][0](tmp_path), RUNS[name][1]
    target = tmp_path / "out.json"
    r = ok(*args, "--json", target)
    assert keys <= set(json.loads(target.read_text()))
    assert r.stdout.strip(), "the human output still shows"
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.stdout)


def test_an_unwritable_json_path_is_one_line(tmp_path: Path) -> None:
    r = invoke("version", "--json", tmp_path / "no-such-dir" / "v.json")
    assert r.exit_code == 2
    assert (
        r.stderr.startswith("kontur: error: --json ")
        and "expected a path in an existing" in r.stderr
    )
    r = invoke("version", "--json", tmp_path)  # a directory
    assert r.exit_code == 2 and "expected a file path, got a directory" in r.stderr


def test_an_unwritable_json_path_is_refused_before_the_work(tmp_path: Path) -> None:
    """``sign`` wrote the signed file, then exited 2 for the JSON: a caller took the signing
    for failed. The --json path is checked first, and nothing is written."""
    out = tmp_path / "signed.mp4"
    r = invoke(
        "sign", tmp_path / "in.mp4", "--key", tmp_path / "k", "--cert", tmp_path / "c",
        "--out", out, "--json", tmp_path / "nodir" / "x.json",
    )  # fmt: skip
    assert r.exit_code == 2 and "--json" in r.stderr and not out.exists()
