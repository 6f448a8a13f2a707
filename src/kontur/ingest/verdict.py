"""Per-GOP verdicts: defined in :mod:`kontur.wire.verdict` (the lowest layer), named here too
because ingest is the block that issues them."""

from kontur.wire.verdict import SEVERITY, GopVerdict, Verdict, most_severe

__all__ = ["SEVERITY", "GopVerdict", "Verdict", "most_severe"]
