"""A sink that checks, whenever it fires, that what it is told about is already committed."""

from __future__ import annotations

from pathlib import Path

from kontur.archive import Archive
from kontur.gate.sinks import SinkEvent, SinkStats


class CommittedCheckingSink:
    """Looks at the archive as a *reader* on another connection each time it fires, and keeps
    the event with the record kinds committed at that moment."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.seen: list[tuple[SinkEvent, list[str]]] = []

    def emit(self, event: SinkEvent) -> None:
        reader = Archive.open_readonly(self.data_dir)
        try:
            kinds = [r.kind for r in reader.iter_records()]
        finally:
            reader.close()
        self.seen.append((event, kinds))

    def stats(self) -> SinkStats:
        return SinkStats(sink="test", delivered=len(self.seen))

    def close(self) -> None:
        pass
