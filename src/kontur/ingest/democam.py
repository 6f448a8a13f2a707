"""A simulated signing camera for ``kontur demo``: signs an unsigned clip on the fly.

Real cameras sign their stream themselves (ONVIF Media Signing) and kontur only verifies.
A demo clip is unsigned, so ``kontur demo`` plays the camera's part: :class:`DemoCamera`
signs each access unit as ingest reads it, with a throwaway camera key that the demo issued
from the data directory's site CA and enrolled there (:func:`provision_demo_camera`). Every
archive record and the run's notes say so. The signed packets are what ingest validates,
archives and decodes, exactly as if the camera had sent them.

Capture times: :meth:`DemoCamera.sign_packet` stamps each access unit with the trusted
clock's time when ingest reads it, so the stream is as fresh as a live camera's would be
however fast the file is read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kontur.clock import Clock
from kontur.ingest.inventory import CameraExists, Inventory, SiteCaMissing
from kontur.ingest.oms.errors import OmsError
from kontur.ingest.oms.keys import SigningIdentity, load_signing_identity
from kontur.ingest.oms.nal import Codec, parse_extradata, split_packet
from kontur.ingest.oms.reader import read_access_units
from kontur.ingest.oms.sei import is_oms_sei
from kontur.ingest.oms.signer import OmsSigner, SignedAccessUnit
from kontur.ingest.oms.writer import annexb_bytes
from kontur.ingest.segment import SegmentPacket

__all__ = ["DemoCamera", "DemoCameraFiles", "demo_signable", "provision_demo_camera"]

_DIR = "demo-camera"


@dataclass(frozen=True)
class DemoCameraFiles:
    """Where the demo camera's key and chain live (inside the data directory)."""

    key_path: Path
    chain_path: Path
    created: bool


def demo_signable(source: str, codec: str, scan: int = 3000, file: BinaryIO | None = None) -> bool:
    """Whether the demo may sign ``source``: a local H.264/H.265 file carrying no OMS SEI.

    Asked in the worker's sandbox, where ``file`` is the source's descriptor (ADR 0046).

    A signed stream carries its first SEI in the second access unit of its second GOP (or,
    with a certificate SEI, at its very start), so the scan reads up to that point, at most
    ``scan`` access units; a stream whose first GOP is longer is refused later by the signer,
    which never signs signed input.
    """
    if "://" in source or codec not in ("h264", "hevc"):
        return False
    try:
        codec_, _, units = read_access_units(source, file=file)
    except OmsError:
        return False
    keyframes, after_second = 0, 0
    try:
        for i, au in enumerate(units):
            if any(is_oms_sei(n, codec_) for n in au.nals):
                return False
            keyframes += au.keyframe
            after_second += keyframes >= 2
            if i >= scan or after_second > 2:
                break
    except OmsError:
        return False
    finally:
        close = getattr(units, "close", None)
        if close is not None:
            close()
    return True


def provision_demo_camera(data_dir: Path, camera_id: str, clock: Clock) -> DemoCameraFiles:
    """A site CA (if none), and a demo key for ``camera_id`` issued and enrolled (if none).

    Re-uses what an earlier demo in the same data directory made. A camera that is enrolled
    but whose demo key is not in ``data_dir/demo-camera`` is a real camera: refused.
    """
    out = data_dir / _DIR
    key, chain = out / f"{camera_id}.key", out / f"{camera_id}.pem"
    with Inventory.open(data_dir, clock) as inv:
        try:
            inv.site_ca_der()
        except SiteCaMissing:
            inv.init_ca(name="kontur demo site CA")
        if inv.camera(camera_id) is not None:
            if key.is_file() and chain.is_file():
                return DemoCameraFiles(key, chain, created=False)
            raise CameraExists(
                f"camera {camera_id}: expected no enrolled camera or the demo's own key in "
                f"{out}, got an enrolled camera without it (a real camera: pass --no-sign)"
            )
        issued = inv.issue(camera_id, out)
        inv.enroll(camera_id, issued.chain_path.read_bytes())
        return DemoCameraFiles(issued.key_path, issued.chain_path, created=True)


class DemoCamera:
    """Signs GOPs of one unsigned H.264/H.265 stream, as the camera would have."""

    def __init__(
        self,
        codec: Codec,
        identity: SigningIdentity,
        header: dict[str, object],
        clock: Clock,
    ) -> None:
        """``header``: a GOP header of :func:`kontur.ingest.source.read_gops`."""
        extradata = bytes.fromhex(str(header.get("extradata") or ""))
        self._length_size, ps = parse_extradata(extradata, codec)
        self._annexb = header.get("framing") == "annexb"
        self._codec = codec
        self._clock = clock
        self._signer = OmsSigner(codec, identity, parameter_sets=ps)

    @classmethod
    def load(
        cls, codec: Codec, key_path: Path, chain_path: Path, header: dict[str, object], clock: Clock
    ) -> DemoCamera:
        """A demo camera from its key and chain files."""
        identity = load_signing_identity(key_path.read_bytes(), chain_path.read_bytes())
        return cls(codec, identity, header, clock)

    def sign_packet(self, packet: SegmentPacket) -> SegmentPacket:
        """One packet as the camera sends it: captured now (by the trusted clock), signed."""
        now = dt.datetime.fromtimestamp(self._clock.wall(), dt.UTC)
        nals = split_packet(packet.data, self._length_size, self._codec)
        au = self._signer.sign_access_unit(nals, now)
        return SegmentPacket(self._frame(au), packet.pts, packet.keyframe)

    def finish(self, pts: int | None) -> SegmentPacket | None:
        """The signed end of stream (an SEI-only access unit), or None if nothing was signed."""
        au = self._signer.finish()
        return None if au is None else SegmentPacket(self._frame(au), pts, False)

    def _frame(self, au: SignedAccessUnit) -> bytes:
        if self._annexb:
            return annexb_bytes(au.nal_units, self._codec)
        size = self._length_size
        return b"".join(len(n).to_bytes(size, "big") + n for n in au.nal_units)
