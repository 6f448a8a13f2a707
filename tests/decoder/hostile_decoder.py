"""A stand-in for the sandboxed decoder that breaks the protocol one way (the world around
the client under test): ``python hostile_decoder.py MODE``.

It speaks the protocol honestly (ready, then one frame per packet in slot 0/1 alternately,
then done) except for what ``MODE`` names: ``wrong-seq`` (a frame for a packet it was not
given), ``flood`` (more frames than a packet can yield), ``oversize`` (a frame larger than
the buffer), ``garbage`` (a line that is not a message), ``hang`` (never answers a packet),
``die`` (exits in the middle of a packet), ``reuse-slot`` (writes a slot the parent has not
handed back), ``forged-pts`` (a frame time it was never sent), ``multiply`` (two frames for
every picture), ``stop-reading`` (answers the first packet, then never reads its input
again), ``trickle`` (frames a little under the timeout apart, past it in all),
``control-chars`` (fails with newlines and escapes in its error), ``die-at-drain`` (holds
every picture back, then dies when asked to drain), ``honest`` (none of these).
"""

from __future__ import annotations

import json
import sys
import time


def _read(n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sys.stdin.buffer.read(n - len(data))
        if not chunk:
            raise SystemExit(0)
        data += chunk
    return data


def _message() -> dict:
    return json.loads(_read(int.from_bytes(_read(4), "big")))


def _send(obj: dict) -> None:
    sys.stdout.buffer.write(json.dumps(obj).encode() + b"\n")
    sys.stdout.buffer.flush()


def _frame(seq: int, slot: int, width: int = 8, height: int = 8, pts: int | None = None) -> dict:
    return {"type": "frame", "seq": seq, "slot": slot, "width": width, "height": height, "pts": pts}


def main(mode: str) -> None:
    _message()  # start
    _send({"type": "ready", "isolation": {"level": "full"}})
    slot = 0
    while True:
        msg = _message()
        if msg["type"] != "packet":
            continue
        seq = msg["seq"]
        if mode == "stop-reading" and seq > 1:
            time.sleep(3600)  # the packet's bytes stay in (and past) the pipe
        _read(msg["size"])
        if mode == "die-at-drain":
            if msg["size"] == 0:
                raise SystemExit(9)
            _send({"type": "done", "seq": seq, "frames": 0})
            continue
        if mode == "control-chars":
            _send({"type": "failure", "error": "bad\nkontur: fine\x1b[2J"})
            raise SystemExit(3)
        if mode == "trickle":
            for i in range(3):
                time.sleep(0.6)
                _send(_frame(seq, i))
            _send({"type": "done", "seq": seq, "frames": 3})
            continue
        if mode == "hang":
            time.sleep(3600)
        if mode == "die":
            raise SystemExit(9)
        if mode == "garbage":
            sys.stdout.buffer.write(b"{not json\n")
            sys.stdout.buffer.flush()
            continue
        frames = [_frame(seq + (7 if mode == "wrong-seq" else 0), slot, pts=msg.get("pts"))]
        if mode == "forged-pts":
            frames = [_frame(seq, slot, pts=10**9)]
        if mode == "multiply":
            frames = [_frame(seq, slot, pts=msg.get("pts")), _frame(seq, 1 - slot)]
        if mode == "flood":
            frames = [_frame(seq, i % 2) for i in range(200)]
        if mode == "oversize":
            frames = [_frame(seq, slot, 4096, 4096)]
        if mode == "reuse-slot":
            frames = [_frame(seq, 0), _frame(seq, 0)]
        for f in frames:
            _send(f)
        _send({"type": "done", "seq": seq, "frames": len(frames)})
        slot = 1 - slot


if __name__ == "__main__":
    main(sys.argv[1])
