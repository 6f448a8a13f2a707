"""The daily quota and its day boundary, blocks and throttles, on an injected clock."""

from __future__ import annotations

import numpy as np
import pytest
from tests.extraction.streams import clip, line

from kontur.clock import ManualClock
from kontur.extraction import (
    Block,
    DailyQuota,
    ExtractionDefence,
    ExtractionSettings,
    OnAlarm,
    Verdict,
)
from kontur.extraction.images import query_features
from kontur.extraction.prada import PradaConfig

#: 2023-11-14 22:13:20 UTC: 6400 s before the UTC day turns.
WALL = 1_700_000_000.0
TO_MIDNIGHT = 86_400 - WALL % 86_400


def test_quota_allows_its_count_then_refuses_until_the_day_turns() -> None:
    clock = ManualClock(wall=WALL)
    quota = DailyQuota(3, clock)
    assert [quota.take("a").allowed for _ in range(3)] == [True, True, True]
    refused = quota.take("a")
    assert (refused.allowed, refused.used, refused.limit, refused.first_refusal) == (
        False,
        3,
        3,
        True,
    )
    assert refused.retry_after_s == pytest.approx(TO_MIDNIGHT)
    assert quota.take("b").allowed, "another principal has its own count"
    clock.advance(100)
    again = quota.take("a")
    assert not again.first_refusal and again.retry_after_s == pytest.approx(TO_MIDNIGHT - 100)
    clock.advance(TO_MIDNIGHT - 100 - 1)
    assert not quota.take("a").allowed, "one second before midnight UTC: still today"
    clock.advance(1)
    fresh = quota.take("a")
    assert (fresh.allowed, fresh.used) == (True, 1), "midnight UTC: a new day"


def test_quota_refuses_nonsense() -> None:
    with pytest.raises(
        ValueError, match="quota: expected per_day >= 1 and max_keys >= 1, got 0, 10000"
    ):
        DailyQuota(0, ManualClock())


def _attack() -> list[np.ndarray]:
    frames = clip("car")
    return line(frames[0], frames[400], 8) + line(frames[100], frames[800], 8)


def _until_alarm(defence: ExtractionDefence, name: str = "mallory") -> int:
    for n, picture in enumerate(_attack(), 1):
        assert defence.admit(name).verdict is Verdict.ANSWER
        adm = defence.assess(name, query_features(picture))
        if adm.verdict is Verdict.ALARM:
            assert adm.audit and adm.prada is not None and adm.prada.alarm is not None
            return n
        assert adm.verdict is Verdict.ANSWER
    raise AssertionError("expected an alarm within two lines, got none")


def test_alarm_blocks_until_an_admin_lifts_it() -> None:
    clock = ManualClock(wall=WALL)
    defence = ExtractionDefence(ExtractionSettings(), clock)
    _until_alarm(defence)
    clock.advance(86_400 * 30)
    blocked = defence.admit("mallory")
    assert blocked.verdict is Verdict.BLOCKED and blocked.audit
    assert blocked.reason == (
        "expected a principal without an extraction alarm, "
        "got one (blocked until an admin lifts it)"
    )
    assert defence.admit("alice").verdict is Verdict.ANSWER, "only the alarming principal"
    [block] = defence.blocks()
    assert (block.principal, block.until, block.policy) == ("mallory", None, OnAlarm.BLOCK)
    assert block.reason.startswith("PRADA line: 8 queries on lines >= 8 at query ")
    assert defence.lift("mallory") == block and defence.blocks() == ()
    assert defence.admit("mallory").verdict is Verdict.ANSWER
    assert defence.prada.observe("mallory", query_features(clip("car")[5])).query == 1, "afresh"


def test_a_timed_block_ends_by_itself() -> None:
    clock = ManualClock(wall=WALL)
    defence = ExtractionDefence(ExtractionSettings(block_s=600.0), clock)
    _until_alarm(defence)
    assert defence.blocks()[0].until == WALL + 600.0
    clock.advance(599)
    assert defence.admit("mallory").reason.endswith("(blocked until 1 s)")
    clock.advance(1)
    assert defence.admit("mallory").verdict is Verdict.ANSWER and defence.blocks() == ()


def test_throttle_policy_allows_one_query_per_interval() -> None:
    clock = ManualClock(wall=WALL)
    defence = ExtractionDefence(
        ExtractionSettings(on_alarm=OnAlarm.THROTTLE, throttle_interval_s=30.0), clock
    )
    _until_alarm(defence)
    first = defence.admit("mallory")
    assert first.verdict is Verdict.THROTTLED and first.retry_after_s == pytest.approx(30.0)
    clock.advance(30)
    assert defence.admit("mallory").verdict is Verdict.ANSWER
    clock.advance(10)
    again = defence.admit("mallory")
    assert again.verdict is Verdict.THROTTLED and again.retry_after_s == pytest.approx(20.0)
    assert again.reason == "expected at most one query per 30 s after an extraction alarm, got more"


def test_over_quota_is_refused_before_prada_sees_the_query() -> None:
    clock = ManualClock(wall=WALL)
    defence = ExtractionDefence(ExtractionSettings(daily_quota=2), clock)
    frames = clip("tud")
    assert [defence.assess("a", query_features(f)).verdict for f in frames[:2]] == [
        Verdict.ANSWER
    ] * 2
    over = defence.assess("a", query_features(frames[2]))
    assert over.verdict is Verdict.OVER_QUOTA and over.audit and over.prada is None
    assert over.retry_after_s == pytest.approx(TO_MIDNIGHT)
    assert (
        over.reason
        == f"expected at most 2 queries a day, got more (the day turns in {TO_MIDNIGHT:.0f} s)"
    )
    assert not defence.assess("a", query_features(frames[3])).audit, "audited once a day"


def test_blocks_survive_their_persisted_form() -> None:
    block = Block(
        "mallory", WALL, None, OnAlarm.BLOCK, "PRADA line: 8 queries on lines >= 8 at query 12"
    )
    assert Block.from_json(block.to_json()) == block
    defence = ExtractionDefence(ExtractionSettings(), ManualClock(wall=WALL), (block,))
    assert defence.admit("mallory").verdict is Verdict.BLOCKED
    with pytest.raises(
        ValueError, match=r"^block: expected principal, since, until, policy, reason"
    ):
        Block.from_json({"principal": "x"})


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"daily_quota": 0}, "extraction.daily_quota: expected >= 1, got 0"),
        ({"block_s": -1.0}, "extraction.block_s: expected a positive number, got -1.0"),
        ({"prada": PradaConfig(), "on_alarm": "ban"}, "'ban' is not a valid OnAlarm"),
    ],
)
def test_settings_refuse_what_cannot_hold(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ExtractionSettings(**kw)  # type: ignore[arg-type]
