"""kontur's signed checkpoints against published C2SP signed-note examples.

Peers (``vectors/peer/signed_notes.json``, see its README): the Ed25519 example of the C2SP
signed-note spec, golang.org/x/mod's sumdb/note test keys and notes, and a real sum.golang.org
tree head. kontur's key ids, verifier-key strings and signatures must match theirs byte for
byte; kontur's own notes must round-trip (and read the same in sigstore-python's note parser,
when installed); every forgery must be refused with CheckpointError.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kontur.archive.checkpoint import (
    ArchiveKey,
    Checkpoint,
    CheckpointError,
    VerifierKey,
    checkpoint_body,
    open_checkpoint,
    sign_checkpoint,
)

PEER = Path(__file__).parent / "vectors" / "peer"
NOTES: dict[str, Any] = json.loads((PEER / "signed_notes.json").read_text(encoding="utf-8"))

DASH = "\u2014 "


@dataclass(frozen=True)
class Published:
    """One verifier key and a note it signed, as published."""

    case: str
    vkey: str
    note: str


def _published() -> list[Published]:
    out = []
    for case, v in NOTES.items():
        out.append(Published(case, v["vkey"], v["note"]))
        if "cosigner_vkey" in v:  # the same body, signed once more by the cosigner
            body = v["note"].partition("\n\n")[0] + "\n"
            out.append(
                Published(
                    f"{case}/cosigner", v["cosigner_vkey"], f"{body}\n{v['cosigner_sig_line']}\n"
                )
            )
    return out


PUBLISHED = _published()
CHECKPOINT_SHAPED = [p for p in PUBLISHED if p.case.startswith(("go_sumdb", "sum_golang"))]


def _split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """C2SP signed-note, read here independently: the body and its (name, key id ‖ sig) lines."""
    body, sep, rest = note.partition("\n\n")
    assert sep and rest.endswith("\n")
    sigs = []
    for line in rest.removesuffix("\n").split("\n"):
        assert line.startswith(DASH)
        name, b64 = line[len(DASH) :].split(" ")
        sigs.append((name, base64.b64decode(b64)))
    return body + "\n", sigs


def _skey_private(skey: str) -> tuple[str, Ed25519PrivateKey]:
    """golang.org/x/mod's ``PRIVATE+KEY+name+hash+base64(0x01 ‖ seed)`` signer key."""
    prefix, private, name, _hash, b64 = skey.split("+", 4)
    blob = base64.b64decode(b64)
    assert (prefix, private, blob[0], len(blob)) == ("PRIVATE", "KEY", 0x01, 33)
    return name, Ed25519PrivateKey.from_private_bytes(blob[1:])


# ----------------------------------------------------------------------------------------------
# Interop with the published keys and notes.


@pytest.mark.parametrize("pub", PUBLISHED, ids=lambda p: p.case)
def test_published_verifier_key_parses_and_prints_back(pub: Published) -> None:
    key = VerifierKey.parse(pub.vkey)
    name, key_id, _ = pub.vkey.split("+", 2)
    assert key.name == name
    assert key.key_id.hex() == key_id
    assert key.key_id == hashlib.sha256(name.encode() + b"\n\x01" + key.public).digest()[:4]
    assert str(key) == pub.vkey


@pytest.mark.parametrize("pub", PUBLISHED, ids=lambda p: p.case)
def test_published_signature_verifies_under_kontur_key_id(pub: Published) -> None:
    key = VerifierKey.parse(pub.vkey)
    body, sigs = _split_note(pub.note)
    mine = [blob for name, blob in sigs if name == key.name and blob[:4] == key.key_id]
    assert len(mine) == 1 and len(mine[0]) == 68
    Ed25519PublicKey.from_public_bytes(key.public).verify(mine[0][4:], body.encode())


@pytest.mark.parametrize("pub", PUBLISHED, ids=lambda p: p.case)
def test_open_checkpoint_gets_past_the_signature_of_published_notes(pub: Published) -> None:
    # None of the published notes is a checkpoint whose origin is its key name, which kontur
    # requires; the refusal must be about the body, never about the (valid) signature.
    with pytest.raises(CheckpointError) as err:
        open_checkpoint(pub.note, VerifierKey.parse(pub.vkey))
    assert "signature" not in str(err.value)
    if pub in CHECKPOINT_SHAPED:
        assert "expected origin" in str(err.value)


@pytest.mark.parametrize("pub", PUBLISHED, ids=lambda p: p.case)
def test_published_note_is_refused_under_another_key(pub: Published) -> None:
    other = ArchiveKey.generate().verifier(VerifierKey.parse(pub.vkey).name)
    with pytest.raises(CheckpointError, match="signature"):
        open_checkpoint(pub.note, other)


