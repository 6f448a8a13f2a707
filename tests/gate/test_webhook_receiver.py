"""Issue 9, item 4: the webhook replay contract, end to end over real HTTP (ADR 0017).

The real :class:`WebhookSink` posts to a real ``http.server`` on 127.0.0.1 whose handler runs
the reference receiver (:func:`verify_webhook`) on the bytes it got. Replays and tampering are
re-sent over real HTTP with ``http.client``, byte for byte as captured.
"""

from __future__ import annotations

import http.client
import http.server
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import ValidationError

from kontur.clock import ManualClock
from kontur.config import WebhookConfig, load_config
from kontur.errors import ConfigError
from kontur.gate import SinkConfigError
from kontur.gate.errors import (
    WebhookMalformed,
    WebhookRefused,
    WebhookReplayed,
    WebhookSignatureInvalid,
    WebhookStale,
)
from kontur.gate.sinks import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CameraAlarmEvent,
    WebhookBody,
    WebhookSink,
    camera_event,
    sign,
)
from kontur.gate.webhook_receiver import AcceptedWebhook, verify_webhook

KEY = b"s3cret-hmac-key"
SENT_AT = 1_700_000_000  # ManualClock's wall time
_STATUS = {
    WebhookMalformed: 400,
    WebhookSignatureInvalid: 401,
    WebhookStale: 401,
    WebhookReplayed: 409,
}


