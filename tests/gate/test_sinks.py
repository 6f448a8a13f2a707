"""Sinks against real peers: a file for the log, a real HTTP server on 127.0.0.1 for the webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gate_sim import Peer

from kontur.config import SinksConfig, WebhookConfig
from kontur.gate import LogSink, SinkConfigError, WebhookSink, build_sinks, sign
from kontur.wire import Decision, Outcome, decode, encode

KEY = "s3cret-hmac-key"


def decision(outcome: Outcome = Outcome.ALLOW, frame: int = 20) -> Decision:
    """A decision as the gate makes it."""
    executed = {
        Outcome.ALLOW: "alarm",
        Outcome.RESTRICT: "notify",
        Outcome.OPERATOR: "operator-queue",
    }
    return Decision(
        camera_id="cam1",
        rule="person-dwell",
        action="alarm",
        critical=True,
        track_id=7,
        frame_index=frame,
        outcome=outcome,
        reasons=("gops 0, 1, 2 of cam1 AUTHENTIC",),
        gops=(0, 1, 2),
        executed=executed.get(outcome),
        at=1_700_000_000.0,
    )


@pytest.fixture
def sinks() -> Iterator[list[WebhookSink]]:
    """Webhook sinks made in a test, closed after it."""
    made: list[WebhookSink] = []
    yield made
    for s in made:
        s.close(timeout=2)


def _webhook(made: list[WebhookSink], url: str, **kw: object) -> WebhookSink:
    env = {"HOOK_KEY": KEY}
    timeout = kw.pop("timeout_s", 2.0)
    s = WebhookSink(WebhookConfig(url=url, timeout_s=timeout, **kw), environ=env)  # type: ignore[arg-type]
    made.append(s)
    return s


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# --- log ---------------------------------------------------------------------------------------


def test_log_sink_appends_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "actions.jsonl"
    sink = LogSink(path)
    ds = [decision(o, i) for i, o in enumerate(Outcome)]
    for d in ds:
        sink.emit(d)
    assert len(path.read_text().splitlines()) == 4  # flushed, not only on close
    sink.close()
    again = LogSink(path)
    again.emit(decision())
    again.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 5
    assert [decode(line.encode()) for line in lines] == [*ds, decision()]
    assert json.loads(lines[3])["outcome"] == "DENY" and json.loads(lines[3])["executed"] is None


def test_build_sinks(tmp_path: Path, sinks: list[WebhookSink]) -> None:
    (log,) = build_sinks(SinksConfig(), tmp_path)
    assert isinstance(log, LogSink) and log.path == tmp_path / "actions.jsonl"
    log.close()
    cfg = SinksConfig(log="a/b.jsonl", webhook=WebhookConfig(url="http://127.0.0.1:9/x"))
    built = build_sinks(cfg, tmp_path)
    assert [type(s) for s in built] == [LogSink, WebhookSink]
    assert built[0].path == tmp_path / "a" / "b.jsonl"  # type: ignore[attr-defined]
    for s in built:
        s.close()


# --- webhook against a real server -----------------------------------------------------------


def test_webhook_posts_signed_json(peer: Peer, sinks: list[WebhookSink]) -> None:
    hook = _webhook(sinks, peer.url, secret_env="HOOK_KEY")
    d = decision()
    assert hook.send(d) is None
    (got,) = peer.received
    assert got.path == "/hook" and got.body == encode(d)
    assert decode(got.body) == d
    assert got.headers["Content-Type"] == "application/json"
    expected = hmac.new(KEY.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["X-Kontur-Signature"] == f"sha256={expected}"
    assert sign(got.body, KEY.encode()) == f"sha256={expected}"
    assert hook.delivered == 1 and hook.failures == ()


def test_webhook_without_secret_sends_no_signature(peer: Peer, sinks: list[WebhookSink]) -> None:
    hook = _webhook(sinks, peer.url)
    assert hook.send(decision()) is None
    assert "X-Kontur-Signature" not in peer.received[0].headers


def test_webhook_posts_only_what_executes(peer: Peer, sinks: list[WebhookSink]) -> None:
    hook = _webhook(sinks, peer.url)
    for o in Outcome:
        hook.emit(decision(o))
    assert hook.drain(timeout=5)
    assert sorted(json.loads(r.body)["outcome"] for r in peer.received) == ["ALLOW", "RESTRICT"]


def test_webhook_missing_secret_is_refused() -> None:
    cfg = WebhookConfig(url="http://127.0.0.1:9/", secret_env="KONTUR_TEST_UNSET_SECRET")
    with pytest.raises(
        SinkConfigError, match="expected environment variable KONTUR_TEST_UNSET_SECRET"
    ):
        WebhookSink(cfg, environ={})


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x", "http:///no-host"])
def test_webhook_refuses_non_http_urls(url: str) -> None:
    cfg = WebhookConfig.model_construct(url=url, timeout_s=1.0, secret_env=None)
    with pytest.raises(SinkConfigError, match="webhook: expected an http"):
        WebhookSink(cfg)


def test_webhook_closed_port_does_not_raise(sinks: list[WebhookSink]) -> None:
    hook = _webhook(sinks, f"http://127.0.0.1:{_closed_port()}/hook")
    err = hook.send(decision())
    assert err is not None and "failed for person-dwell/alarm (cam1 frame 20)" in err
    assert "refused" in err.lower()
    hook.emit(decision(frame=21))  # the background path records it too
    assert hook.drain(timeout=5)
    assert len(hook.failures) == 2 and "cam1 frame 21" in hook.failures[1]
    assert hook.delivered == 0


def test_webhook_timeout_does_not_raise_or_stall(sinks: list[WebhookSink]) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        hook = _webhook(sinks, f"http://127.0.0.1:{port}/hook", timeout_s=0.3)
        t0 = time.monotonic()
        hook.emit(decision())  # returns at once
        assert time.monotonic() - t0 < 0.1
        err = hook.send(decision())
        assert time.monotonic() - t0 < 3
        assert err is not None and "timed out" in err
        assert hook.drain(timeout=5)


def test_webhook_error_status_is_a_recorded_failure(peer: Peer, sinks: list[WebhookSink]) -> None:
    peer.status = 500
    hook = _webhook(sinks, peer.url)
    err = hook.send(decision())
    assert err is not None and "expected a 2xx answer, got HTTP 500" in err
    assert hook.failures == (err,)


def test_webhook_never_follows_redirects(peer: Peer, sinks: list[WebhookSink]) -> None:
    peer.status, peer.location = 307, "/elsewhere"
    hook = _webhook(sinks, peer.url)
    err = hook.send(decision())
    assert err is not None and "got HTTP 307" in err
    assert [r.path for r in peer.received] == ["/hook"]


def test_webhook_url_credentials_are_not_logged(sinks: list[WebhookSink]) -> None:
    hook = _webhook(sinks, f"http://user:pw@127.0.0.1:{_closed_port()}/hook?token=abc")
    err = hook.send(decision())
    assert err is not None and "pw" not in err and "abc" not in err
