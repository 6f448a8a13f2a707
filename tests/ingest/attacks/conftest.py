"""The attack lab: a site CA, enrolled cameras and real footage signed once per session.

Footage: the first 240 pictures of ``video/pets09_s2l1_480x360.avi`` re-encoded with libx264
(GOPs of 10 frames, no B-frames, SPS/PPS in-band at every IDR) in two recordings of 120
frames (A: 0-119, B: 120-239), plus the reference H.265 vector ``pets_h265_default.mp4``
stripped of its SEIs; all signed by :func:`kontur.ingest.oms.writer.sign_file` with camera
keys issued by the lab's site CA. Capture times lie an hour before the machine clock (so the
CLI, which uses the system clock, sees them in the past); the inventory's clock stands one
more hour earlier, when the cameras were issued and enrolled.

Cameras:

- ``cam-1``: the camera under attack (recordings A, B, the H.265 clip);
- ``cam-2``: a second camera of the same site (A's footage signed with its key);
- ``cam-rev``: enrolled, then revoked;
- ``cam-old``: enrolled with a leaf that expired before the capture times;
- ``cam-prof``: enrolled with the profile ``h264,480x360,10``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tests.ingest.attacks.streams import Clip, encode, read_clip, strip_oms, utc

from kontur.clock import ManualClock
from kontur.ingest.freshness import CameraProfile, FreshnessPolicy
from kontur.ingest.inventory import (
    CA_CERT_NAME,
    CA_KEY_NAME,
    FreshnessGuard,
    FreshnessStore,
    Inventory,
)
from kontur.ingest.oms.keys import (
    SigningIdentity,
    chain_pem,
    load_signing_identity,
    make_camera_certificate,
    private_key_pem,
)
from kontur.ingest.oms.writer import sign_file
from kontur.ingest.recording import CheckedGop, check_recording

PETS_AVI = "video/pets09_s2l1_480x360.avi"
PETS_H265 = "oms/streams/pets_h265_default.mp4"
#: Frames per recording and per GOP of the H.264 footage.
FRAMES, GOP = 120, 10


@dataclass
class Lab:
    """Site, cameras and signed recordings shared by every attack (built once)."""

    root: Path
    inventory: Inventory
    t0: float
    """Capture time of the first picture of recording A (epoch seconds)."""
    identities: dict[str, SigningIdentity]
    signed: dict[str, Path]
    """Signed recordings by name (a, b, a_cam2, a_rev, a_old, prof_*, switch, h265)."""
    _counter: list[int] = field(default_factory=lambda: [0])

    def clip(self, name: str) -> Clip:
        """The packets of a signed recording."""
        return read_clip(self.signed[name])

    def path(self, stem: str) -> Path:
        """A fresh file name in the lab's scratch dir."""
        self._counter[0] += 1
        return self.root / f"{self._counter[0]:03d}-{stem}.mp4"

    def store(self) -> FreshnessStore:
        """A fresh, empty replay/downgrade state."""
        self._counter[0] += 1
        return FreshnessStore.open(self.root / f"fresh-{self._counter[0]:03d}")

    def check(
        self,
        source: Path,
        camera: str = "cam-1",
        *,
        at: float | None = None,
        store: FreshnessStore | None = None,
        policy: FreshnessPolicy | None = None,
    ) -> list[CheckedGop]:
        """``check_recording`` with the inventory, ``store`` and a clock fixed at ``at``.

        Defaults: a fresh store, the default policy and a clock 20 s after ``t0`` (the end
        of a 12 s recording is then well inside the 30 s delay bound).
        """
        guard = FreshnessGuard(
            self.inventory,
            store if store is not None else self.store(),
            policy or FreshnessPolicy(),
            ManualClock(at if at is not None else self.t0 + 20),
        )
        return check_recording(source, camera, guard=guard)


def _issue(inv: Inventory, camera: str, keys: Path, **enrol: object) -> SigningIdentity:
    issued = inv.issue(camera, keys)
    chain = issued.chain_path.read_bytes()
    inv.enroll(camera, chain, **enrol)  # type: ignore[arg-type]
    return load_signing_identity(issued.key_path.read_bytes(), chain)


def _expired(inv: Inventory, camera: str, not_after: dt.datetime) -> SigningIdentity:
    """A camera whose leaf (issued by the site CA) ends at ``not_after``; enrolled before."""
    data = inv.data_dir
    ca_key = serialization.load_pem_private_key((data / CA_KEY_NAME).read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca = x509.load_pem_x509_certificate((data / CA_CERT_NAME).read_bytes())
    key, leaf = make_camera_certificate(ca_key, ca, camera, ca.not_valid_before_utc, not_after)
    chain = chain_pem(leaf, ca)
    inv.enroll(camera, chain)
    return load_signing_identity(private_key_pem(key), chain)


@pytest.fixture(scope="session")
def lab(shared_file: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Lab:
    """The lab (see the module docstring); footage missing -> the attack tests skip."""
    avi, h265 = shared_file(PETS_AVI), shared_file(PETS_H265)
    root = tmp_path_factory.mktemp("attacks")
    t0 = float(int(time.time()) - 3600)
    inv = Inventory.open(root / "data", ManualClock(t0 - 3600))
    inv.init_ca()
    keys = root / "keys"
    ids = {
        "cam-1": _issue(inv, "cam-1", keys),
        "cam-2": _issue(inv, "cam-2", keys),
        "cam-rev": _issue(inv, "cam-rev", keys),
        "cam-prof": _issue(inv, "cam-prof", keys, profile=CameraProfile("h264", 480, 360, 10)),
        "cam-old": _expired(inv, "cam-old", utc(t0 - 1800)),
    }
    inv.revoke("cam-rev", "stolen from the loading bay")
    raw = root / "raw"
    raw.mkdir()
    a = encode(avi, raw / "a.mp4", frames=FRAMES, gop=GOP)
    b = encode(avi, raw / "b.mp4", start=FRAMES, frames=FRAMES, gop=GOP)
    small = encode(avi, raw / "small.mp4", frames=FRAMES, gop=GOP, size=(320, 240))
    first = read_clip(a)
    half = FRAMES // 2
    switch = first.with_packets([*first.packets[:half], *read_clip(small).packets[half:]]).write(
        raw / "switch.mp4"
    )
    h265 = strip_oms(h265, raw / "h265.mp4")
    signed: dict[str, Path] = {}
    jobs = {
        "a": (a, "cam-1", t0),
        "b": (b, "cam-1", t0 + FRAMES / 10),
        "a_cam2": (a, "cam-2", t0),
        "a_rev": (a, "cam-rev", t0),
        "a_old": (a, "cam-old", t0),
        "prof_ok": (a, "cam-prof", t0),
        "prof_small": (small, "cam-prof", t0),
        "prof_switch": (switch, "cam-prof", t0),
        "switch": (switch, "cam-1", t0),
        "h265": (h265, "cam-1", t0),
    }
    for name, (source, camera, base) in jobs.items():
        signed[name] = root / f"signed-{name}.mp4"
        sign_file(source, signed[name], ids[camera], utc(base))
    return Lab(root, inv, t0, ids, signed)