@dataclass
class Captured:
    """One POST as it arrived: its headers and exact body bytes."""

    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server on loopback that runs :func:`verify_webhook` on every POST."""

    server: http.server.ThreadingHTTPServer
    now: float = SENT_AT + 1.0
    seen: dict[str, int] = field(default_factory=dict)
    received: list[Captured] = field(default_factory=list)
    accepted: list[AcceptedWebhook] = field(default_factory=list)
    refused: list[WebhookRefused] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        self.received.append(Captured(headers, body))
        try:
            got = verify_webhook(headers, body, KEY, now=self.now, seen_nonces=self.seen)
        except WebhookRefused as exc:
            self.refused.append(exc)
            return _STATUS[type(exc)]
        self.accepted.append(got)
        return 204

    def post(self, headers: dict[str, str], body: bytes) -> int:
        """Re-send a POST over real HTTP, as an attacker on the path would."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("POST", "/hook", body=body, headers=headers)
            status = conn.getresponse().status
        finally:
            conn.close()
        return status


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = box.handle(dict(self.headers.items()), body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box = Receiver(server)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield box
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def hook(receiver: Receiver) -> Iterator[WebhookSink]:
    cfg = WebhookConfig(url=receiver.url, secret_env="HOOK_KEY", unsafe_plain_http=True)
    sink = WebhookSink(cfg, environ={"HOOK_KEY": KEY.decode()}, clock=ManualClock())
    yield sink
    sink.close(timeout=2)


def _alarm(n: int = 0) -> CameraAlarmEvent:
    return camera_event("cam1", "gop_failures", f"expected AUTHENTIC GOPs, got {n} failing")


def _delivered(hook: WebhookSink, receiver: Receiver) -> Captured:
    assert hook.send(_alarm()) is None
    return receiver.received[-1]


# --- over real HTTP: valid, replayed, stale, tampered --------------------------------------


def test_a_signed_delivery_is_accepted(hook: WebhookSink, receiver: Receiver) -> None:
    event = _alarm()
    assert hook.send(event) is None
    (got,) = receiver.accepted
    assert got.body.event == event and got.timestamp == SENT_AT
    assert receiver.seen == {got.nonce: SENT_AT}
    assert hook.send(_alarm(1)) is None
    assert len(receiver.accepted) == 2 and len(receiver.seen) == 2  # a fresh nonce each POST


def test_a_replayed_delivery_is_refused(hook: WebhookSink, receiver: Receiver) -> None:
    captured = _delivered(hook, receiver)
    assert receiver.post(captured.headers, captured.body) == 409
    (why,) = receiver.refused
    nonce = captured.headers[NONCE_HEADER]
    assert isinstance(why, WebhookReplayed)
    assert str(why) == f"webhook: expected a new nonce, got {nonce} again (replayed)"
    assert len(receiver.accepted) == 1


def test_a_stale_delivery_is_refused(hook: WebhookSink, receiver: Receiver) -> None:
    receiver.now = SENT_AT + 301.0  # the sink's clock is 301 s behind the receiver's
    err = hook.send(_alarm())
    assert err is not None and "expected a 2xx answer, got HTTP 401" in err
    (why,) = receiver.refused
    assert isinstance(why, WebhookStale)
    assert "expected a timestamp within 300 s of 1700000301, got 1700000000 (+301 s)" in str(why)
    assert receiver.accepted == []


def test_a_capture_replayed_after_the_window_is_stale_and_then_forgotten(
    hook: WebhookSink, receiver: Receiver
) -> None:
    captured = _delivered(hook, receiver)
    receiver.now = SENT_AT + 400.0
    assert receiver.post(captured.headers, captured.body) == 401
    assert isinstance(receiver.refused[-1], WebhookStale)
    cfg = WebhookConfig(url=receiver.url, secret_env="HOOK_KEY", unsafe_plain_http=True)
    later = WebhookSink(cfg, environ={"HOOK_KEY": KEY.decode()}, clock=ManualClock(SENT_AT + 400))
    try:
        assert later.send(_alarm(2)) is None
    finally:
        later.close(timeout=2)
    assert list(receiver.seen.values()) == [SENT_AT + 400]  # the old nonce was forgotten


Tamper = Callable[[Captured], tuple[dict[str, str], bytes]]


def _tamper_body(c: Captured) -> tuple[dict[str, str], bytes]:
    return c.headers, c.body.replace(b"gop_failures", b"all_is_well_")


def _freshen_timestamp(c: Captured) -> tuple[dict[str, str], bytes]:
    return {**c.headers, TIMESTAMP_HEADER: str(SENT_AT + 200)}, c.body


def _new_nonce(c: Captured) -> tuple[dict[str, str], bytes]:
    return {**c.headers, NONCE_HEADER: "0" * 32}, c.body


def _other_key(c: Captured) -> tuple[dict[str, str], bytes]:
    ts, nonce = c.headers[TIMESTAMP_HEADER], "1" * 32
    forged = sign(c.body, b"guessed-key", timestamp=ts, nonce=nonce)
    return {**c.headers, NONCE_HEADER: nonce, SIGNATURE_HEADER: forged}, c.body


@pytest.mark.parametrize(
    "tamper",
    [_tamper_body, _freshen_timestamp, _new_nonce, _other_key],
    ids=["body_altered", "timestamp_moved", "nonce_swapped_to_dodge_replay", "forged_other_key"],
)
def test_a_tampered_delivery_is_refused(
    hook: WebhookSink, receiver: Receiver, tamper: Tamper
) -> None:
    captured = _delivered(hook, receiver)
    headers, body = tamper(captured)
    assert receiver.post(headers, body) == 401
    why = receiver.refused[-1]
    assert isinstance(why, WebhookSignatureInvalid)
    assert "expected an HMAC-SHA256 over timestamp" in str(why) and "got another" in str(why)
    assert len(receiver.accepted) == 1


def test_an_unsigned_delivery_is_refused(receiver: Receiver) -> None:
    cfg = WebhookConfig(url=receiver.url, unsafe_plain_http=True)  # no secret_env
    sink = WebhookSink(cfg, environ={}, clock=ManualClock())
    try:
        err = sink.send(_alarm())
    finally:
        sink.close(timeout=2)
    assert err is not None and "got HTTP 400" in err
    assert str(receiver.refused[-1]) == "webhook: expected header X-Kontur-Signature, got none"


# --- the pure checks -----------------------------------------------------------------------


def _signed(body: bytes, ts: int = SENT_AT, nonce: str = "a" * 32) -> dict[str, str]:
    sig = sign(body, KEY, timestamp=str(ts), nonce=nonce)
    return {TIMESTAMP_HEADER: str(ts), NONCE_HEADER: nonce, SIGNATURE_HEADER: sig}


def _body(sent_at: float = SENT_AT) -> bytes:
    return WebhookBody(sent_at=sent_at, event=_alarm()).model_dump_json().encode()


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({TIMESTAMP_HEADER: "1.7e9"}, "expected X-Kontur-Timestamp to be decimal Unix seconds"),
        ({NONCE_HEADER: "A" * 32}, "expected X-Kontur-Nonce to be 32 lowercase hex"),
        ({SIGNATURE_HEADER: "md5=00"}, "expected X-Kontur-Signature to be sha256=<64"),
        ({NONCE_HEADER: None}, "expected header X-Kontur-Nonce, got none"),
    ],
    ids=["float_timestamp", "upper_hex_nonce", "other_scheme", "nonce_missing"],
)
def test_malformed_headers_are_refused(change: dict[str, str | None], fragment: str) -> None:
    body = _body()
    headers = {k: v for k, v in {**_signed(body), **change}.items() if v is not None}
    with pytest.raises(WebhookMalformed, match=fragment):
        verify_webhook(headers, body, KEY, now=SENT_AT, seen_nonces={})


