"""Sinks against real peers: a file for the log, a real HTTP server on 127.0.0.1 for the webhook.

The sinks are fired by the supervisor's recorder once a record is archived (decide, record,
then act); here they are fed the typed events it builds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gate_sim import Peer
from pydantic import ValidationError

from kontur.clock import ManualClock
from kontur.config import SinksConfig, WebhookConfig
from kontur.gate import SinkConfigError
from kontur.gate.sinks import (
    EVENT_TYPES,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CameraAlarmEvent,
    DecisionEvent,
    GopVerdictEvent,
    LogSink,
    SinkEvent,
    SinkStats,
    WebhookBody,
    WebhookSink,
    build_sinks,
    camera_event,
    decision_event,
    parse_event,
    sign,
    verdict_event,
)
from kontur.wire import Decision, GopClosed, Outcome
from kontur.wire.verdict import FAILING_VERDICTS, GopVerdict, Verdict

KEY = "s3cret-hmac-key"
LEAF = "ab" * 32
SENT_AT = 1_700_000_000.0  # ManualClock's wall time


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


def gop_closed(verdict: Verdict, index: int = 3) -> GopClosed:
    """Ingest closed GOP ``index`` of cam1 with ``verdict``."""
    return GopClosed(
        verdict=GopVerdict(
            camera_id="cam1", gop_index=index, verdict=verdict, reasons=(f"ingest: {verdict}",)
        ),
        first_frame=index * 10,
        last_frame=index * 10 + 9,
        start_pts_s=index * 1.0,
        end_pts_s=index * 1.0 + 1.0,
        segment_sha256="0" * 64,
        segment_size=1,
    )


def alarm() -> CameraAlarmEvent:
    """A sustained failure on cam1."""
    return camera_event(
        "cam1",
        "gop_failures",
        "expected AUTHENTIC GOPs, got 5 NOT_AUTHENTIC in a row",
        at=1_700_000_001.0,
    )


@pytest.fixture
def sinks() -> Iterator[list[WebhookSink]]:
    """Webhook sinks made in a test, closed after it."""
    made: list[WebhookSink] = []
    yield made
    for s in made:
        s.close(timeout=2)


def _webhook(made: list[WebhookSink], url: str, **kw: object) -> WebhookSink:
    """A sink to ``url``; the loopback peer speaks plain http, so the tests opt in to it."""
    env = {"HOOK_KEY": KEY}
    timeout = kw.pop("timeout_s", 2.0)
    size = kw.pop("queue_size", 256)
    kw.setdefault("unsafe_plain_http", True)
    cfg = WebhookConfig(url=url, timeout_s=timeout, **kw)  # type: ignore[arg-type]
    s = WebhookSink(cfg, environ=env, queue_size=size, clock=ManualClock())  # type: ignore[arg-type]
    made.append(s)
    return s


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _posted(peer: Peer) -> list[SinkEvent]:
    return [WebhookBody.model_validate_json(r.body).event for r in peer.received]


# --- events ------------------------------------------------------------------------------------


def test_event_kinds() -> None:
    assert {"decision", "gop_verdict", "camera_alarm", "checkpoint", "operator"} == EVENT_TYPES


@pytest.mark.parametrize("outcome", list(Outcome), ids=[o.value for o in Outcome])
def test_decision_event_for_every_outcome(outcome: Outcome) -> None:
    d = decision(outcome)
    ev = decision_event(d, archive_index=812, archive_hash=LEAF)
    assert ev.type == "decision" and ev.outcome is outcome
    assert (ev.archive_index, ev.archive_hash) == (812, LEAF)
    assert (
        Decision(
            **ev.model_dump(exclude={"id", "archive_index", "archive_hash", "archive_tree_size"})
        )
        == d
    )
    assert parse_event(ev.model_dump_json()) == ev
    assert decision_event(d).archive_index is None  # not recorded (yet)


def test_decision_event_refuses_a_malformed_leaf() -> None:
    with pytest.raises(ValidationError, match="archive_hash"):
        decision_event(decision(), archive_index=1, archive_hash="not-hex")


@pytest.mark.parametrize("verdict", list(Verdict), ids=[v.value for v in Verdict])
def test_verdict_event_only_for_failing_verdicts(verdict: Verdict) -> None:
    ev = verdict_event(gop_closed(verdict), archive_index=5, archive_hash=LEAF)
    if verdict in {Verdict.AUTHENTIC, Verdict.UNSIGNED, Verdict.PENDING, Verdict.PROFILE_CHANGED}:
        assert ev is None
        return
    assert isinstance(ev, GopVerdictEvent)
    assert (ev.type, ev.verdict, ev.camera_id, ev.gop_index) == ("gop_verdict", verdict, "cam1", 3)
    assert (ev.first_frame, ev.last_frame, ev.archive_index) == (30, 39, 5)
    assert ev.reasons == (f"ingest: {verdict}",)


def test_failing_verdicts_are_the_eight() -> None:
    assert {
        Verdict.NOT_AUTHENTIC,
        Verdict.MISSING,
        Verdict.REPLAYED,
        Verdict.STALE,
        Verdict.KEY_CHANGED,
        Verdict.REVOKED,
        Verdict.DOWNGRADE,
        Verdict.RETIMED,
    } == FAILING_VERDICTS


def test_gop_verdict_event_refuses_an_authentic_verdict() -> None:
    ev = verdict_event(gop_closed(Verdict.REPLAYED))
    assert ev is not None
    fields = ev.model_dump(exclude={"id"}) | {"verdict": Verdict.AUTHENTIC}
    with pytest.raises(ValidationError, match=r"expected a failing verdict .*, got AUTHENTIC"):
        GopVerdictEvent(**fields)


def test_camera_event() -> None:
    ev = camera_event("cam1", "camera_untrusted", "expected AUTHENTIC, got 3 failing GOPs")
    assert (ev.type, ev.camera_id, ev.trigger, ev.at, ev.archive_index) == (
        "camera_alarm",
        "cam1",
        "camera_untrusted",
        None,
        None,
    )
    with pytest.raises(ValidationError, match="trigger"):
        camera_event("cam1", "", "x")


def test_events_have_unique_ids_and_are_frozen() -> None:
    a, b = decision_event(decision()), decision_event(decision())
    assert a.id != b.id and len(a.id) == 32
    with pytest.raises(ValidationError, match="frozen"):
        a.archive_index = 3


# --- log ---------------------------------------------------------------------------------------


def test_log_sink_appends_every_event_as_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "actions.jsonl"
    sink = LogSink(path)
    events: list[SinkEvent] = [decision_event(decision(o, i)) for i, o in enumerate(Outcome)]
    events += [verdict_event(gop_closed(Verdict.NOT_AUTHENTIC)), alarm()]  # type: ignore[list-item]
    for e in events:
        sink.emit(e)
    assert len(path.read_text().splitlines()) == 6  # flushed, not only on close
    sink.close()
    again = LogSink(path)
    again.emit(events[0])
    assert again.stats() == SinkStats(f"log {path}", delivered=1)
    again.close()
    lines = path.read_text().splitlines()
    assert [parse_event(line) for line in lines] == [*events, events[0]]
    kinds = [json.loads(line)["type"] for line in lines]
    assert kinds == ["decision"] * 4 + ["gop_verdict", "camera_alarm", "decision"]
    deny = json.loads(lines[3])
    assert deny["outcome"] == "DENY" and deny["executed"] is None


def test_sinks_refuse_what_is_not_an_event(tmp_path: Path, sinks: list[WebhookSink]) -> None:
    log = LogSink(tmp_path / "a.jsonl")
    with pytest.raises(TypeError, match=r"expected a sink event .*, got Decision"):
        log.emit(decision())  # type: ignore[arg-type]
    log.close()
    hook = _webhook(sinks, f"http://127.0.0.1:{_closed_port()}/hook")
    with pytest.raises(TypeError, match=r"expected a sink event .*, got Decision"):
        hook.emit(decision())  # type: ignore[arg-type]


def test_build_sinks(tmp_path: Path) -> None:
    (log,) = build_sinks(SinksConfig(), tmp_path)
    assert isinstance(log, LogSink) and log.path == tmp_path / "actions.jsonl"
    log.close()
    hook = WebhookConfig(url="http://127.0.0.1:9/x", secret_env="HOOK_KEY", unsafe_plain_http=True)
    built = build_sinks(
        SinksConfig(log="a/b.jsonl", webhook=hook), tmp_path, environ={"HOOK_KEY": KEY}
    )
    assert [type(s) for s in built] == [LogSink, WebhookSink]
    assert built[0].path == tmp_path / "a" / "b.jsonl"  # type: ignore[attr-defined]
    for s in built:
        s.close()


# --- webhook against a real server -----------------------------------------------------------


def test_webhook_posts_signed_body_with_type_time_and_id(
    peer: Peer, sinks: list[WebhookSink]
) -> None:
    hook = _webhook(sinks, peer.url, secret_env="HOOK_KEY")
    ev = decision_event(decision(Outcome.DENY), archive_index=812, archive_hash=LEAF)
    assert hook.send(ev) is None
    (got,) = peer.received
    assert got.path == "/hook" and got.headers["Content-Type"] == "application/json"
    ts, nonce = got.headers[TIMESTAMP_HEADER], got.headers[NONCE_HEADER]
    assert ts == "1700000000" and re.fullmatch(r"[0-9a-f]{32}", nonce)
    signed = f"{ts}.{nonce}.".encode() + got.body  # the contract: timestamp.nonce.body
    expected = hmac.new(KEY.encode(), signed, hashlib.sha256).hexdigest()
    assert got.headers[SIGNATURE_HEADER] == f"sha256={expected}"
    assert sign(got.body, KEY.encode(), timestamp=ts, nonce=nonce) == f"sha256={expected}"
    raw = json.loads(got.body)
    assert raw["v"] == 1 and raw["sent_at"] == SENT_AT
    assert raw["event"]["type"] == "decision" and raw["event"]["id"] == ev.id
    assert raw["event"]["outcome"] == "DENY" and raw["event"]["archive_index"] == 812
    assert WebhookBody.model_validate_json(got.body) == WebhookBody(sent_at=SENT_AT, event=ev)
    assert hook.stats() == SinkStats(f"webhook {peer.url}", delivered=1)


def test_webhook_without_secret_sends_no_signature(peer: Peer, sinks: list[WebhookSink]) -> None:
    hook = _webhook(sinks, peer.url)
    assert hook.send(decision_event(decision())) is None
    assert SIGNATURE_HEADER not in peer.received[0].headers


def test_webhook_posts_every_outcome(peer: Peer, sinks: list[WebhookSink]) -> None:
    """OPERATOR and DENY reach the webhook too, not only what executes automatically."""
    hook = _webhook(sinks, peer.url, secret_env="HOOK_KEY")
    for o in Outcome:
        hook.emit(decision_event(decision(o)))
    assert hook.drain(timeout=5)
    posted = _posted(peer)
    assert all(isinstance(e, DecisionEvent) for e in posted)
    assert sorted(e.outcome for e in posted) == sorted(Outcome)  # type: ignore[union-attr]
    assert hook.stats().delivered == 4 and hook.dropped == 0


def test_webhook_posts_failing_verdicts_and_alarms_not_authentic_gops(
    peer: Peer, sinks: list[WebhookSink]
) -> None:
    hook = _webhook(sinks, peer.url, secret_env="HOOK_KEY")
    for i, v in enumerate(Verdict):
        ev = verdict_event(gop_closed(v, index=i))
        if ev is not None:
            hook.emit(ev)
    hook.emit(alarm())
    assert hook.drain(timeout=5)
    for r in peer.received:
        ts, nonce = r.headers[TIMESTAMP_HEADER], r.headers[NONCE_HEADER]
        assert r.headers[SIGNATURE_HEADER] == sign(r.body, KEY.encode(), timestamp=ts, nonce=nonce)
    assert len({r.headers[NONCE_HEADER] for r in peer.received}) == len(peer.received)
    posted = _posted(peer)
    verdicts = {e.verdict for e in posted if isinstance(e, GopVerdictEvent)}
    assert verdicts == FAILING_VERDICTS and Verdict.AUTHENTIC not in verdicts
    assert [e.type for e in posted].count("gop_verdict") == len(FAILING_VERDICTS) == 8
    assert posted[-1] == alarm().model_copy(update={"id": posted[-1].id})
    assert json.loads(peer.received[-1].body)["event"]["type"] == "camera_alarm"


def test_webhook_queue_full_drops_and_counts(sinks: list[WebhookSink]) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        hook = _webhook(sinks, f"http://127.0.0.1:{port}/hook", timeout_s=0.3, queue_size=2)
        t0 = time.monotonic()
        for i in range(10):
            hook.emit(decision_event(decision(Outcome.OPERATOR, frame=i)))
        assert time.monotonic() - t0 < 0.2  # never blocks on a stuck webhook
        assert 7 <= hook.dropped <= 8  # one being posted, two queued, the rest dropped
        assert any("queue full (2 events), event dropped" in f for f in hook.failures)
        assert hook.drain(timeout=5)
        st = hook.stats()
        assert st.dropped == hook.dropped and st.failed == 10 - st.dropped
        assert (st.delivered, st.queued) == (0, 0)


def test_webhook_emit_after_close_is_dropped(peer: Peer, sinks: list[WebhookSink]) -> None:
    hook = _webhook(sinks, peer.url)
    hook.close(timeout=2)
    hook.emit(alarm())
    assert hook.dropped == 1 and "sink closed, event dropped" in hook.failures[-1]
    assert peer.received == []


def test_webhook_missing_secret_is_refused() -> None:
    cfg = WebhookConfig(
        url="http://127.0.0.1:9/", secret_env="KONTUR_TEST_UNSET_SECRET", unsafe_plain_http=True
    )
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
    err = hook.send(decision_event(decision()))
    assert err is not None
    assert "failed for decision ALLOW on person-dwell/alarm (cam1 frame 20)" in err
    assert "refused" in err.lower()
    hook.emit(decision_event(decision(frame=21)))  # the background path records it too
    assert hook.drain(timeout=5)
    assert len(hook.failures) == 2 and "cam1 frame 21" in hook.failures[1]
    assert (hook.delivered, hook.stats().failed) == (0, 2)


def test_webhook_timeout_does_not_raise_or_stall(sinks: list[WebhookSink]) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        hook = _webhook(sinks, f"http://127.0.0.1:{port}/hook", timeout_s=0.3)
        t0 = time.monotonic()
        hook.emit(decision_event(decision()))  # returns at once
        assert time.monotonic() - t0 < 0.1
        err = hook.send(verdict_event(gop_closed(Verdict.STALE)))  # type: ignore[arg-type]
        assert time.monotonic() - t0 < 3
        assert err is not None and "gop_verdict STALE on gop 3 of cam1" in err
        assert "timed out" in err
        assert hook.drain(timeout=5)


def test_webhook_error_status_is_a_recorded_failure(peer: Peer, sinks: list[WebhookSink]) -> None:
    peer.status = 500
    hook = _webhook(sinks, peer.url)
    err = hook.send(alarm())
    assert err is not None and "expected a 2xx answer, got HTTP 500" in err
    assert "camera_alarm gop_failures on cam1" in err
    assert hook.failures == (err,)


def test_webhook_never_follows_redirects(peer: Peer, sinks: list[WebhookSink]) -> None:
    peer.status, peer.location = 307, "/elsewhere"
    hook = _webhook(sinks, peer.url)
    err = hook.send(decision_event(decision()))
    assert err is not None and "got HTTP 307" in err
    assert [r.path for r in peer.received] == ["/hook"]


def test_webhook_url_credentials_are_not_logged(sinks: list[WebhookSink]) -> None:
    hook = _webhook(sinks, f"http://user:pw@127.0.0.1:{_closed_port()}/hook?token=abc")
    err = hook.send(decision_event(decision()))
    assert err is not None and "pw" not in err and "abc" not in err
