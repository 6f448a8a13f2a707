"""``kontur user …``: the API's users and machine tokens (issue 11 §3).

Mounted by :mod:`kontur.cli` as ``app.add_typer(user_app, name="user")``. There is no default
user and no default password: ``user add`` reads the password from stdin
(``--password-stdin``) or generates one and prints it once; ``user token`` prints a machine
token once (only its SHA-256 is kept).

Every change is an audit record (issue 11 §5): it is queued in the user store, then appended
to the archive as an ``audit`` record when the archive is free; while a perimeter holds the
archive, its API block sends the queued events to the supervisor, which archives them.
Exit codes: 0 done, 1 refused (a name taken, an unknown user or token), 2 bad input.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from kontur._cli import DataDirOpt, JsonOut, err, fail, human, write_json
from kontur.errors import KonturError

if TYPE_CHECKING:
    from kontur.api.users import UserStore

__all__ = ["user_app"]

user_app = typer.Typer(
    help="API users, roles and machine tokens.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_T = TypeVar("_T")

DataDir = DataDirOpt
TokenName = Annotated[str, typer.Option("--token-name", help="The token's name, e.g. the machine.")]


def _with_store(data_dir: Path | None, action: Callable[[UserStore], _T]) -> _T:
    """Run ``action`` on the data dir's user store; a kontur error becomes one line."""
    from kontur.api.users import UserStore
    from kontur.ingest.inventory import default_data_dir

    try:
        store = UserStore.open(data_dir if data_dir is not None else default_data_dir())
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    except OSError as exc:
        fail(f"{exc.filename or 'data dir'}: expected a writable data dir, got {exc.strerror}")
    try:
        return action(store)
    except KonturError as exc:
        fail(str(exc), exc.exit_code)
    finally:
        store.close()


def _audit(store: UserStore, action: str, target: str, detail: str) -> None:
    """Queue the change's audit event, then archive the queue if the archive is free."""
    from kontur.wire.messages import AuditEvent

    store.queue_audit(
        AuditEvent(
            actor=f"cli:{_whoami()}"[:128],
            action=action,
            outcome="ok",
            target=target,
            detail=detail,
            at=store.clock.wall(),
        )
    )
    _archive_queue(store)


def _archive_queue(store: UserStore) -> None:
    from kontur.archive import Archive, ArchiveError, ArchiveLocked
    from kontur.wire.messages import AuditEvent

    data_dir = store.path.parent
    note = "note: the audit record waits in users.sqlite: "
    if not (data_dir / "archive.sqlite").exists():
        err.print(
            note + "no archive yet (the first run's API sends it)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return
    try:
        with Archive.open(data_dir) as arc:

            def append(event: AuditEvent) -> None:
                arc.append("audit", event.model_dump(mode="json"))

            store.drain_audit(append, before_commit=arc.flush)
    except ArchiveLocked:
        err.print(
            note + "a running perimeter archives it through its API",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    except ArchiveError as exc:
        err.print(
            note + f"the archive refused it ({exc})", markup=False, highlight=False, soft_wrap=True
        )


def _whoami() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The user's name ([a-z][a-z0-9_.-]{0,63}).")],
    role: Annotated[
        list[str],
        typer.Option(
            "--role",
            help="viewer | operator | investigator | auditor | admin | integrator (repeat).",
        ),
    ],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (one line).")
    ] = False,
    data_dir: DataDir = None,
    json_out: JsonOut = None,
) -> None:
    """Add a user; without --password-stdin a password is generated and printed once."""
    from kontur.api.users import generate_password

    password = _read_password() if password_stdin else generate_password()

    def add(store: UserStore) -> dict[str, Any]:
        user = store.add_user(name, role, password)
        _audit(
            store, "users:admin", f"user {user.name}", f"added with roles {', '.join(user.roles)}"
        )
        return user.to_json(store.clock.wall())

    result = _with_store(data_dir, add)
    con = human(json_out)
    con.print(
        f"user {name}: added with roles {', '.join(result['roles'])}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if not password_stdin:
        result["password"] = password
        con.print(
            f"password (shown once, store it now): {password}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if json_out is not None:
        write_json(json_out, result)


def _read_password() -> str:
    raw = sys.stdin.buffer.readline()
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        fail("password: expected UTF-8 text on stdin, got bytes that are not")
    return line[:-1] if line.endswith("\n") else line


@user_app.command("list")
def user_list(data_dir: DataDir = None, json_out: JsonOut = None) -> None:
    """Every user: roles, disabled or locked, token names."""

    def listing(store: UserStore) -> list[dict[str, Any]]:
        now = store.clock.wall()
        return [u.to_json(now) for u in store.list_users()]

    users = _with_store(data_dir, listing)
    con = human(json_out)
    if not users:
        con.print(
            "no users (add one with `kontur user add NAME --role ROLE`)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    for u in users:
        flags = [f for f in ("disabled", "locked") if u[f]]
        con.print(
            f"{u['name']}: {', '.join(u['roles'])}"
            + (f" [{', '.join(flags)}]" if flags else "")
            + (f", tokens {', '.join(u['tokens'])}" if u["tokens"] else ""),
            markup=False,
            highlight=False,
        )
    if json_out is not None:
        write_json(json_out, {"users": users})


@user_app.command("disable")
def user_disable(
    name: Annotated[str, typer.Argument(help="The user to disable.")],
    data_dir: DataDir = None,
    json_out: JsonOut = None,
) -> None:
    """Disable a user: sessions end and tokens stop working at once."""

    def disable(store: UserStore) -> dict[str, Any]:
        user = store.disable_user(name)
        _audit(store, "users:admin", f"user {user.name}", "disabled")
        return user.to_json(store.clock.wall())

    result = _with_store(data_dir, disable)
    human(json_out).print(f"user {name}: disabled", markup=False, highlight=False, soft_wrap=True)
    if json_out is not None:
        write_json(json_out, result)


@user_app.command("token")
def user_token(
    name: Annotated[str, typer.Argument(help="The user the token acts as.")],
    token_name: TokenName,
    data_dir: DataDir = None,
    json_out: JsonOut = None,
) -> None:
    """Create a named machine token (Authorization: Bearer …), printed once."""

    def create(store: UserStore) -> str:
        token = store.create_token(name, token_name)
        _audit(store, "token_created", f"user {name}", f"token {token_name}")
        return token

    token = _with_store(data_dir, create)
    con = human(json_out)
    con.print(
        f"token {token_name} of {name} (shown once, store it now):",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    con.print(token, markup=False, highlight=False, soft_wrap=True)
    if json_out is not None:
        write_json(json_out, {"name": name, "token_name": token_name, "token": token})


@user_app.command("revoke-token")
def user_revoke_token(
    name: Annotated[str, typer.Argument(help="The token's user.")],
    token_name: TokenName,
    data_dir: DataDir = None,
    json_out: JsonOut = None,
) -> None:
    """Revoke a machine token; it stops working at once."""

    def revoke(store: UserStore) -> None:
        store.revoke_token(name, token_name)
        _audit(store, "token_revoked", f"user {name}", f"token {token_name}")

    _with_store(data_dir, revoke)
    human(json_out).print(
        f"token {token_name} of {name}: revoked", markup=False, highlight=False, soft_wrap=True
    )
    if json_out is not None:
        write_json(json_out, {"name": name, "token_name": token_name, "revoked": True})
