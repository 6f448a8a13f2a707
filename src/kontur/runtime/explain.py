"""``kontur placement explain``: the dispatcher's decision, without starting the perimeter.

The decision is the one a run would make: the start-up plan of :mod:`kontur.runtime.plan`,
built in a throwaway data directory. So the source is probed and the detector loaded and
benched in the worker's sandbox (:mod:`kontur.runtime.prepare`), and the command line never
decodes an untrusted clip or loads an untrusted model in its own process.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from kontur.config import ArchiveConfig, Config
from kontur.ingest.source import default_source
from kontur.placement.risk import Placement
from kontur.runtime.perimeter import Perimeter, RunOptions

__all__ = ["explain_placement"]


def explain_placement(config: Config, source: str | None, model: Path | None) -> Placement:
    """Plan a run of the first camera on ``source`` (its own source if None, the demo clip if
    it has none) with ``model`` (the HOG fallback if None) and return its placement; nothing
    of it is kept. The throwaway archive gets none of the site's ``archive:`` settings: the
    site's checkpoint key does not sign it, nor do its checkpoints reach the site's witness."""
    first = source or config.cameras[0].source or default_source()
    plain = config.model_copy(update={"archive": ArchiveConfig()})
    with tempfile.TemporaryDirectory(prefix="kontur-explain-") as tmp:
        # sign=False: signing does not change the placement, and a demo camera would be
        # issued and enrolled for nothing
        opts = RunOptions(
            config=plain, data_dir=Path(tmp) / "data", source=first, model=model, sign=False
        )
        return Perimeter(opts).place()
