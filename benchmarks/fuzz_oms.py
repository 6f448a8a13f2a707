"""Seeded mutation fuzzing of the OMS parsers and validator (standalone, not in the suite).

Feeds N inputs (mutated real OMS SEIs of the shared vectors, random bytes, mutated
length-prefixed packets) to ``OmsSei.from_nal``, the NAL splitters, the TLV decoders and the
validator, and counts outcomes. Any exception that is not an ``OmsError`` is a bug: it is
printed with its input and the script exits 1.

    .venv/bin/python benchmarks/fuzz_oms.py --count 300000 --seed 1
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

import av
from cryptography import x509

from kontur.ingest.oms.errors import OmsError
from kontur.ingest.oms.nal import Codec, split_annexb, split_length_prefixed, split_packet
from kontur.ingest.oms.sei import CryptoInfoTlv, OmsSei, VendorInfoTlv, is_oms_sei
from kontur.ingest.oms.validator import AccessUnit, OmsValidator

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "oms" / "streams"
CA = DATA.parent / "keys" / "ca_ec.pem"
ANCHORS = x509.load_pem_x509_certificates(CA.read_bytes()) if CA.exists() else []


def seeds() -> list[tuple[Codec, bytes]]:
    """Real OMS SEIs (several per vector kind) and a few slices to mutate."""
    out: list[tuple[Codec, bytes]] = []
    for name in ("pets_h264_default", "pets_h265_certsei", "car_h265_sigfreq2", "pets_h264_rsa"):
        path = DATA / f"{name}.mp4"
        if not path.exists():
            continue
        codec = Codec.H265 if "h265" in name else Codec.H264
        with av.open(str(path)) as container:
            for i, packet in enumerate(container.demux(container.streams.video[0])):
                if not packet.size:
                    continue
                nals = split_packet(bytes(packet))
                out += [(codec, n) for n in nals if is_oms_sei(n, codec)]
                if i > 45:
                    break
    return out or [
        (
            Codec.H264,
            b"\x06\x05\x11" + bytes.fromhex("005bc93f2d715e95ada4796f90877a6f") + b"\x00\x80",
        )
    ]


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    inplace = rng.random() < 0.5  # keep the length: the payload size stays valid, TLVs get hit
    for _ in range(rng.randint(1, 8)):
        op = rng.random() * (0.55 if inplace else 1.0)
        pos = rng.randrange(len(buf)) if buf else 0
        if op < 0.4 and buf:
            buf[pos] ^= 1 << rng.randrange(8)
        elif op < 0.55 and buf:
            buf[pos] = rng.choice((0x00, 0x01, 0x03, 0x80, 0xFF))
        elif op < 0.7:
            del buf[pos:]
        elif op < 0.85:
            buf[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif buf:
            del buf[pos : pos + rng.randint(1, 32)]
    return bytes(buf)


def one(rng: random.Random, pool: list[tuple[Codec, bytes]], stats: Counter[str]) -> None:
    codec, base = rng.choice(pool)
    kind = rng.random()
    data = rng.randbytes(rng.randint(0, 200)) if kind < 0.1 else mutate(rng, base)
    try:
        sei = OmsSei.from_nal(data, codec)
        stats["sei parsed"] += 1
        assert sei.to_nal() == sei.nal, "round trip"
    except OmsError as exc:
        stats[f"sei {type(exc).__name__}"] += 1
    for call in (
        lambda: split_length_prefixed(data),
        lambda: split_annexb(data),
        lambda: CryptoInfoTlv.from_value(data[20:60]),
        lambda: VendorInfoTlv.from_value(data[10:90]),
    ):
        with contextlib.suppress(OmsError):
            call()
    if kind > 0.9:
        validator = OmsValidator(codec, ANCHORS)
        validator.push(AccessUnit((base,)))
        validator.push(
            AccessUnit((b"\x65\x88\x01" if codec is Codec.H264 else b"\x26\x01\xaf", data))
        )
        validator.finish()
        stats["validator runs"] += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    pool = seeds()
    stats: Counter[str] = Counter()
    start = time.perf_counter()
    for i in range(args.count):
        state = rng.getstate()
        try:
            one(rng, pool, stats)
        except Exception:  # any non-OmsError is the finding
            rng.setstate(state)
            print(f"FAIL at input {i} (seed {args.seed}):", file=sys.stderr)
            traceback.print_exc()
            return 1
    elapsed = time.perf_counter() - start
    print(f"{args.count} inputs, seed {args.seed}, {len(pool)} seed SEIs, {elapsed:.1f} s")
    for key, value in sorted(stats.items()):
        print(f"  {key}: {value}")
    print("no unexpected exception")
    return 0


if __name__ == "__main__":
    sys.exit(main())
