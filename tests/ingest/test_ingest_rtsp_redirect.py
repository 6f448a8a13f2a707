"""A camera may not redirect kontur (ADR 0037): libavformat follows an RTSP 3xx to whatever
host and port its ``Location`` names, over plain TCP, and offers the configured camera's
credentials there on a 401; it has no option to refuse. kontur's loopback relay frames what
the camera sends exactly as FFmpeg does while it waits for a reply and refuses a 3xx before
FFmpeg reads it.

What we show: the framing core's vectors (each named after the trick it models: LF-only
lines, a frame at the start of a line, a status that wraps C's ``int``, a NUL that ends the
header block, a lying ``Content-Length``…) are refused or passed as FFmpeg reads them; real
FFmpeg, opened directly, does follow each redirect vector to the other server, while
``open_rtsp`` refuses it with one line and not one byte reaches that server; the same for
``rtsps://`` through kontur's TLS, with credentials in the URL that reach neither server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.conftest import shared
from tests.hostile_rtsp import Clip, HostileRtspServer, Plan, plan

from kontur.ingest._rtsps_relay import ReplyFraming
from kontur.ingest.rtsp import ReplyRefused, RtspPolicy, open_rtsp
from kontur.ingest.tls import RtspsTrust, leaf_sha256

POLICY = RtspPolicy(open_timeout_s=3, read_timeout_s=2, max_attempts=0)
OK = b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n"
ASKS = b"OPTIONS * RTSP/1.0\r\nCSeq: 9\r\n\r\n"  # FFmpeg answers it and reads on
MOVED = b"RTSP/1.0 301 Moved\r\nCSeq: 2\r\nLocation: %s\r\n\r\n"

#: name -> (the camera's bytes with ``%s`` for the Location, the bytes FFmpeg may see first)
REDIRECTS: dict[str, tuple[bytes, bytes]] = {
    "redirect_plain": (MOVED, b""),
    "redirect_lf_only": (b"RTSP/1.0 302 Found\nCSeq: 2\nLocation: %s\n\n", b""),
    "redirect_after_a_request_from_the_camera": (ASKS + MOVED, ASKS),
    "redirect_after_a_frame_at_line_start": (b"$\x00\x00\x04abcd" + MOVED, b"$\x00\x00\x04abcd"),
    "redirect_after_a_long_frame": (
        b"$\x01\x01\x02" + b"\n" * 258 + MOVED,
        b"$\x01\x01\x02" + b"\n" * 258,
    ),
    "redirect_after_cr_then_frame": (b"\r$\x01\x00\x01x" + MOVED, b"\r$\x01\x00\x01x"),
    "redirect_status_wraps_c_int": (MOVED.replace(b" 301 ", b" 4294967597 "), b""),
    "redirect_status_zero_padded": (MOVED.replace(b" 301 ", b" +0303 "), b""),
    "redirect_tabs_and_crs_in_status_line": (MOVED.replace(b" 301 ", b"\t3\r07\t"), b""),
    "redirect_after_a_body": (
        b"ANNOUNCE * RTSP/1.0\r\nContent-Length: 5\r\n\r\nhello" + MOVED,
        b"ANNOUNCE * RTSP/1.0\r\nContent-Length: 5\r\n\r\nhello",
    ),
    "redirect_after_a_length_that_wraps_c_int": (
        b"ANNOUNCE * RTSP/1.0\r\ncontent-length:  4294967301\r\n\r\nhello" + MOVED,
        b"ANNOUNCE * RTSP/1.0\r\ncontent-length:  4294967301\r\n\r\nhello",
    ),
    "redirect_after_a_nul_ends_the_header": (
        b"ANNOUNCE * RTSP/1.0\r\n\0Content-Length: 9\r\n" + MOVED,
        b"ANNOUNCE * RTSP/1.0\r\n\0Content-Length: 9\r\n",
    ),
}

#: name -> the camera's bytes, all of which FFmpeg reads and none of which redirects it
PASSED: dict[str, bytes] = {
    "redirect_inside_a_body": b"RTSP/1.0 200 OK\r\nContent-Length: 37\r\n\r\n" + MOVED % b"x",
    "redirect_inside_a_frame": b"$\x00\x00\x25" + MOVED % b"x",
    "status_beyond_what_ffmpeg_reads": b"RTSP/1.0 " + b"0" * 1100 + b"301 x\r\n\r\n",
    "status_3xx_as_a_header": b"RTSP/1.0 200 OK\r\nX: RTSP/1.0 301\r\n\r\n",
    "negative_length_is_no_body": b"RTSP/1.0 200 OK\r\nContent-Length: -5\r\n\r\n" + OK,
}


def _feed(data: bytes, byte_by_byte: bool) -> tuple[bytes, ReplyFraming]:
    framing = ReplyFraming()
    framing.note_request(b"DESCRIBE rtsp://127.0.0.1:1/stream RTSP/1.0\r\n")
    chunks = [data[i : i + 1] for i in range(len(data))] if byte_by_byte else [data]
    return b"".join(framing.feed(c) for c in chunks), framing


@pytest.mark.parametrize("byte_by_byte", [False, True], ids=["whole", "byte_by_byte"])
@pytest.mark.parametrize("name", REDIRECTS)
def test_redirect_vectors_are_refused_before_ffmpeg_reads_them(
    name: str, byte_by_byte: bool
) -> None:
    wire, before = REDIRECTS[name]
    out, framing = _feed(wire.replace(b"%s", b"rtsp://mallory:pw@10.6.6.6:554/x"), byte_by_byte)
    assert out == before, name
    assert framing.refusal is not None and framing.finished, name
    assert framing.refusal.startswith("camera answered DESCRIBE with "), framing.refusal
    assert framing.refusal.endswith(
        " to rtsp://***@10.6.6.6:554/x: expected no redirect (a camera may not send kontur "
        "elsewhere)"
    ), framing.refusal


@pytest.mark.parametrize("name", PASSED)
def test_what_ffmpeg_does_not_read_as_a_redirect_passes_whole(name: str) -> None:
    for byte_by_byte in (False, True):
        out, framing = _feed(PASSED[name], byte_by_byte)
        assert (out, framing.refusal) == (PASSED[name], None), name


def test_a_header_over_64_kib_is_refused() -> None:
    out, framing = _feed(OK[:17] + b"X-Pad: " + b"a" * 70_000, byte_by_byte=False)
    assert out == OK[:17]  # the status line went on; the oversized header line did not
    assert framing.refusal == "expected RTSP header lines under 64 KiB, got more"
    _, framing = _feed(b"RTSP/1.0 200 OK\r\n" + b"X-Pad: abcdefgh\r\n" * 5000, False)
    assert framing.refusal == "expected RTSP header lines under 64 KiB, got more"


# --- against real FFmpeg ------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip() -> Clip:
    return Clip.from_mp4(shared("video", "car_traffic_640x360.mp4"), 30)


def _camera(clip: Clip, describe: bytes) -> HostileRtspServer:
    """A camera that answers DESCRIBE with ``describe`` (everything else honestly)."""
    url: list[str] = []

    def moved(n: int) -> Plan:
        honest = plan(clip, url[0], None)
        honest.reply = lambda method, reply: describe if method == "DESCRIBE" else reply
        return honest

    server = HostileRtspServer(moved, sessions=2)
    url.append(server.url)
    return server


def _with_auth(url: str, userinfo: str) -> str:
    return url.replace("rtsp://", f"rtsp://{userinfo}@", 1)


@pytest.mark.parametrize("name", REDIRECTS)
def test_ffmpeg_follows_each_redirect_vector_and_kontur_refuses_it(clip: Clip, name: str) -> None:
    """The vectors are real: FFmpeg opened directly goes to the other server; through
    ``open_rtsp`` it never does, and the refusal is one line."""
    with HostileRtspServer(lambda n: plan(clip, "", None), sessions=4) as elsewhere:
        describe = REDIRECTS[name][0].replace(b"%s", elsewhere.url.encode())
        # only whether FFmpeg went there counts, not what it found
        with _camera(clip, describe) as camera, contextlib.suppress(av.error.FFmpegError):
            av.open(camera.url, options={"rtsp_transport": "tcp"}, timeout=(3, 2)).close()
        assert elsewhere.served, f"{name}: FFmpeg did not follow the redirect on its own"
    with HostileRtspServer(lambda n: plan(clip, "", None), sessions=4) as elsewhere:
        describe = REDIRECTS[name][0].replace(b"%s", elsewhere.url.encode())
        with _camera(clip, describe) as camera, pytest.raises(ReplyRefused) as err:
            open_rtsp(_with_auth(camera.url, "alice:s3cret"), POLICY)
        assert not elsewhere.served, f"{name}: ingest followed the redirect"
    message = str(err.value)
    assert message.startswith(f"source {_with_auth(camera.url, '***')}: camera answered ")
    assert message.endswith(f" to {elsewhere.url}: expected no redirect (a camera may not "
                            "send kontur elsewhere)")  # fmt: skip
    assert "\n" not in message and "s3cret" not in message and "alice" not in message


# --- rtsps:// through kontur's TLS ----------------------------------------------------------


def _self_signed(out: Path) -> tuple[Path, Path, str]:
    """A camera's self-signed TLS certificate for 127.0.0.1: (cert, key, SHA-256 pin)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "camera 127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            False,
        )
        .sign(key, hashes.SHA256())
    )
    (out / "cam.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (out / "cam.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pin = leaf_sha256(cert.public_bytes(serialization.Encoding.DER))
    return out / "cam.pem", out / "cam.key", pin


class TlsFront:
    """``rtsps://`` in front of a plain RTSP server: TLS on loopback, bytes piped to it."""

    def __init__(self, backend: str, cert: Path, key: Path) -> None:
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ctx.load_cert_chain(cert, key)
        self._backend = ("127.0.0.1", int(backend.rsplit(":", 1)[1].split("/", 1)[0]))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        port = self._listener.getsockname()[1]
        self.url = backend.replace("rtsp://", "rtsps://").replace(
            f":{self._backend[1]}/", f":{port}/"
        )
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
                tls = self._ctx.wrap_socket(conn, server_side=True)
            except (TimeoutError, ssl.SSLError, OSError):
                continue
            back = socket.create_connection(self._backend)
            for a, b in ((tls, back), (back, tls)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()
        self._listener.close()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                sock.close()


@pytest.fixture
def tls_front(tmp_path: Path) -> Iterator[Callable[[str], tuple[TlsFront, RtspsTrust]]]:
    cert, key, pin = _self_signed(tmp_path)
    fronts: list[TlsFront] = []

    def make(backend: str) -> tuple[TlsFront, RtspsTrust]:
        fronts.append(TlsFront(backend, cert, key))
        return fronts[-1], RtspsTrust(server_sha256=pin)

    yield make
    for front in fronts:
        front.close()


def test_an_rtsps_camera_may_not_redirect_kontur_out_of_tls(
    clip: Clip, tls_front: Callable[[str], tuple[TlsFront, RtspsTrust]]
) -> None:
    """Behind TLS the camera redirects to a plain server: FFmpeg would leave kontur's TLS,
    the pin and ``encryption_required`` behind. The relay refuses; the other server gets
    not one connection, and the URL's credentials reach neither server."""
    with HostileRtspServer(lambda n: plan(clip, "", None), sessions=4) as elsewhere:
        with _camera(clip, MOVED % elsewhere.url.encode()) as camera:
            front, trust = tls_front(camera.url)
            policy = RtspPolicy(
                open_timeout_s=3, read_timeout_s=2, max_attempts=0, tls=trust,
                encryption_required=True,
            )  # fmt: skip
            source = _with_auth(front.url.replace("rtsps://", "rtsp://"), "alice:s3cret")
            source = source.replace("rtsp://", "rtsps://", 1)
            t0 = time.monotonic()
            with pytest.raises(ReplyRefused) as err:
                open_rtsp(source, policy)
            assert time.monotonic() - t0 < 2.5
        assert not elsewhere.served, "ingest followed the camera's redirect out of TLS"
    message = str(err.value)
    assert message == (
        f"source {source.replace('alice:s3cret', '***')}: camera answered DESCRIBE with 301 to "
        f"{elsewhere.url}: expected no redirect (a camera may not send kontur elsewhere)"
    )
    assert [r.split(" ", 1)[0] for r in camera.served[0].requests] == ["OPTIONS", "DESCRIBE"]
    assert all("Authorization" not in r for s in camera.served for r in s.requests)
