"""The extraction defence on the query path (issue 14 part 2, ADR 0031).

- :mod:`.images`: bounded, header-first decoding of query images, and PRADA's feature space;
- :mod:`.prada`: PRADA (Juuti et al. 2019) per principal, a pure core;
- :mod:`.quota`: the daily query quota per principal, a pure core on an injected clock;
- :mod:`.defence`: blocks, throttles, quota and PRADA together, with frozen decisions;
- :mod:`.messages`, :mod:`.query_worker`, :mod:`.client`: the sandboxed process that runs the
  untrusted model for ``POST /v1/detect``, and the API's side of it.

The names below load on first use (PEP 562): the query worker imports this package before it
enters its sandbox, which must happen before numpy starts any thread.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kontur.extraction.client import (
        DetectAnswer,
        QueryDetector,
        QueryWorkerSpec,
        SandboxedDetector,
    )
    from kontur.extraction.defence import (
        Admission,
        Block,
        ExtractionDefence,
        ExtractionSettings,
        OnAlarm,
        Verdict,
    )
    from kontur.extraction.errors import (
        ExtractionError,
        ImageInvalid,
        ImageRejected,
        ImageTooLarge,
        QueryWorkerError,
    )
    from kontur.extraction.images import ImageLimits, decode_image, query_features
    from kontur.extraction.prada import Prada, PradaConfig, PradaResult, PradaTest, QueryKind
    from kontur.extraction.quota import DailyQuota, QuotaVerdict

__all__ = [
    "Admission",
    "Block",
    "DailyQuota",
    "DetectAnswer",
    "ExtractionDefence",
    "ExtractionError",
    "ExtractionSettings",
    "ImageInvalid",
    "ImageLimits",
    "ImageRejected",
    "ImageTooLarge",
    "OnAlarm",
    "Prada",
    "PradaConfig",
    "PradaResult",
    "PradaTest",
    "QueryDetector",
    "QueryKind",
    "QueryWorkerError",
    "QueryWorkerSpec",
    "QuotaVerdict",
    "SandboxedDetector",
    "Verdict",
    "decode_image",
    "query_features",
]

_HOME = {
    "client": ("DetectAnswer", "QueryDetector", "QueryWorkerSpec", "SandboxedDetector"),
    "defence": (
        "Admission",
        "Block",
        "ExtractionDefence",
        "ExtractionSettings",
        "OnAlarm",
        "Verdict",
    ),
    "errors": (
        "ExtractionError",
        "ImageInvalid",
        "ImageRejected",
        "ImageTooLarge",
        "QueryWorkerError",
    ),
    "images": ("ImageLimits", "decode_image", "query_features"),
    "prada": ("Prada", "PradaConfig", "PradaResult", "PradaTest", "QueryKind"),
    "quota": ("DailyQuota", "QuotaVerdict"),
}
_WHERE = {name: module for module, names in _HOME.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'kontur.extraction' has no attribute {name!r}")
    return getattr(importlib.import_module(f"kontur.extraction.{module}"), name)
