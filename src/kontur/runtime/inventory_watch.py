"""The camera inventory as one run sees it, held to the archive's revocations (ADR 0021).

The archive is the authority: a revocation it records reaches the camera's ingest, which holds
it whatever ``inventory.sqlite`` says later; a camera the archive revoked and the inventory does
not is an edited inventory, archived once as an ``inventory_tampered`` event. Used at start by
:func:`kontur.runtime.plan.build_plan` (strictness, the revocations scanned at start) and while
the blocks run by :class:`~kontur.runtime.perimeter.Perimeter` (``kontur camera revoke`` made
during the run, the incident desk's revocations).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from kontur.archive import Archive
from kontur.clock import Clock
from kontur.config import CameraConfig
from kontur.ingest.inventory import INVENTORY_DB, Inventory
from kontur.ingest.revocation import Revocations, scan
from kontur.wire import ControlMessage
from kontur.wire.channel import Outbox

__all__ = ["InventoryWatch"]

log = logging.getLogger("kontur.perimeter")


class InventoryWatch:
    """The run's inventory (opened on first use) and the revocations its archive records."""

    def __init__(self, data_dir: Path, clock: Clock, archive: Archive, notes: list[str]) -> None:
        self.data_dir = data_dir
        self.clock = clock
        self.archive = archive
        self.notes = notes
        """The run's notes: an edited inventory is noted there too."""
        self.revocations = Revocations()
        """The archive's revocations known to this run (the authority, ADR 0021)."""
        self._inventory: Inventory | None = None
        self._scanned = 0
        self._tampered: set[str] = set()

    @property
    def inventory(self) -> Inventory:
        """The inventory, opened on first use."""
        if self._inventory is None:
            self._inventory = Inventory.open(self.data_dir, self.clock)
        return self._inventory

    def close(self) -> None:
        if self._inventory is not None:
            self._inventory.close()

    def strict(self, cam: CameraConfig) -> bool:
        """Strict (verify before decode): configured critical, or enrolled critical."""
        enrolled = self.inventory.camera(cam.id)
        return cam.critical or (enrolled is not None and enrolled.critical)

    def record(self) -> int:
        """Archive the inventory changes (enrolments, revocations) not archived yet."""
        return self.inventory.drain_to_archive(self.archive)

    def _scan(self) -> Revocations:
        """The revocations in the archive's camera records not scanned yet."""
        size = self.archive.records
        records = self.archive.iter_records(self._scanned, kind="camera")
        found = scan(r for r in records if r.index < size)
        self._scanned = size
        return found

    def scan_at_start(self) -> Revocations:
        """Every revocation the archive records now: what each camera's ingest starts with."""
        self.revocations = self._scan()
        return self.revocations

    def sync(self, to_ingest: Mapping[str, Outbox]) -> None:
        """A revocation archived during the run reaches its camera's ingest, which then holds
        it whatever ``inventory.sqlite`` says later."""
        for cam_id, r in self._scan().cameras.items():
            if cam_id in self.revocations.cameras:
                continue
            self.revocations = self.revocations.with_revoked(r)
            out = to_ingest.get(cam_id)
            if out is not None:
                out.send(
                    ControlMessage(
                        command="revoke", camera_id=cam_id, value=r.index, detail=r.reason
                    )
                )

    def revoke(self, camera: str, reason: str, to_ingest: Mapping[str, Outbox]) -> None:
        """Revoke ``camera`` in the inventory, archive it, then tell its ingest at once."""
        self.inventory.revoke(camera, reason)
        self.record()
        self.sync(to_ingest)

    def check(self, camera_ids: Iterable[str]) -> None:
        """A camera the archive revoked and the inventory does not: the inventory was edited.

        Archived once per camera as an ``inventory_tampered`` event, logged and noted; ingest
        holds the camera revoked anyway (the archive is the authority, ADR 0021).
        """
        ids = {*self.revocations.cameras, *camera_ids}
        seen = {i: self.inventory.camera(i) for i in ids}
        for cam_id, r in self.revocations.disagreements(seen):
            if cam_id in self._tampered:
                continue
            self._tampered.add(cam_id)
            detail = (
                f"{r.describe()}; expected {INVENTORY_DB} to show it, got no revocation there "
                "(the archive is the authority: its GOPs are REVOKED)"
            )
            log.warning("inventory tampered: %s", detail)
            self.notes.append(f"inventory tampered: {detail}")
            self.archive.append(
                "event",
                {"event": "inventory_tampered", "camera_id": cam_id, "archive_index": r.index,
                 "detail": detail},
            )  # fmt: skip
