"""Credentials out of everything kontur shows or keeps (ADR 0019).

One rule, applied wherever a configuration or a URL leaves the code that needs it in clear:
the archive's ``config`` record, the JSON summary, error lines and messages.

- A URL's whole userinfo becomes ``***``: ``rtsp://user:pass@host/`` → ``rtsp://***@host/``
  (a user name is half of a credential, and an operator recognises the host anyway).
- The value of a query parameter with a secret's name becomes ``***``:
  ``https://hook/in?token=abc`` → ``https://hook/in?token=***``.
- In a mapping, the value of a key with a secret's name (``password``, ``secret``, ``token``,
  ``api_key``, ``private_key``, ``*_password``…) becomes ``***``; every string anywhere in it
  goes through the URL rule. ``secret_env`` is not a secret: it names the variable that holds
  one, and stays readable.

A secret carried in a URL's *path* (some webhook services) cannot be told apart from a path;
put it in a variable (``sinks.webhook.secret_env``) or a query parameter instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MASK", "is_secret_name", "redact", "redact_url"]

MASK = "***"
"""What a redacted credential is replaced with."""

_NAMES = (
    r"pass|passwd|password|passphrase|pwd|secret|token|apikey|api[_-]key|private[_-]key|key"
    r"|sig|signature|auth|authorization|credentials?"
)
_SECRET_NAME = re.compile(rf"(?:^|[_.-])(?:{_NAMES})$", re.IGNORECASE)
# userinfo: from "://" up to the last "@" before the host ends (no "/", "?", "#" or space)
_USERINFO = re.compile(r"(?<=://)[^/?#\s]*@")
_QUERY_SECRET = re.compile(r"(?<=[?&;])([\w.-]+)=([^&#\s]*)")


def is_secret_name(name: str) -> bool:
    """True when ``name`` (a mapping key, a query parameter) names a credential."""
    return bool(_SECRET_NAME.search(name))


def _query_value(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    return f"{name}={MASK}" if is_secret_name(name) and value else match.group(0)


def redact_url(text: str) -> str:
    """``text`` with every URL's userinfo and secret query values replaced by ``***``.

    Works on a bare URL and on a message that contains URLs; a local path is left as it is.
    """
    if "://" not in text:
        return text
    return _QUERY_SECRET.sub(_query_value, _USERINFO.sub(f"{MASK}@", text))


def redact(value: Any) -> Any:
    """A copy of ``value`` (JSON-like: mappings, lists, strings, scalars) without credentials.

    Secret-named keys of mappings get ``***`` (``None`` stays ``None``: no secret is set), every
    string goes through :func:`redact_url`; other scalars are returned as they are.
    """
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, Mapping):
        return {
            k: (MASK if v is not None else None)
            if isinstance(k, str) and is_secret_name(k)
            else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
