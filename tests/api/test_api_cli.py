"""``kontur user add/list/disable/token/revoke-token`` with ``--json -`` (issue 11 §3), and
the audit trail of those changes: archived when the archive is free, else queued in the user
store and sent to the supervisor by the running API."""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path

import pytest
from api_sim import CHEAP_HASHER, ROOMY, Supervisor, run_state, serve
from typer.testing import CliRunner, Result

from kontur.api import ApiContext, PipeOutbox, Unauthenticated, UserStore, create_app
from kontur.archive import Archive
from kontur.cli import app
from kontur.clock import ManualClock


def invoke(*args: str | Path, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], input=stdin)


def ok_json(*args: str | Path, stdin: str | None = None) -> tuple[dict[str, object], Result]:
    r = invoke(*args, "--json", "-", stdin=stdin)
    assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)
    return json.loads(r.stdout), r


def _login(data_dir: Path, name: str, password: str) -> str:
    store = UserStore.open(data_dir)
    try:
        return store.login(name, password, max_failed=5, lockout_s=60, ttl_s=60).principal.name
    finally:
        store.close()


def test_add_generates_a_password_and_shows_it_once(tmp_path: Path) -> None:
    doc, r = ok_json("user", "add", "ana", "--role", "operator", "--role", "viewer",
                     "--data-dir", tmp_path)  # fmt: skip
    assert doc["name"] == "ana" and doc["roles"] == ["operator", "viewer"]
    password = doc["password"]
    assert isinstance(password, str) and len(password) >= 20
    assert "password (shown once, store it now)" in r.stderr
    assert _login(tmp_path, "ana", password) == "ana"
    assert password.encode() not in (tmp_path / "users.sqlite").read_bytes()


def test_add_reads_the_password_from_stdin(tmp_path: Path) -> None:
    doc, r = ok_json("user", "add", "bo", "--role", "auditor", "--password-stdin",
                     "--data-dir", tmp_path, stdin="a long enough password\n")  # fmt: skip
    assert "password" not in doc and "password" not in r.stderr
    assert _login(tmp_path, "bo", "a long enough password") == "bo"


def test_list_token_revoke_and_disable(tmp_path: Path) -> None:
    ok_json("user", "add", "cy", "--role", "viewer", "--data-dir", tmp_path)
    doc, r = ok_json("user", "token", "cy", "--token-name", "grafana", "--data-dir", tmp_path)
    token = doc["token"]
    assert isinstance(token, str) and token.startswith("kontur_") and token in r.stderr
    store = UserStore.open(tmp_path, hasher=CHEAP_HASHER)
    assert store.authenticate_token(token).name == "cy"
    listing, _ = ok_json("user", "list", "--data-dir", tmp_path)
    assert listing["users"] == [
        {"name": "cy", "roles": ["viewer"], "disabled": False, "locked": False,
         "created": listing["users"][0]["created"], "tokens": ["grafana"]},  # type: ignore[index]
    ]  # fmt: skip
    doc, _ = ok_json("user", "disable", "cy", "--data-dir", tmp_path)
    assert doc["disabled"] is True
    with pytest.raises(Unauthenticated, match="disabled"):
        store.authenticate_token(token)
    doc, _ = ok_json(
        "user", "revoke-token", "cy", "--token-name", "grafana", "--data-dir", tmp_path
    )
    assert doc == {"name": "cy", "token_name": "grafana", "revoked": True}
    with pytest.raises(Unauthenticated, match="unknown or revoked"):
        store.authenticate_token(token)
    store.close()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["add", "ana", "--role", "root"], 2, "role: expected one of viewer, operator"),
        (["add", "Ana Smith", "--role", "viewer"], 2, "user name: expected [a-z][a-z0-9_.-]"),
        (["add", "ana", "--role", "viewer", "--password-stdin"], 2, "password: expected 12 to"),
        (
            ["add", "dup", "--role", "viewer"],
            1,
            "user: expected a new name, got 'dup', which exists",
        ),
        (["disable", "ghost"], 1, "user: expected an existing user, got 'ghost'"),
        (["token", "ghost", "--token-name", "t"], 1, "user: expected an existing user"),
        (["token", "dup", "--token-name", "Bad Name"], 2, "token name: expected"),
        (["revoke-token", "dup", "--token-name", "none"], 1, "token: expected a token of 'dup'"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    ok_json("user", "add", "dup", "--role", "viewer", "--data-dir", tmp_path)
    r = invoke("user", *args, "--data-dir", tmp_path, stdin="short\n")
    assert r.exit_code == code, (r.stdout, r.stderr)
    [line] = r.stderr.strip().splitlines()
    assert line.startswith("kontur: error: ") and message in line, line


def _audit_records(data_dir: Path) -> list[dict[str, object]]:
    with Archive.open_readonly(data_dir) as arc:
        return [r.payload for r in arc.iter_records() if r.kind == "audit"]


def test_changes_are_archived_when_the_archive_is_free(tmp_path: Path) -> None:
    Archive.open(tmp_path).close()
    ok_json("user", "add", "dee", "--role", "admin", "--data-dir", tmp_path)
    ok_json("user", "token", "dee", "--token-name", "ci", "--data-dir", tmp_path)
    records = _audit_records(tmp_path)
    assert [(r["action"], r["target"], r["detail"]) for r in records] == [
        ("users:admin", "user dee", "added with roles admin"),
        ("token_created", "user dee", "token ci"),
    ]
    assert records[0]["actor"] == f"cli:{getpass.getuser()}"


def test_changes_wait_while_a_perimeter_holds_the_archive_and_the_api_sends_them(
    tmp_path: Path,
) -> None:
    with Archive.open(tmp_path):  # the running perimeter is the one writer
        _, r = ok_json("user", "add", "eve", "--role", "viewer", "--data-dir", tmp_path)
        assert "a running perimeter archives it through its API" in r.stderr
    assert _audit_records(tmp_path) == []
    clock = ManualClock()
    read_fd, write_fd = os.pipe()
    supervisor = Supervisor(tmp_path, run_state(clock, ()), read_fd)
    users = UserStore.open(tmp_path, clock, CHEAP_HASHER)
    outbox = PipeOutbox(write_fd)
    try:
        with serve(create_app(ApiContext(tmp_path, users, outbox, clock, ROOMY))):
            ev = supervisor.audit(action="users:admin", target="user eve")
    finally:
        outbox.close()
        supervisor.stop()
        os.close(read_fd)
        users.close()
    assert ev.detail == "added with roles viewer" and ev.actor.startswith("cli:")
    store = UserStore.open(tmp_path, hasher=CHEAP_HASHER)
    assert store.drain_audit(lambda e: None) == 0  # sent once, then forgotten
    store.close()
