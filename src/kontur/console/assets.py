"""The console's static files (scripts, the style sheet), shipped inside the package.

Served by ``GET /ui/static/{asset}`` without authentication: they are the same for everyone
and hold no data. A name is looked up in the fixed set of files of ``static/`` (listed once),
after it matched :data:`ASSET_NAME`, so no request can name any other file.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Final

__all__ = ["ASSET_NAME", "Asset", "asset", "asset_names"]

#: What an asset's name looks like: a short lower-case stem and a known suffix.
ASSET_NAME: Final = r"^[a-z][a-z0-9-]{0,40}\.(?:js|css|svg)$"

_TYPES: Final = {
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
}


class Asset:
    """One static file: its bytes and media type."""

    __slots__ = ("data", "media_type")

    def __init__(self, data: bytes, media_type: str) -> None:
        self.data = data
        self.media_type = media_type


@functools.cache
def _assets() -> dict[str, Asset]:
    out: dict[str, Asset] = {}
    for entry in resources.files(__package__).joinpath("static").iterdir():
        name = entry.name
        if entry.is_file() and re.fullmatch(ASSET_NAME, name):
            out[name] = Asset(entry.read_bytes(), _TYPES[name.rsplit(".", 1)[1]])
    return out


def asset_names() -> frozenset[str]:
    """Every asset the console ships."""
    return frozenset(_assets())


def asset(name: str) -> Asset | None:
    """The asset ``name``, or None when the console ships no such file."""
    if not re.fullmatch(ASSET_NAME, name):
        return None
    return _assets().get(name)
