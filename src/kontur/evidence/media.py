"""ONVIF Media Signing of a clip cut from a longer stream (pure: units in, results out).

A clip starts at a GOP boundary inside a signed stream. ONVIF Media Signing puts the SEI that
signs GOP k in GOP k+1, so the clip's first GOP carries the SEI of the GOP *before* the clip
(the lead-in SEI). kontur's validator (:class:`~kontur.ingest.oms.validator.OmsValidator`),
built for whole streams, would take that SEI for the signature of the clip's first GOP and
call the GOP NOT_AUTHENTIC; the reference validator reports it as not feasible and
validates the rest. :func:`validate_clip` therefore drops lead-in SEIs before validating:

- the signed (non-certificate) OMS SEIs of the clip's first GOP whose GOP counter is below
  that of the first signed SEI after it (which signs the first GOP);
- in a one-GOP clip, every signed SEI of the first GOP except one in an SEI-only access unit
  (the signed end of stream, which signs the GOP it closes).

A dropped SEI signs only video that is not in the clip, so dropping it hides nothing in it;
its count is returned. The first GOP's link to its predecessor stays unchecked (the
validator never checks the first GOP it receives). Everything else is the validator's, with
the caller's trust anchors and reference time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509

from kontur.ingest.oms.errors import OmsError
from kontur.ingest.oms.nal import Codec, parse_nal_header
from kontur.ingest.oms.sei import OmsSei, is_oms_sei
from kontur.ingest.oms.validator import AccessUnit, OmsValidator, SignedGopResult

__all__ = ["Unit", "lead_in", "starts_gop", "validate_clip"]

Unit = tuple[bytes, ...]


def _signed_counter(nal: bytes, codec: Codec) -> int | None:
    """The GOP counter of a signed, non-certificate OMS SEI; None for anything else."""
    if len(nal) < codec.header_size + 19 or not is_oms_sei(nal, codec):
        return None
    try:
        sei = OmsSei.from_nal(nal, codec)
    except OmsError:
        return None
    if sei.certificate_sei or not sei.is_signed or sei.general is None:
        return None
    return sei.general.gop_counter


def starts_gop(unit: Unit, codec: Codec) -> bool:
    """Whether an access unit starts a GOP (holds a primary IDR/IRAP slice)."""
    for nal in unit:
        try:
            if len(nal) >= codec.header_size and parse_nal_header(nal, codec).starts_gop:
                return True
        except OmsError:
            continue
    return False


def _is_picture(unit: Unit, codec: Codec) -> bool:
    for nal in unit:
        try:
            if len(nal) >= codec.header_size and parse_nal_header(nal, codec).is_slice:
                return True
        except OmsError:
            continue
    return False


def lead_in(units: Sequence[Unit], codec: Codec) -> set[tuple[int, int]]:
    """``(unit, NAL)`` positions of the lead-in SEIs (see the module docstring)."""
    end = next((u for u in range(1, len(units)) if starts_gop(units[u], codec)), len(units))
    first = [
        (u, n, c, not _is_picture(units[u], codec))
        for u in range(end)
        for n, nal in enumerate(units[u])
        if (c := _signed_counter(nal, codec)) is not None
    ]
    if not first:
        return set()
    later = next(
        (
            c
            for unit in units[end:]
            for nal in unit
            if (c := _signed_counter(nal, codec)) is not None
        ),
        None,
    )
    if later is None:  # a one-GOP clip: only its own signed end of stream signs it
        eos = [c for *_, c, sei_only in first if sei_only]
        later = max(eos) if eos else None
    return {(u, n) for u, n, c, _ in first if later is None or c < later}


def validate_clip(
    codec: Codec,
    parameter_sets: Sequence[bytes],
    units: Sequence[Unit],
    anchors: Sequence[x509.Certificate],
    reference_time: datetime,
) -> tuple[list[SignedGopResult], int]:
    """Validate a clip's access units (decode order): results by GOP, and the number of
    lead-in SEIs dropped."""
    drop = lead_in(units, codec)
    validator = OmsValidator(codec, anchors, reference_time=reference_time)
    validator.set_parameter_sets(parameter_sets)
    results: list[SignedGopResult] = []
    for u, unit in enumerate(units):
        nals = tuple(nal for n, nal in enumerate(unit) if (u, n) not in drop)
        results += validator.push(AccessUnit(nals, None, starts_gop(unit, codec)))
    results += validator.finish(reference_time)
    return sorted(results, key=lambda r: r.index), len(drop)
