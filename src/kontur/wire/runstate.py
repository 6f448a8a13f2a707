"""The run-state snapshot: what the supervisor publishes for the API block to read (issue 11).

The supervisor (the only writer) replaces ``DATA_DIR/run/state.json`` atomically (write a
temporary file, fsync, ``os.replace``; mode 0600) about twice a second and when a pending
operator request changes. The API block only reads it, so it holds no channel to the worker,
the verifier or the gate (ADR 0014's edge table). Typed and frozen like every wire format: a
snapshot that does not parse is refused with the field that failed, never half-used.

What an operator acts on is in ``pending``; what the operator answers travels back as an
:class:`~kontur.wire.messages.OperatorVerdict` on the API's pipe to the supervisor.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kontur.wire.messages import Decision, WireError

__all__ = [
    "EXPORTS_DIR",
    "EXPORT_ID",
    "STATE_FILE",
    "BlockState",
    "CameraState",
    "PendingRequest",
    "RunState",
    "export_bundle_path",
    "read_run_state",
    "write_run_state",
]

#: Where the snapshot lives, relative to the data dir.
STATE_FILE = Path("run") / "state.json"

#: Where the supervisor puts the bundles of ``exports`` (0700; each bundle 0400), relative to
#: the data dir; the API serves them from there.
EXPORTS_DIR = Path("exports")
#: An export request id: random hex chosen by the API, the bundle's file name.
EXPORT_ID = r"^[0-9a-f]{32}$"


def export_bundle_path(data_dir: Path, request_id: str) -> Path:
    """``DATA_DIR/exports/<request_id>.zip``; ValueError for an id that is not :data:`EXPORT_ID`
    (checked again here, so no caller can build a path out of anything else)."""
    if not re.fullmatch(EXPORT_ID, request_id):
        raise ValueError(f"export request id: expected 32 hex digits, got {request_id[:40]!r}")
    return Path(data_dir) / EXPORTS_DIR / f"{request_id}.zip"


_CONFIG = ConfigDict(frozen=True, extra="forbid", strict=False, allow_inf_nan=False)


class _Model(BaseModel):
    model_config = _CONFIG


class CameraState(_Model):
    """One camera's counters so far (the same figures as the JSON summary's ``cameras``)."""

    id: str
    frames: int = Field(ge=0)
    frames_skipped: int = Field(default=0, ge=0)
    gops: dict[str, int] = {}
    detections: int = Field(default=0, ge=0)
    verifier_agree: int = Field(default=0, ge=0)
    verifier_disagree: int = Field(default=0, ge=0)
    decisions: dict[str, int] = {}
    classes: dict[str, int] = {}
    latency_s: tuple[float, ...] = ()
    """Recent frame-to-decision latencies (for the histogram), newest last, at most 256."""
    error: str | None = None
    state: str = "NORMAL"
    """The camera's effective degradation state: the more severe of the site's and its own
    (ADR 0040)."""


class BlockState(_Model):
    """One process in the supervisor's table."""

    name: str
    pid: int | None
    alive: bool
    restarts: int = Field(ge=0)


class PendingRequest(_Model):
    """An OPERATOR decision waiting for a person (issue 11 §6)."""

    id: str = Field(pattern=r"^op-[0-9]{1,16}$")
    """``op-<archive index of the decision record>``."""
    decision_index: int = Field(ge=0)
    decision: Decision
    deadline: float
    """Wall time after which kontur fails safe (the restricted alternative, or nothing)."""
    two_person: bool = False
    confirmations: tuple[str, ...] = ()
    """Operators who confirmed so far (four-eyes: a second, different one is needed)."""
    gop_verdicts: dict[str, str] = {}
    """GOP index → verdict, for the GOPs the decision rests on."""
    segments: tuple[str, ...] = ()
    """sha256 of the archived segments of those GOPs (for a snapshot, if the user may see
    video)."""


class RunState(_Model):
    """The whole snapshot."""

    version: Literal[1] = 1
    at: float
    site: str
    started_at: float
    state: str
    """The degradation state (``NORMAL``, ``DEGRADED``, ...)."""
    transitions: int = Field(default=0, ge=0)
    triggers: dict[str, Annotated[int, Field(ge=0)]] = {}
    """Degradation trigger → times raised this run (``accelerator_reset``, ``worker_crash``…)."""
    cameras: tuple[CameraState, ...] = ()
    blocks: tuple[BlockState, ...] = ()
    pending: tuple[PendingRequest, ...] = ()
    resolved: dict[str, str] = {}
    """Recently resolved request id → how (``confirmed by ana``, ``rejected by bo``,
    ``expired``), so an API call can tell its caller who won."""
    exports: dict[str, str] = {}
    """Recent export requests (:class:`~kontur.wire.messages.ExportRequest`) of this run:
    request id → ``pending``, ``ready <bundle sha256>`` or ``failed <one-line reason>``."""
    incidents: dict[str, str] = {}
    """Recent incident playbooks (:class:`~kontur.wire.messages.IncidentRequest`, ADR 0029):
    request id → ``pending``, ``done <one line>`` or ``failed <one line>``, each published
    only once its ``incident`` record is committed; the last 100."""
    release: str | None = None
    runtime: str | None = None
    archive_records: int = Field(default=0, ge=0)
    archive_head: str | None = None
    queue_depths: dict[str, int] = {}


def write_run_state(data_dir: Path, state: RunState) -> None:
    """Replace the snapshot atomically (0600)."""
    path = Path(data_dir) / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".state-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(state.model_dump_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_run_state(data_dir: Path) -> RunState | None:
    """The current snapshot; None when no run has published one. WireError if malformed."""
    path = Path(data_dir) / STATE_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WireError(f"{path}: expected a readable run state, got {exc.strerror}") from None
    try:
        # JSON mode: the strict nested wire models (Decision) take "OPERATOR" and lists there
        return RunState.model_validate_json(text)
    except (ValueError, ValidationError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WireError(f"{path}: expected a run-state snapshot, got {first}") from None


class RunStateReader:
    """:func:`read_run_state` for a reader that asks often (the API): the snapshot is parsed
    again only when the file was replaced (a new inode, time or size), since the supervisor
    only ever replaces it whole."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = Path(data_dir)
        self._lock = threading.Lock()
        self._key: tuple[int, int, int] | None = None
        self._state: RunState | None = None

    def read(self) -> RunState | None:
        """The current snapshot (None when none was published); WireError if malformed."""
        path = self._data_dir / STATE_FILE
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise WireError(f"{path}: expected a readable run state, got {exc.strerror}") from None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if key == self._key:
                return self._state
        state = read_run_state(self._data_dir)
        with self._lock:
            self._key, self._state = key, state
        return state