@pytest.mark.parametrize("case", ["go_note_peter_neumann", "go_sumdb_test_log"])
def test_published_signer_key_reproduces_the_published_key_and_signature(case: str) -> None:
    v = NOTES[case]
    name, private = _skey_private(v["skey"])
    key = ArchiveKey(private)
    assert str(key.verifier(name)) == v["vkey"]
    body, sigs = _split_note(v["note"])
    # Ed25519 is deterministic: kontur's key id ‖ signature is the published one, byte for byte.
    assert sigs == [(name, key.verifier(name).key_id + private.sign(body.encode()))]


def test_kontur_signs_a_checkpoint_the_go_way_with_the_published_test_key() -> None:
    v = NOTES["go_sumdb_test_log"]
    name, private = _skey_private(v["skey"])
    body, _ = _split_note(v["note"])
    _origin, size, root = body.split("\n")[:3]
    cp = Checkpoint(name, int(size), base64.b64decode(root))
    note = sign_checkpoint(cp, ArchiveKey(private))
    # The published key's id is 00000c67, so the signature line starts with base64 "AAAMZ".
    assert note.startswith(f"{name}\n{size}\n{root}\n\n{DASH}{name} AAAMZ")
    assert open_checkpoint(note, VerifierKey.parse(v["vkey"])) == cp
    signed_body, sigs = _split_note(note)
    assert signed_body == checkpoint_body(cp)
    Ed25519PublicKey.from_public_bytes(VerifierKey.parse(v["vkey"]).public).verify(
        sigs[0][1][4:], signed_body.encode()
    )


# ----------------------------------------------------------------------------------------------
# Round trips.

ORIGIN = "archive.example/kontur"
ROOT = hashlib.sha256(b"a root").digest()


@pytest.fixture(scope="module")
def key() -> ArchiveKey:
    return ArchiveKey.generate()


@pytest.mark.parametrize("size", [0, 1, 7, 2**32, 2**63 - 1])
def test_kontur_note_round_trips(key: ArchiveKey, size: int) -> None:
    cp = Checkpoint(ORIGIN, size, ROOT)
    note = sign_checkpoint(cp, key)
    vkey = VerifierKey.parse(str(key.verifier(ORIGIN)))
    assert open_checkpoint(note, vkey) == cp
    body, sigs = _split_note(note)
    assert body == f"{ORIGIN}\n{size}\n{base64.b64encode(ROOT).decode()}\n"
    assert [(n, b[:4]) for n, b in sigs] == [(ORIGIN, vkey.key_id)]


def test_kontur_note_survives_a_cosignature(key: ArchiveKey) -> None:
    # Clients must ignore signatures by keys they do not know (C2SP signed-note).
    cp = Checkpoint(ORIGIN, 42, ROOT)
    note = sign_checkpoint(cp, key)
    witness = ArchiveKey.generate()
    w = witness.verifier("witness.example/w1")
    cosig = base64.b64encode(w.key_id + witness.private.sign(checkpoint_body(cp).encode())).decode()
    cosigned = f"{note}{DASH}{w.name} {cosig}\n"
    assert open_checkpoint(cosigned, key.verifier(ORIGIN)) == cp
    first = f"{checkpoint_body(cp)}\n{DASH}{w.name} {cosig}\n{note.partition(chr(10) * 2)[2]}"
    assert open_checkpoint(first, key.verifier(ORIGIN)) == cp


def test_sigstore_note_parser_reads_kontur_notes_the_same(key: ArchiveKey) -> None:
    peer = pytest.importorskip("sigstore._internal.rekor.checkpoint")
    cp = Checkpoint(ORIGIN, 1234, ROOT)
    vkey = key.verifier(ORIGIN)
    parsed = peer.SignedCheckpoint.from_text(sign_checkpoint(cp, key))
    assert parsed.checkpoint.origin == ORIGIN
    assert parsed.checkpoint.log_size == cp.size
    assert parsed.checkpoint.log_hash == ROOT.hex()
    [sig] = parsed.signed_note.signatures
    assert (sig.name, sig.sig_hash) == (ORIGIN, vkey.key_id)
    Ed25519PublicKey.from_public_bytes(vkey.public).verify(
        base64.b64decode(sig.signature), parsed.signed_note.note.encode()
    )


# ----------------------------------------------------------------------------------------------
# Forgeries: each is refused with CheckpointError.


def _resign(key: ArchiveKey, name: str, body: str, key_id: bytes | None = None) -> str:
    """A note over ``body`` signed by ``key`` under ``name`` (and a chosen key id)."""
    kid = key.verifier(name).key_id if key_id is None else key_id
    sig = base64.b64encode(kid + key.private.sign(body.encode())).decode()
    return f"{body}\n{DASH}{name} {sig}\n"