def test_header_names_are_case_insensitive() -> None:
    body = _body()
    headers = {k.lower(): v for k, v in _signed(body).items()}
    got = verify_webhook(headers, body, KEY, now=SENT_AT + 299, seen_nonces={})
    assert got.nonce == "a" * 32


def test_a_body_whose_sent_at_disagrees_with_the_timestamp_is_refused() -> None:
    body = _body(sent_at=SENT_AT - 1000)
    with pytest.raises(WebhookMalformed, match=r"expected body sent_at 1700000000 .*, got 1699"):
        verify_webhook(_signed(body), body, KEY, now=SENT_AT, seen_nonces={})


def test_seen_nonces_stay_bounded_by_the_window() -> None:
    seen: dict[str, int] = {}
    for i in range(50):
        ts = SENT_AT + 10 * i
        nonce, body = f"{i:032x}", _body(ts)
        verify_webhook(_signed(body, ts, nonce), body, KEY, now=ts, seen_nonces=seen)
    assert len(seen) == 31  # the last 300 s of POSTs, one every 10 s, and no more
    assert min(seen.values()) == SENT_AT + 190


def test_bad_receiver_settings_are_a_callers_bug() -> None:
    with pytest.raises(ValueError, match="non-empty webhook secret"):
        verify_webhook(_signed(_body()), _body(), b"", now=SENT_AT, seen_nonces={})
    with pytest.raises(ValueError, match="positive max_skew_s"):
        verify_webhook(_signed(_body()), _body(), KEY, now=SENT_AT, seen_nonces={}, max_skew_s=0)


# --- plain http only with unsafe_plain_http, and loudly -------------------------------------


def test_plain_http_is_a_config_error_without_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"expected an https:// webhook URL \(or unsafe_"):
        WebhookConfig(url="http://receiver.example/hook")
    assert WebhookConfig(url="https://receiver.example/hook").unsafe_plain_http is False
    cfg = tmp_path / "site.yaml"
    cfg.write_text(
        "site: s\ncameras: [{id: c}]\nactions: {notify: {critical: false}}\n"
        "placement: {sla: {latency_ms_max: 250, throughput_fps_min: 5, accuracy_min: 0.8}}\n"
        "sinks: {webhook: {url: 'http://receiver.example/hook'}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    message = str(info.value)
    assert "\n" not in message and "key sinks.webhook" in message
    assert "expected an https:// webhook URL (or unsafe_plain_http: true), got http://" in message


def test_the_sink_refuses_plain_http_it_was_not_allowed() -> None:
    cfg = WebhookConfig.model_construct(url="http://127.0.0.1:9/hook", timeout_s=1.0)
    with pytest.raises(SinkConfigError, match=r"expected an https:// URL \(or unsafe_plain_http"):
        WebhookSink(cfg)


def test_plain_http_warns_loudly_at_every_start(
    receiver: Receiver, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = WebhookConfig(url=receiver.url, secret_env="K", unsafe_plain_http=True)
    with caplog.at_level(logging.WARNING, logger="kontur.gate.sinks"):
        for _ in range(2):
            WebhookSink(cfg, environ={"K": "x"}).close(timeout=1)
    unsafe = [r.getMessage() for r in caplog.records if "UNSAFE" in r.getMessage()]
    assert len(unsafe) == 2 and "uses plain http (unsafe_plain_http is on)" in unsafe[0]
    err = capsys.readouterr().err
    assert err.count("kontur: warning: UNSAFE: webhook http://127.0.0.1:") == 2


def test_https_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    cfg = WebhookConfig(url="https://127.0.0.1:9/hook", secret_env="K")
    with caplog.at_level(logging.WARNING, logger="kontur.gate.sinks"):
        WebhookSink(cfg, environ={"K": "x"}).close(timeout=1)
    assert not [r for r in caplog.records if "UNSAFE" in r.getMessage()]
