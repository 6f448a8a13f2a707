"""Signed checkpoints: a C2SP ``tlog-checkpoint`` in a C2SP ``signed-note``, Ed25519. Pure.

A checkpoint commits to the archive's Merkle tree at one size::

    <origin>\\n
    <tree size, decimal>\\n
    <base64 root hash>\\n
    \\n
    — <key name> <base64(key id ‖ Ed25519 signature)>\\n

The signature covers the body (the first three lines with their newlines). The key id is the
first 4 bytes of ``SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key)``; the key name is the origin.
A verifier key is written the C2SP way, ``<name>+<hex key id>+<base64(0x01 ‖ public key)>``.

The archive key signs checkpoints and nothing else: never a camera, never a release (ADR 0015).
No maintained Python package writes or verifies signed notes, so this module does, on
``cryptography``'s Ed25519; its format is cross-checked by tests against the spec's example.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kontur.archive.errors import ArchiveError

__all__ = [
    "ArchiveKey",
    "Checkpoint",
    "CheckpointError",
    "KeyFileError",
    "VerifierKey",
    "checkpoint_body",
    "note_signers",
    "open_checkpoint",
    "sign_checkpoint",
]

_ALG_ED25519 = 0x01
_DASH = "\u2014 "


class CheckpointError(ArchiveError):
    """A signed checkpoint that does not parse, or whose signature does not verify."""


class KeyFileError(ArchiveError):
    """The archive key file is missing, unreadable, or not an Ed25519 key."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a checkpoint commits to: the log's origin, its size and its root hash."""

    origin: str
    size: int
    root: bytes


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """An archive's public key under its name (the origin)."""

    name: str
    public: bytes

    @property
    def key_id(self) -> bytes:
        """The 4-byte C2SP key id."""
        blob = self.name.encode() + b"\n" + bytes([_ALG_ED25519]) + self.public
        return hashlib.sha256(blob).digest()[:4]

    def __str__(self) -> str:
        blob = base64.b64encode(bytes([_ALG_ED25519]) + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{blob}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """Parse ``name+keyid+base64``; CheckpointError names what is wrong."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise CheckpointError(f"verifier key: expected name+keyid+key, got {text[:60]!r}")
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError):
            raise CheckpointError("verifier key: expected base64 key material") from None
        if len(blob) != 33 or blob[0] != _ALG_ED25519:
            raise CheckpointError(f"verifier key: expected an Ed25519 key, got {len(blob)} bytes")
        key = cls(parts[0], blob[1:])
        if key.key_id.hex() != parts[1]:
            raise CheckpointError(
                f"verifier key: expected key id {key.key_id.hex()}, got {parts[1]}"
            )
        return key


@dataclass(frozen=True, slots=True)
class ArchiveKey:
    """The archive's private signing key (Ed25519)."""

    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> ArchiveKey:
        """A fresh key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> ArchiveKey:
        """Read a PEM PKCS#8 Ed25519 key; KeyFileError says what was found instead."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise KeyFileError(
                f"archive key {path}: expected a key file, got {exc.strerror}"
            ) from None
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise KeyFileError(
                f"archive key {path}: expected a PEM private key, got other bytes"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"archive key {path}: expected Ed25519, got {type(key).__name__}")
        return cls(key)

    def save(self, path: Path) -> None:
        """Write the key as PEM, mode 0600, refusing to overwrite an existing file."""
        pem = self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path = Path(path)
        if not path.parent.is_dir():  # a key kept off the data dir lives on a mount made for
            raise KeyFileError(  # it: one not mounted must not become a folder on the root
                f"archive key {path}: expected its folder {path.parent} to exist, found none"
            )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise KeyFileError(
                f"archive key {path}: expected no file, got an existing one"
            ) from None
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())

    def verifier(self, name: str) -> VerifierKey:
        """The public half under ``name``."""
        raw = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return VerifierKey(name, raw)


def checkpoint_body(cp: Checkpoint) -> str:
    """The C2SP tlog-checkpoint body (three lines, each ending in a newline)."""
    if not cp.origin or "\n" in cp.origin or cp.size < 0 or len(cp.root) != 32:
        raise ValueError(f"expected an origin, a size >= 0 and a 32-byte root, got {cp!r}")
    return f"{cp.origin}\n{cp.size}\n{base64.b64encode(cp.root).decode()}\n"


def sign_checkpoint(cp: Checkpoint, key: ArchiveKey) -> str:
    """The signed note for ``cp``: body, blank line, one signature line by ``key``."""
    body = checkpoint_body(cp)
    vkey = key.verifier(cp.origin)
    sig = key.private.sign(body.encode())
    return f"{body}\n{_DASH}{vkey.name} {base64.b64encode(vkey.key_id + sig).decode()}\n"


def open_checkpoint(note: str, vkey: VerifierKey) -> Checkpoint:
    """Verify ``note`` with ``vkey`` and parse its checkpoint; CheckpointError says why not."""
    body, sep, sigs = note.partition("\n\n")
    if not sep or not sigs.endswith("\n"):
        raise CheckpointError("expected a signed note (body, blank line, signatures)")
    body += "\n"
    if not _signed_by(body, sigs, vkey):
        raise CheckpointError(
            f"expected a valid signature by archive key {vkey.key_id.hex()}, got none"
        )
    lines = body.split("\n")[:-1]
    if len(lines) < 3:
        raise CheckpointError(f"expected origin, size and root lines, got {len(lines)} line(s)")
    origin, size_text, root_text = lines[:3]
    if origin != vkey.name:
        raise CheckpointError(f"expected origin {vkey.name}, got {origin}")
    if not (size_text.isascii() and size_text.isdigit()) or (
        size_text != "0" and size_text.startswith("0")
    ):
        raise CheckpointError(f"expected a decimal tree size, got {size_text[:20]!r}")
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError):
        root = b""
    if len(root) != 32:
        raise CheckpointError(f"expected a base64 32-byte root hash, got {root_text[:60]!r}")
    return Checkpoint(origin, int(size_text), root)


def note_signers(note: str) -> list[tuple[str, bytes, bytes]]:
    """``(key name, key id, signature)`` of each signature line of a signed note.

    CheckpointError when the note has no signature block or a line is malformed (a
    malformed note is refused whatever else it carries, as golang.org/x/mod's note.Open does).
    """
    _, sep, sigs = note.partition("\n\n")
    if not sep or not sigs.endswith("\n"):
        raise CheckpointError("expected a signed note (body, blank line, signatures)")
    out = []
    for line in sigs.split("\n")[:-1]:
        name, _, b64 = line[len(_DASH) :].rpartition(" ")
        try:
            blob = base64.b64decode(b64, validate=True) if line.startswith(_DASH) else b""
        except (binascii.Error, ValueError):
            blob = b""
        if not name or len(blob) < 5:
            raise CheckpointError(f"expected signature lines '— name base64', got {line[:40]!r}")
        out.append((name, blob[:4], blob[4:]))
    return out


def _signed_by(body: str, sigs: str, vkey: VerifierKey) -> bool:
    """True if a signature line is ``vkey``'s and verifies (every line well formed first)."""
    public = Ed25519PublicKey.from_public_bytes(vkey.public)
    for name, key_id, sig in note_signers(body + "\n" + sigs):
        if name != vkey.name or key_id != vkey.key_id or len(sig) != 64:
            continue
        try:
            public.verify(sig, body.encode())
        except InvalidSignature:
            return False
        return True
    return False