def _forgeries(key: ArchiveKey) -> dict[str, str]:
    cp = Checkpoint(ORIGIN, 42, ROOT)
    note = sign_checkpoint(cp, key)
    body = checkpoint_body(cp)
    sig_block = note.partition("\n\n")[2]
    root64 = base64.b64encode(ROOT).decode()
    other_root = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    stranger = ArchiveKey.generate()
    vid = key.verifier(ORIGIN).key_id
    return {
        "edited size": note.replace("\n42\n", "\n43\n", 1),
        "edited size, leading zero": note.replace("\n42\n", "\n042\n", 1),
        "edited root": note.replace(root64, other_root, 1),
        "edited origin": note.replace(ORIGIN, ORIGIN + "x", 1),
        "another key, same name": sign_checkpoint(cp, stranger),
        "another key, forged key id": _resign(stranger, ORIGIN, body, vid),
        "right key, wrong origin in body": _resign(
            key, ORIGIN, body.replace(ORIGIN, "evil.example", 1)
        ),
        "right key, signed under another name": _resign(key, "evil.example", body),
        "signature line missing": body + "\n",
        "no blank line": body + sig_block,
        "no trailing newline": note.removesuffix("\n"),
        "hyphen instead of em dash": note.replace(DASH, "- "),
        "en dash instead of em dash": note.replace(DASH, "\u2013 "),
        "em dash without space": note.replace(DASH, "\u2014"),
        "stray line after signature": note + "hello\n",
        "undecodable line beside a good one": f"{note}{DASH}{ORIGIN} !!!!\n",
        "second blank line": note.replace("\n\n", "\n\n\n", 1),
        "truncated signature": note.replace(sig_block, sig_block[:-6] + "\n"),
        "signature not base64": note.replace(sig_block, f"{DASH}{ORIGIN} !!!!\n"),
        "bad signature, then good": _resign(stranger, ORIGIN, body, vid) + sig_block,
        "size not a number": _resign(key, ORIGIN, f"{ORIGIN}\nforty-two\n{root64}\n"),
        "negative size": _resign(key, ORIGIN, f"{ORIGIN}\n-42\n{root64}\n"),
        "root too short": _resign(key, ORIGIN, f"{ORIGIN}\n42\n{root64[:-4]}\n"),
        "root not base64": _resign(key, ORIGIN, f"{ORIGIN}\n42\n{'*' * 44}\n"),
        "two lines only": _resign(key, ORIGIN, f"{ORIGIN}\n42\n"),
    }


FORGERY_NAMES = list(_forgeries(ArchiveKey.generate()))


@pytest.mark.parametrize("what", FORGERY_NAMES)
def test_forged_note_is_refused(key: ArchiveKey, what: str) -> None:
    forged = _forgeries(key)[what]
    with pytest.raises(CheckpointError):
        open_checkpoint(forged, key.verifier(ORIGIN))


def test_note_is_refused_for_another_origin(key: ArchiveKey) -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 42, ROOT), key)
    public = key.verifier(ORIGIN).public
    with pytest.raises(CheckpointError):
        open_checkpoint(note, VerifierKey("other.example/log", public))


def test_non_ascii_digits_in_size_are_refused(key: ArchiveKey) -> None:
    root64 = base64.b64encode(ROOT).decode()
    note = _resign(key, ORIGIN, f"{ORIGIN}\n\uff14\uff12\n{root64}\n")
    with pytest.raises(CheckpointError):
        open_checkpoint(note, key.verifier(ORIGIN))


@pytest.mark.parametrize(
    "text",
    [
        "no-plus-signs",
        "a+b",
        "a+b+c+d",  # base64 may hold '+', so this is name a, id b, material 'c+d': not base64
        "name+00000000+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # wrong key id
        "example.com/foo+530d903a+AgkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # not 0x01
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",  # short
    ],
)
def test_malformed_verifier_keys_are_refused(text: str) -> None:
    with pytest.raises(CheckpointError):
        VerifierKey.parse(text)


def test_a_key_whose_folder_is_missing_is_refused_not_made(tmp_path: Path) -> None:
    """``archive.key: /mnt/keys/archive.key`` with the mount missing made /mnt/keys on the
    root file system and a fresh key in it, without a word."""
    from kontur.archive import Archive, KeyFileError, Signing

    key = tmp_path / "not-mounted" / "archive.key"
    with pytest.raises(KeyFileError) as info:
        Archive.open(tmp_path / "data", signing=Signing(key_path=key))
    assert str(info.value) == (
        f"archive key {key}: expected its folder {key.parent} to exist, found none"
    )
    assert not key.parent.exists()
    key.parent.mkdir()  # mounted now: the same archive starts, with its new key
    with Archive.open(tmp_path / "data", signing=Signing(key_path=key)) as arc:
        arc.append("event", {"n": 1})
    assert key.exists()
