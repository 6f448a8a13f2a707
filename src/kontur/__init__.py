"""kontur: a trusted perimeter for intelligent video analytics.

The five blocks of the paper's model each live in their own package:

- :mod:`kontur.ingest`    trusted ingest on the CPU (per-GOP verdicts)
- :mod:`kontur.placement` the placement dispatcher (residual risk R_j(p) and measured SLA)
- :mod:`kontur.worker`    the isolated analytics worker (detector + ByteTrack)
- :mod:`kontur.verifier`  the independent CPU verifier
- :mod:`kontur.gate`      the decision gate (ALLOW / RESTRICT / OPERATOR / DENY)

around them :mod:`kontur.degrade` (safe degradation), :mod:`kontur.archive` (tamper-evident
log and segment store), :mod:`kontur.wire` (typed messages between processes) and
:mod:`kontur.runtime` (the supervisor that starts the process tree).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
