"""Request files (``DATA_DIR/run/incidents``, ADR 0029): a trust boundary.

Whatever lies there is refused unless it is exactly a fresh request named after its id: links,
dirs, FIFOs, huge files, wrong types, stale or mismatched requests. Each refusal is archived
by the desk as a ``refused`` incident and the entry removed; the supervisor never crashes and
a good request behind the bad ones still runs. Vectors are named after what they model.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kontur.archive import Archive
from kontur.clock import SystemClock
from kontur.incident.spool import (
    MAX_PER_TAKE,
    MAX_REQUEST_BYTES,
    TEMP_GRACE_S,
    Refused,
    drop,
    spool_dir,
    take,
    withdraw,
)
from kontur.runtime.incidents import IncidentDesk, SiteHooks
from kontur.wire.messages import IncidentRequest

RID = "ab" * 16


def _request(rid: str = RID, at: float | None = None, **fields: object) -> IncidentRequest:
    fields = {"kind": "verify_archive", **fields}
    return IncidentRequest(
        request_id=rid, by="cli:ana", at=time.time() if at is None else at, **fields
    )


def _json(rid: str = RID, **over: object) -> bytes:
    req = _request(rid).model_dump(mode="json")
    req.update(over)
    return json.dumps(req).encode()


def _file(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda d: (d / name).write_bytes(data)


def _symlink(d: Path) -> None:
    target = d.parent / "secret.txt"
    target.write_text("not for the supervisor")
    (d / f"{RID}.json").symlink_to(target)


def _dir(d: Path) -> None:
    (d / f"{RID}.json").mkdir()
    (d / f"{RID}.json" / "inner").write_text("x")


def _fifo(d: Path) -> None:
    os.mkfifo(d / f"{RID}.json")


def _old_temp(d: Path) -> None:
    path = d / ".incident-abc.tmp"
    path.write_bytes(_json())
    old = time.time() - TEMP_GRACE_S - 10
    os.utime(path, (old, old))


HOSTILE: dict[str, tuple[Callable[[Path], None], str]] = {
    "symlink_to_a_secret": (_symlink, "expected a regular file, got a symbolic link"),
    "directory_named_like_a_request": (_dir, "expected a regular file, got a directory"),
    "fifo_that_would_block": (_fifo, "expected a regular file, got a FIFO"),
    "huge_file": (
        _file(f"{RID}.json", b" " * (MAX_REQUEST_BYTES + 1)),
        f"expected at most {MAX_REQUEST_BYTES} bytes, got more",
    ),
    "not_json": (_file(f"{RID}.json", b"rm -rf /"), "expected an incident request, got <root>"),
    "wrong_types": (
        _file(f"{RID}.json", _json(camera=5, kind="preserve")),
        "expected an incident request, got camera: Input should be a valid string",
    ),
    "unknown_field": (
        _file(f"{RID}.json", _json(shell="sh")),
        "expected an incident request, got shell: Extra inputs are not permitted",
    ),
    "unknown_playbook": (
        _file(f"{RID}.json", _json(kind="wipe_archive")),
        "expected an incident request, got kind: Input should be",
    ),
    "path_trick_in_the_name": (
        _file("..json", _json()),
        "expected a file named <32 hex digits>.json, got '..json'",
    ),
    "newline_in_the_name": (
        _file("x\n.json", _json()),
        "expected a file named <32 hex digits>.json, got 'x\\n.json'",
    ),
    "id_that_is_not_the_name": (
        _file(f"{RID}.json", _json(rid="cd" * 16)),
        f"expected request_id {RID} (the file's name), got {'cd' * 16}",
    ),
    "stale_request_from_a_dead_site": (
        _file(f"{RID}.json", _json(at=time.time() - 3600)),
        "expected a request made within 300 s of now, got one made",
    ),
    "temporary_file_left_by_a_dead_cli": (
        _old_temp,
        f"expected a request, got a temporary file older than {TEMP_GRACE_S:g} s",
    ),
}


def test_a_dropped_request_is_private_complete_and_taken_once(tmp_path: Path) -> None:
    req = _request()
    path = drop(tmp_path, req)
    assert path == tmp_path / "run" / "incidents" / f"{RID}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert take(tmp_path, time.time()) == [req]
    assert list(spool_dir(tmp_path).iterdir()) == []
    assert take(tmp_path, time.time()) == []


def test_a_request_not_taken_is_withdrawn(tmp_path: Path) -> None:
    drop(tmp_path, _request())
    assert withdraw(tmp_path, RID) is True
    assert withdraw(tmp_path, RID) is False
    with pytest.raises(ValueError, match="expected 32 hex digits"):
        withdraw(tmp_path, "../../archive")


def test_a_young_temporary_file_is_a_cli_mid_write(tmp_path: Path) -> None:
    folder = spool_dir(tmp_path)
    folder.mkdir(parents=True)
    (folder / ".incident-xyz.tmp").write_bytes(b'{"type": "incid')
    assert take(tmp_path, time.time()) == []
    assert (folder / ".incident-xyz.tmp").exists()


@pytest.mark.parametrize("vector", sorted(HOSTILE))
def test_hostile_entries_are_refused_and_removed(tmp_path: Path, vector: str) -> None:
    make, why = HOSTILE[vector]
    folder = spool_dir(tmp_path)
    folder.mkdir(parents=True)
    make(folder)
    [got] = take(tmp_path, time.time())
    assert isinstance(got, Refused)
    assert why in got.reason, got.reason
    assert got.removed and "\n" not in got.reason
    assert list(folder.iterdir()) == []
    if vector == "symlink_to_a_secret":
        assert (tmp_path / "run" / "secret.txt").read_text() == "not for the supervisor"


def test_at_most_a_few_entries_are_taken_per_tick(tmp_path: Path) -> None:
    for n in range(MAX_PER_TAKE + 3):
        drop(tmp_path, _request(f"{n:032x}"))
    assert len(take(tmp_path, time.time())) == MAX_PER_TAKE
    assert len(take(tmp_path, time.time())) == 3


def test_the_desk_archives_refusals_and_still_runs_the_good_request(data: Path) -> None:
    folder = spool_dir(data)
    folder.mkdir(parents=True, exist_ok=True)
    HOSTILE["huge_file"][0](folder)
    (folder / "junk.json").write_bytes(b"\x00" * 10)
    good = _request("0" * 32)
    drop(data, good)
    with Archive.open(data) as arc:
        hooks = SiteHooks(
            revoke=lambda c, r: None, worker_platform=lambda: None, cpu_allowed=lambda: True,
            move_to_cpu=lambda why: None, exports=None,
        )  # fmt: skip
        desk = IncidentDesk(arc, data, SystemClock(), hooks)
        assert desk.tick(time.monotonic()) is True
        deadline = time.monotonic() + 60
        while desk.pending():
            assert time.monotonic() < deadline
            time.sleep(0.05)
            desk.tick(time.monotonic())
        status = desk.status
        arc.flush()
        records = [r.payload for r in arc.iter_records(kind="incident")]
    assert status[RID] == f"failed refused: expected at most {MAX_REQUEST_BYTES} bytes, got more"
    assert status["0" * 32].startswith("done archive OK")
    refused = [p for p in records if p["outcome"] == "refused"]
    assert [(p["entry"], p["request_id"], p["via"]) for p in refused] == [
        (f"'{RID}.json'", RID, "cli"),
        ("'junk.json'", None, "cli"),
    ]
    assert [p["outcome"] for p in records if p["request_id"] == "0" * 32] == ["accepted", "done"]
    assert list(folder.iterdir()) == []
