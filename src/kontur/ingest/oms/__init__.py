"""ONVIF Media Signing (OMS) for H.264/H.265: format layer, hashing, validator, reader.

Modules: :mod:`.nal` (framing, emulation prevention, classification), :mod:`.sei` (OMS SEI
parse/build), :mod:`.hashing` (hash lists, kontur's parameter-set claim), :mod:`.provenance`
(certificate chain at capture time), :mod:`.validator` (pure per-GOP state machine),
:mod:`.reader` (PyAV I/O shell), :mod:`.errors`, :mod:`.limits`.
"""

from __future__ import annotations

__all__: list[str] = []
