"""The run manifest in the archive: one ``manifest`` record per start, changes as records.

Order of steps at a start (:func:`record_run`, called by the supervisor once the worker's
sandbox is measured and before any camera is read, so every decision can name the digest):

1. read the earlier manifests (:func:`stored_manifests`; SQLite selects the two kinds, so
   this costs one row per earlier start, not a scan of the history);
2. append the ``manifest`` record ``{sha256, manifest}``;
3. compare with the previous start's manifest (:func:`~kontur.runmanifest.model.changes`)
   and, when a ``placement.allowlist`` is configured, judge every changed inference-stack
   component since the last *approved* start (:func:`unapproved`): a runtime distribution
   or driver must be listed and match, an execution-provider set may change only with an
   approved runtime distribution. A start is approved unless its change record names an
   unapproved component, so an unapproved upgrade stays unapproved at every later start
   until the allow-list approves it or it is rolled back;
4. when anything changed, or something is unapproved, append a ``manifest_change`` record
   ``{manifest_index, manifest_sha256, previous, changes, baseline, unapproved}`` (plus
   ``unreadable_history`` when an earlier manifest does not parse: the start goes on, and
   with an allow-list nothing is approved);
5. commit both (:meth:`~kontur.archive.Archive.flush`).

The caller raises ``driver_unapproved`` for what :func:`record_run` found unapproved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kontur.archive import Archive, Record
from kontur.placement.allowlist import Allowlist, canonical_name, version_matches
from kontur.runmanifest.errors import ManifestInvalid
from kontur.runmanifest.model import Change, RunManifest, changes

__all__ = [
    "CHANGE_KIND",
    "MANIFEST_KIND",
    "RunRecorded",
    "StoredManifest",
    "record_run",
    "stored_manifests",
    "unapproved",
]

#: The archive record kinds.
MANIFEST_KIND = "manifest"
CHANGE_KIND = "manifest_change"


@dataclass(frozen=True)
class StoredManifest:
    """One archived manifest: its record, its start's ordinal (1-based) and approval."""

    run: int
    index: int
    at: float
    digest: str
    manifest: RunManifest
    change: dict[str, Any] | None
    """Its ``manifest_change`` record's payload (None: nothing changed, or the first)."""

    @property
    def approved(self) -> bool:
        """False when its start found an unapproved stack component."""
        return not (self.change or {}).get("unapproved")

    def to_json(self) -> dict[str, Any]:
        """``{run, index, at, sha256, manifest, change}``."""
        return {"run": self.run, "index": self.index, "at": self.at, "sha256": self.digest,
                "manifest": self.manifest.to_json(), "change": self.change}  # fmt: skip


def _parse(record: Record) -> RunManifest:
    try:
        return RunManifest.from_payload(record.payload)
    except ManifestInvalid as exc:
        raise ManifestInvalid(f"record {record.index}: {exc}") from None


def stored_manifests(archive: Archive) -> list[StoredManifest]:
    """Every archived manifest, oldest first, each with its change record."""
    found: list[StoredManifest] = []
    for r in archive.iter_records(kind=(MANIFEST_KIND, CHANGE_KIND)):
        if r.kind == MANIFEST_KIND:
            m = _parse(r)
            found.append(StoredManifest(len(found) + 1, r.index, r.at, m.digest(), m, None))
        elif found and r.payload.get("manifest_index") == found[-1].index:
            last = found[-1]
            found[-1] = StoredManifest(
                last.run, last.index, last.at, last.digest, last.manifest, dict(r.payload)
            )
    return found


def _judge(change: Change, table: dict[str, tuple[str, ...]], what: str, name: str) -> str | None:
    patterns = table.get(name)
    before = change.before or "nothing"
    if patterns is None:
        return (f"{what} {name}: changed from {before} to {change.after} since the last "
                f"approved start; expected it listed in placement.allowlist.{what}s, got no "
                "entry")  # fmt: skip
    if not any(version_matches(str(change.after), p) for p in patterns):
        return (f"{what} {name}: changed from {before} to {change.after}; expected a "
                f"version in {list(patterns)} (placement.allowlist.{what}s)")  # fmt: skip
    return None


def unapproved(found: Sequence[Change], allow: Allowlist) -> tuple[str, ...]:
    """One line per changed stack component the allow-list does not approve (see step 3)."""
    runtimes = {canonical_name(k): tuple(v) for k, v in allow.runtimes.items()}
    drivers = {k: tuple(v) for k, v in allow.drivers.items()}
    reasons: list[str] = []
    ort_changes = [c for c in found if c.component.startswith("runtime:onnxruntime")]
    for c in found:
        if not c.stack or c.after is None:
            continue  # removed: nothing new runs
        kind, _, name = c.component.partition(":")
        if kind == "runtime":
            reason = _judge(c, runtimes, "runtime", canonical_name(name))
        elif kind == "driver":
            reason = _judge(c, drivers, "driver", name)
        elif not ort_changes:  # the EP set changed under an unchanged distribution
            reason = (f"onnxruntime execution providers: changed from {c.before} to "
                      f"{c.after}; expected a change of the distribution that ships them, "
                      "got none")  # fmt: skip
        else:
            reason = None  # judged with the distribution that ships them
        if reason is not None:
            reasons.append(reason)
    return tuple(reasons)


@dataclass(frozen=True)
class RunRecorded:
    """What :func:`record_run` archived and found."""

    digest: str
    index: int
    changes: tuple[Change, ...]
    unapproved: tuple[str, ...]
    change_index: int | None


def _ref(m: StoredManifest | None) -> dict[str, Any] | None:
    return None if m is None else {"run": m.run, "index": m.index, "sha256": m.digest}


def _history(archive: Archive) -> tuple[list[StoredManifest], str | None]:
    """The earlier manifests, or none and why: a broken history must not stop recording."""
    try:
        return stored_manifests(archive), None
    except ManifestInvalid as exc:
        return [], str(exc)


def record_run(archive: Archive, manifest: RunManifest, allow: Allowlist | None) -> RunRecorded:
    """Archive ``manifest`` and its changes (see the module); ``allow`` None: none configured.

    An earlier manifest that does not parse leaves nothing to compare with: the change
    record says so (``unreadable_history``) and, with an allow-list, nothing is approved.
    """
    history, broken = _history(archive)
    previous = history[-1] if history else None
    baseline = next((m for m in reversed(history) if m.approved), None)
    digest = manifest.digest()
    rec = archive.append(MANIFEST_KIND, {"sha256": digest, "manifest": manifest.to_json()})
    found = changes(previous.manifest, manifest) if previous is not None else ()
    bad: tuple[str, ...] = ()
    if allow is not None and baseline is not None:
        bad = unapproved(changes(baseline.manifest, manifest), allow)
    elif allow is not None and broken is not None:
        bad = (f"earlier run manifests: expected them readable to judge this start's stack "
               f"against, got {broken}",)  # fmt: skip
    change_index = None
    if found or bad or broken:
        payload = {
            "manifest_index": rec.index,
            "manifest_sha256": digest,
            "previous": _ref(previous),
            "changes": [c.to_json() for c in found],
            "baseline": _ref(baseline),
            "unapproved": list(bad),
            **({"unreadable_history": broken} if broken else {}),
        }
        change_index = archive.append(CHANGE_KIND, payload).index
    archive.flush()
    return RunRecorded(digest, rec.index, found, bad, change_index)
