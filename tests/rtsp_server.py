"""A real RTSP server on loopback for the ingest tests (GStreamer's gst-rtsp-server).

Run it with Debian's *system* Python, which has ``gi`` (the project venv does not need it)::

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --file clip.mp4 --codec h264 [--fast]

It serves ``rtsp://127.0.0.1:PORT/stream``: ``filesrc ! qtdemux ! h26Xparse ! rtph26Xpay``.
The parser only repacks the MP4 samples into NAL units for the payloader
(``config-interval`` stays 0: no parameter sets are inserted, SEIs are passed through).
``--fast`` turns the stream's rate control off (the ONVIF replay "Rate-Control: no"
behaviour): the file is sent as fast as the client reads it, then the session ends with
EOS. Each client connection gets its own pipeline from the start of the file.
Prints ``ready`` on stdout once the port is bound; runs until killed.

``--tls-cert CERT.pem --tls-key KEY.pem`` serve RTSPS instead (``rtsps://``, RTSP over TLS,
``gst_rtsp_auth_set_tls_certificate``); ``--client-ca CA.pem`` then demands a client
certificate that chains to that CA (``G_TLS_AUTHENTICATION_REQUIRED`` with the CA as the TLS
database): a client without one, or with one from another CA, is refused in the handshake.
"""

from __future__ import annotations

import argparse
import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gio, GLib, Gst, GstRtspServer  # noqa: E402


def _tls(
    server: GstRtspServer.RTSPServer,
    factory: GstRtspServer.RTSPMediaFactory,
    cert: str,
    key: str,
    client_ca: str | None,
) -> None:
    """Serve RTSPS: the server certificate, anonymous access, and an optional client CA."""
    auth = GstRtspServer.RTSPAuth()
    auth.set_tls_certificate(Gio.TlsCertificate.new_from_files(cert, key))
    if client_ca:
        database = Gio.TlsFileDatabase.new(os.path.abspath(client_ca))
        auth.set_tls_database(database)
        auth.set_tls_authentication_mode(Gio.TlsAuthenticationMode.REQUIRED)

        # GStreamer 1.22's default handler refuses every client certificate, even one that
        # chains to the database: verify the chain ourselves (purpose: client authentication)
        def accept(_auth: object, _conn: object, cert: Gio.TlsCertificate, _flags: object) -> bool:
            flags = database.verify_chain(
                cert,
                Gio.TLS_DATABASE_PURPOSE_AUTHENTICATE_CLIENT,
                None,
                None,
                Gio.TlsDatabaseVerifyFlags.NONE,
                None,
            )
            return bool(flags == 0)

        auth.connect("accept-certificate", accept)
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "anonymous")
    auth.set_default_token(token)  # no RTSP-level login: TLS is what is under test
    perms = GstRtspServer.RTSPPermissions()
    perms.add_permission_for_role("anonymous", "media.factory.access", True)
    perms.add_permission_for_role("anonymous", "media.factory.construct", True)
    factory.set_permissions(perms)
    server.set_auth(auth)


def main() -> int:
    """Parse the arguments, serve until killed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--file", required=True)
    ap.add_argument("--codec", choices=("h264", "h265"), default="h264")
    ap.add_argument("--demux", choices=("qtdemux", "matroskademux"), default="qtdemux")
    ap.add_argument("--fast", action="store_true", help="no rate control: send at read speed")
    ap.add_argument("--tls-cert", help="serve RTSPS with this certificate (PEM)")
    ap.add_argument("--tls-key", help="the private key of --tls-cert (PEM)")
    ap.add_argument("--client-ca", help="demand a client certificate chaining to this CA")
    args = ap.parse_args()
    Gst.init(None)
    location = args.file.replace("\\", "\\\\").replace('"', '\\"')
    launch = (
        f'( filesrc location="{location}" ! {args.demux} ! {args.codec}parse config-interval=0 '
        f"! rtp{args.codec}pay name=pay0 pt=96 config-interval=0 )"
    )
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(False)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    server.get_mount_points().add_factory("/stream", factory)
    if args.fast:
        # PLAY resets rate control to the client's Rate-Control header (default yes): undo it
        # once PLAY is answered, so the TCP appsink stops syncing to the clock.
        def played(_client: object, ctx: GstRtspServer.RTSPContext) -> None:
            media = ctx.media
            if media is not None:
                media.set_rate_control(False)

        server.connect("client-connected", lambda _s, c: c.connect("play-request", played))
    if args.tls_cert:
        _tls(server, factory, args.tls_cert, args.tls_key, args.client_ca)
    if server.attach(None) == 0:
        print(f"cannot bind 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    print("ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
