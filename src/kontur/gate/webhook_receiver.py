"""A reference receiver for kontur's webhook: the checks a receiver makes (ADR 0017).

:func:`verify_webhook` is pure. It is fed the request's headers and raw body, the shared
secret, the receiver's own clock reading and the nonces it has accepted; it reads no clock,
network or disk. Copy it, or call it from any HTTP framework. Its steps, in this order:

1. headers: ``X-Kontur-Timestamp`` (decimal Unix seconds), ``X-Kontur-Nonce`` (32 lowercase
   hex) and ``X-Kontur-Signature`` (``sha256=<64 hex>``) are present and well formed
   (:class:`~kontur.gate.errors.WebhookMalformed`); names are matched case-insensitively;
2. signature: HMAC-SHA256 of ``<timestamp> "." <nonce> "." <body>`` under the secret, over
   the raw body *before* it is parsed, compared in constant time
   (:class:`~kontur.gate.errors.WebhookSignatureInvalid`);
3. freshness: ``|now - timestamp| <= max_skew_s`` (:class:`~kontur.gate.errors.WebhookStale`);
4. uniqueness: the nonce is not in ``seen_nonces``
   (:class:`~kontur.gate.errors.WebhookReplayed`). Nonces whose timestamp has left the
   window are pruned first: a replay of one of them already fails step 3, so the memory a
   receiver keeps is bounded by the POSTs of one window;
5. body: it parses as :class:`~kontur.gate.sinks.WebhookBody` and its ``sent_at`` equals
   the timestamp (:class:`~kontur.gate.errors.WebhookMalformed`); then the nonce is recorded.

A receiver that runs several processes must share ``seen_nonces`` between them (a database
table with a unique key), or a replay sent to another process gets through step 4.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Final

from pydantic import ValidationError

from kontur.gate.errors import (
    WebhookMalformed,
    WebhookReplayed,
    WebhookSignatureInvalid,
    WebhookStale,
)
from kontur.gate.sinks import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookBody, sign

__all__ = ["DEFAULT_MAX_SKEW_S", "AcceptedWebhook", "verify_webhook"]

#: A window wide enough for ordinary clock drift and queueing, short enough to bound replays.
DEFAULT_MAX_SKEW_S: Final = 300.0

_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_NONCE = re.compile(r"^[0-9a-f]{32}$")
_SIGNATURE = re.compile(r"^sha256=[0-9a-f]{64}$")


@dataclass(frozen=True)
class AcceptedWebhook:
    """A POST that passed every check: act on ``body.event`` once."""

    timestamp: int
    nonce: str
    body: WebhookBody


def _header(headers: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> str:
    wanted = name.lower()
    values = [v for k, v in headers.items() if k.lower() == wanted]
    if not values:
        raise WebhookMalformed(f"webhook: expected header {name}, got none")
    if len(values) > 1 or not pattern.match(values[0]):
        shown = repr(values[0][:80]) if len(values) == 1 else f"{len(values)} values"
        raise WebhookMalformed(f"webhook: expected {name} to be {what}, got {shown}")
    return values[0]


def _prune(seen_nonces: MutableMapping[str, int], now: float, max_skew_s: float) -> None:
    for nonce in [n for n, t in seen_nonces.items() if now - t > max_skew_s]:
        del seen_nonces[nonce]


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes,
    secret: bytes,
    *,
    now: float,
    seen_nonces: MutableMapping[str, int],
    max_skew_s: float = DEFAULT_MAX_SKEW_S,
) -> AcceptedWebhook:
    """Check one webhook POST (module docstring, steps 1-5); raise a
    :class:`~kontur.gate.errors.WebhookRefused` leaf with a one-line reason, or return it.

    ``seen_nonces`` maps each accepted nonce to its timestamp; it is pruned and updated here.
    """
    if not secret:
        raise ValueError("expected a non-empty webhook secret, got none")
    if max_skew_s <= 0:
        raise ValueError(f"expected a positive max_skew_s, got {max_skew_s}")
    timestamp = _header(headers, TIMESTAMP_HEADER, _TIMESTAMP, "decimal Unix seconds")
    nonce = _header(headers, NONCE_HEADER, _NONCE, "32 lowercase hex characters")
    signature = _header(headers, SIGNATURE_HEADER, _SIGNATURE, "sha256=<64 lowercase hex>")
    expected = sign(body, secret, timestamp=timestamp, nonce=nonce)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise WebhookSignatureInvalid(
            f"webhook: expected an HMAC-SHA256 over timestamp {timestamp}, nonce {nonce} and "
            "the body under the shared secret, got another (tampered, or another key)"
        )
    sent_at = int(timestamp)
    if abs(now - sent_at) > max_skew_s:
        raise WebhookStale(
            f"webhook: expected a timestamp within {max_skew_s:g} s of {now:.0f}, "
            f"got {sent_at} ({now - sent_at:+.0f} s)"
        )
    _prune(seen_nonces, now, max_skew_s)
    if nonce in seen_nonces:
        raise WebhookReplayed(f"webhook: expected a new nonce, got {nonce} again (replayed)")
    parsed = _parse(body, sent_at)
    seen_nonces[nonce] = sent_at
    return AcceptedWebhook(sent_at, nonce, parsed)


def _parse(body: bytes, sent_at: int) -> WebhookBody:
    try:
        parsed = WebhookBody.model_validate_json(body)
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(str(p) for p in e["loc"]) or "(top)"
        raise WebhookMalformed(
            f"webhook: expected a kontur webhook body, got {where}: {e['msg']}"
        ) from None
    if parsed.sent_at != sent_at:
        raise WebhookMalformed(
            f"webhook: expected body sent_at {sent_at} (the timestamp), got {parsed.sent_at}"
        )
    return parsed
