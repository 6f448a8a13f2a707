"""Camera tamper and image-quality monitors (issue 13 §1; the paper's Table 1, first row).

A pure core per camera, CPU only (numpy and OpenCV), fed decoded frames and their times: it
reads no clock and does no I/O. Each kind is judged against the camera's own rolling
baseline, so a camera that is always dark is not "low light" forever while a sudden
darkening is, and an event needs a minimum duration to start and hysteresis to end::

    monitor = TamperMonitor("cam-1", TamperConfig())
    for frame, pts_s in frames:
        for change in monitor.observe(frame, pts_s):
            publish(change.to_json())          # start/end of a TamperEvent
        if not monitor.quality_ok:             # "refuse to decide at low quality"
            refuse_automatic_actions(monitor.quality.reasons)

:class:`OverlapMonitor` pairs zones of two cameras that see the same place; sustained
disagreement in their activity is a finding for both. :mod:`kontur.tamper.inject` is the
seeded tampering generator the evaluation and the benchmark use.
"""

from kontur.tamper.config import TamperConfig
from kontur.tamper.errors import (
    TamperConfigError,
    TamperError,
    TamperInputError,
    TamperOrderError,
)
from kontur.tamper.model import Quality, TamperChange, TamperEvent, TamperKind, Transition
from kontur.tamper.monitor import TamperMonitor

__all__ = [
    "Quality",
    "TamperChange",
    "TamperConfig",
    "TamperConfigError",
    "TamperError",
    "TamperEvent",
    "TamperInputError",
    "TamperKind",
    "TamperMonitor",
    "TamperOrderError",
    "Transition",
]
