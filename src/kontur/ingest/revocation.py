"""Revocations as the archive records them: the authority over ``inventory.sqlite`` (ADR 0021).

``inventory.sqlite`` is a plain SQLite file: whoever can write the data dir can drop its
"irreversible" triggers and clear a camera's revocation. The archive cannot be rewritten
unseen (signed checkpoints, a witness: ADR 0015), and every revocation reaches it as a
``camera`` record (``{"action": "revoke", "camera_id", "reason", "at", "event_id"}``, ADR
0013). So a camera the archive shows revoked is revoked, whatever the inventory says.

A pure core: :func:`scan` is fed the archive's ``camera`` records (read them with
``Archive.iter_records(kind="camera")``) and returns :class:`Revocations`: the revoked camera
ids and the keys their ``enrol`` records named (a revoked key stays revoked under any id).
:meth:`Revocations.disagreements` compares them with the inventory's view; a camera the archive
revoked and the inventory does not is the finding ``inventory_tampered``. :meth:`to_json` and
:meth:`from_json` carry the set to an ingest process in its spec.

Errors::

    IngestError
    └── RevocationRecordInvalid     a camera record that is not what kontur writes
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from kontur.ingest.errors import IngestError
from kontur.ingest.freshness import EnrolledCamera

__all__ = ["RevocationRecordInvalid", "Revocations", "Revoked", "scan"]


class RevocationRecordInvalid(IngestError):
    """A ``camera`` record, or a revocation in a spec, that is not what kontur writes."""


class _Record(Protocol):
    """What :func:`scan` reads of an archive record (:class:`kontur.archive.Record`)."""

    @property
    def index(self) -> int: ...

    @property
    def kind(self) -> str: ...

    @property
    def payload(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Revoked:
    """One revocation as archived: the camera, the record's index, when, why, and its key."""

    camera_id: str
    index: int
    at: str
    reason: str
    key_sha256: str | None = None
    """SHA-256 of the key the archive enrolled for this camera (None if no enrol record)."""

    def describe(self) -> str:
        """One line naming the archive record, for a GOP's reasons and the findings."""
        when = f" at {self.at}" if self.at else ""
        return (
            f"camera {self.camera_id} was revoked{when}: {self.reason} "
            f"(archive record {self.index})"
        )


@dataclass(frozen=True, slots=True)
class Revocations:
    """Revoked camera ids and revoked key fingerprints, each with its archive record."""

    cameras: Mapping[str, Revoked] = field(default_factory=dict)
    keys: Mapping[str, Revoked] = field(default_factory=dict)

    def find(self, camera_id: str, key_sha256s: Iterable[str | None] = ()) -> Revoked | None:
        """The revocation of ``camera_id``, else of any of the keys given, else None."""
        hit = self.cameras.get(camera_id)
        if hit is not None:
            return hit
        return next((self.keys[k] for k in key_sha256s if k is not None and k in self.keys), None)

    def with_revoked(self, entry: Revoked) -> Revocations:
        """These revocations plus ``entry`` (an earlier record for the camera wins)."""
        if entry.camera_id in self.cameras:
            return self
        keys = dict(self.keys)
        if entry.key_sha256 is not None:
            keys.setdefault(entry.key_sha256, entry)
        return Revocations({**self.cameras, entry.camera_id: entry}, keys)

    def disagreements(
        self, inventory: Mapping[str, EnrolledCamera | None]
    ) -> list[tuple[str, Revoked]]:
        """``(camera id, revocation)`` for each inventory entry (by camera id; None: no row)
        that does not show a revocation the archive records.

        A camera missing from the inventory, or present and not revoked, disagrees; so does
        one enrolled under another id with a revoked key.
        """
        out: list[tuple[str, Revoked]] = []
        for camera_id, camera in sorted(inventory.items()):
            if camera is not None and camera.revoked_at is not None:
                continue
            key = camera.key_fingerprint if camera is not None else None
            hit = self.find(camera_id, (key,))
            if hit is not None:
                out.append((camera_id, hit))
        return out

    def to_json(self) -> list[dict[str, Any]]:
        """The revocations as a JSON list (for an ingest spec)."""
        return [
            {"camera_id": r.camera_id, "index": r.index, "at": r.at, "reason": r.reason,
             "key_sha256": r.key_sha256}
            for r in self.cameras.values()
        ]  # fmt: skip

    @classmethod
    def from_json(cls, rows: object) -> Revocations:
        """Parse :meth:`to_json`; RevocationRecordInvalid on anything else."""
        if rows is None:
            return cls()
        if not isinstance(rows, list):
            raise RevocationRecordInvalid(
                f"revocations: expected a list, got {type(rows).__name__}"
            )
        out = cls()
        for row in rows:
            out = out.with_revoked(_revoked_of(row))
        return out


def scan(records: Iterable[_Record]) -> Revocations:
    """The revocations in the archive's ``camera`` records (other kinds are skipped).

    A revocation is irreversible: a later ``enrol`` of the same id or key does not undo it.
    RevocationRecordInvalid for a ``revoke`` record without a camera id and a reason.
    """
    enrolled: dict[str, str] = {}
    revoked: list[Revoked] = []
    for rec in records:
        if rec.kind != "camera":
            continue
        p = rec.payload
        action = p.get("action")
        if action == "enrol" and isinstance(p.get("key_sha256"), str):
            enrolled.setdefault(str(p.get("camera_id")), p["key_sha256"])
        elif action == "revoke":
            revoked.append(_revoked_of({**p, "index": rec.index}))
    out = Revocations()
    for r in revoked:
        out = out.with_revoked(replace(r, key_sha256=enrolled.get(r.camera_id)))
    return out


def _revoked_of(row: object) -> Revoked:
    if not isinstance(row, Mapping):
        raise RevocationRecordInvalid(f"revocation: expected an object, got {type(row).__name__}")
    camera_id, index, reason = row.get("camera_id"), row.get("index"), row.get("reason")
    if not isinstance(camera_id, str) or not camera_id:
        raise RevocationRecordInvalid(f"revocation: expected a camera_id, got {camera_id!r}")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise RevocationRecordInvalid(f"revocation: expected an index >= 0, got {index!r}")
    if not isinstance(reason, str):
        raise RevocationRecordInvalid(f"revocation: expected a reason, got {reason!r}")
    key = row.get("key_sha256")
    if key is not None and not isinstance(key, str):
        raise RevocationRecordInvalid(f"revocation: expected a key_sha256, got {key!r}")
    return Revoked(camera_id, index, str(row.get("at") or ""), reason, key)
