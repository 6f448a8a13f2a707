"""``POST /v1/detect`` through a real uvicorn (``tests/api/api_sim``) and the real YOLOX release
in its sandboxed query worker: answers on a real frame, one-line 413/415/422s, the daily quota's
429 until the UTC day turns, and an extraction alarm that is audited and blocks (or throttles)
that principal until an admin lifts it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.api.api_sim import PASSWORD, ROOMY, Site, running_site, user_of
from tests.extraction.streams import b64, clip, line, png_claiming

from kontur.extraction import ExtractionSettings, OnAlarm, QueryWorkerSpec, SandboxedDetector
from kontur.extraction.defence import Block

#: api_sim's clock starts 6100 s before the UTC day turns.
TO_MIDNIGHT = 6100


def _detector(
    data_dir: Path, release: tuple[dict[str, Any], bytes], tamper: bool = False
) -> SandboxedDetector:
    entries, blob = release
    if tamper:
        blob = blob[:-1] + bytes([blob[-1] ^ 1])
    scratch = data_dir / "run" / "scratch" / "query-worker"
    return SandboxedDetector(
        QueryWorkerSpec.from_release(entries, scratch_dir=scratch, deny=(data_dir,)), blob
    )


def _site(
    tmp: pytest.TempPathFactory, release: tuple[dict[str, Any], bytes], **kw: Any
) -> Iterator[Site]:
    data_dir = tmp.mktemp("detect") / "data"
    tamper = kw.pop("tamper", False)
    with running_site(data_dir, ROOMY, detector=_detector(data_dir, release, tamper), **kw) as site:
        site.tokens["mallory"] = _integrator(site, "mallory")
        yield site


def _integrator(site: Site, name: str) -> str:
    site.users.add_user(name, ["integrator"], PASSWORD)
    return site.users.create_token(name, "probe")


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, yolox_release: tuple[dict[str, Any], bytes]
) -> Iterator[Site]:
    yield from _site(tmp_path_factory, yolox_release)


def _post(site: Site, who: str, body: object) -> httpx.Response:
    with site.client(who) as c:
        return c.post("/v1/detect", json=body)


def _attack() -> list[str]:
    """Points on two lines between real frames (PNG: the attacker keeps every grey level)."""
    frames = clip("car")
    return [
        b64(p, ".png") for p in line(frames[0], frames[400], 8) + line(frames[100], frames[800], 8)
    ]


def _alarm(site: Site, who: str, alarm_status: int) -> int:
    for n, image in enumerate(_attack(), 1):
        r = _post(site, who, {"image": image})
        if r.status_code != 200:
            assert r.status_code == alarm_status, r.text
            assert r.json() == {
                "detail": "expected a query stream unlike model extraction, got an extraction alarm"
            }
            return n
    raise AssertionError("expected an alarm within two lines, got none")


def test_detections_on_a_real_frame(site: Site) -> None:
    r = _post(site, "integrator", {"image": b64(clip("pets")[100])})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["model"], body["width"], body["height"]) == ("yolox-nano@1", 480, 360)
    people = [d for d in body["detections"] if d["class"] == "person"]
    assert people, body
    for d in body["detections"]:
        x1, y1, x2, y2 = d["box"]
        assert 0 <= x1 <= x2 <= 480 and 0 <= y1 <= y2 <= 360
        assert (d["confidence"] == round(d["confidence"], 3) and d["class_id"] == 0) or d[
            "class"
        ] != "person"
    site.supervisor.audit(actor=user_of("integrator"), action="detect:query", outcome="ok")


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"image": base64.b64encode(png_claiming(100_000, 100_000)).decode()}, 413,
         "image: expected at most 4096 px a side and 16777216 pixels, got 100000x100000"),
        ({"image": "not base64!"}, 422, "body.image: expected base64, got other characters"),
        ({"image": base64.b64encode(b"GIF89a" + bytes(20)).decode()}, 422,
         "image: expected JPEG or PNG bytes, got 47494638"),
        ({"image": base64.b64encode(png_claiming(64, 64)).decode()}, 422,
         "image: expected a png that decodes, got one OpenCV refuses"),
        ({}, 422, "body.image: expected a value, got none"),
        ({"image": "AAAA", "extra": 1}, 422, "body.extra: expected no such field, got one"),
    ],
)  # fmt: skip
def test_bad_images_are_refused_in_one_line(
    site: Site, body: object, status: int, detail: str
) -> None:
    r = _post(site, "integrator", body)
    assert (r.status_code, r.json()) == (status, {"detail": detail})


def test_a_body_over_the_image_bound_is_413_before_parsing(site: Site) -> None:
    bound = 4 * -(-ExtractionSettings().image.max_bytes // 3) + 1024
    with site.client("integrator") as c:
        r = c.post(
            "/v1/detect",
            content=b"{" + b" " * bound + b"}",
            headers={"Content-Type": "application/json"},
        )
    assert r.status_code == 413
    assert r.json()["detail"] == f"expected a body of at most {bound} bytes, got {bound + 2}"
    with site.client("viewer") as c:  # the other routes keep their own, small bound
        assert c.post("/exports", content=b" " * 70_000).status_code == 413


def test_a_body_that_is_not_json_is_415(site: Site) -> None:
    with site.client("integrator") as c:
        r = c.post("/v1/detect", content=b"\xff\xd8\xff", headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 415 and r.json() == {
        "detail": "expected Content-Type application/json, got 'image/jpeg'"
    }


def test_extraction_alarm_is_audited_and_blocks_until_an_admin_lifts_it(site: Site) -> None:
    at = _alarm(site, "mallory", 403)
    alarm = site.supervisor.audit(
        actor="mallory", action="detect:extraction_alarm", outcome="refused"
    )
    assert alarm.detail.startswith("PRADA line: 8 queries on lines >= 8 at query ")
    assert alarm.detail.split(" at query ")[1].startswith(f"{at} ")
    assert alarm.target == "POST /v1/detect"
    r = _post(site, "mallory", {"image": b64(clip("pets")[0])})
    assert (r.status_code, r.json()) == (403, {
        "detail": "expected a principal without an extraction alarm, "
        "got one (blocked until an admin lifts it)"
    })  # fmt: skip
    assert _post(site, "integrator", {"image": b64(clip("pets")[0])}).status_code == 200, (
        "only mallory"
    )
    [persisted] = json.loads((site.data_dir / "extraction" / "blocks.json").read_text())
    assert Block.from_json(persisted).principal == "mallory"
    assert (site.data_dir / "extraction" / "blocks.json").stat().st_mode & 0o777 == 0o600
    with site.client("admin") as c:
        r = c.post("/v1/detect/blocks/mallory/lift")
    assert r.status_code == 200 and r.json()["lifted"] is True
    assert r.json()["block"]["reason"] == alarm.detail
    site.supervisor.audit(actor=user_of("admin"), action="detect:lift", target="principal mallory")
    assert _post(site, "mallory", {"image": b64(clip("pets")[0])}).status_code == 200
    assert json.loads((site.data_dir / "extraction" / "blocks.json").read_text()) == []


def test_a_block_survives_a_restart_of_the_api(
    tmp_path: Path, yolox_release: tuple[dict[str, Any], bytes]
) -> None:
    data_dir = tmp_path / "data"
    with running_site(data_dir, ROOMY, detector=_detector(data_dir, yolox_release)) as first:
        first.tokens["mallory"] = _integrator(first, "mallory")
        _alarm(first, "mallory", 403)
    restarted = tmp_path / "restarted"  # a new data dir (api_sim writes a fresh archive) ...
    restarted.mkdir(mode=0o700)
    (restarted / "extraction").mkdir(mode=0o700)  # ... holding the first one's blocks
    (restarted / "extraction" / "blocks.json").write_bytes(
        (data_dir / "extraction" / "blocks.json").read_bytes()
    )
    with running_site(restarted, ROOMY, detector=_detector(restarted, yolox_release)) as second:
        second.tokens["mallory"] = _integrator(second, "mallory")
        assert _post(second, "mallory", {"image": b64(clip("pets")[0])}).status_code == 403


def test_daily_quota_is_429_until_the_day_turns(
    tmp_path_factory: pytest.TempPathFactory, yolox_release: tuple[dict[str, Any], bytes]
) -> None:
    for site in _site(
        tmp_path_factory, yolox_release, extraction=ExtractionSettings(daily_quota=3)
    ):
        frames = clip("pets")
        assert [
            _post(site, "mallory", {"image": b64(frames[i])}).status_code for i in range(3)
        ] == [200] * 3
        r = _post(site, "mallory", {"image": b64(frames[3])})
        assert r.status_code == 429 and r.headers["retry-after"] == str(TO_MIDNIGHT)
        assert r.json() == {
            "detail": "expected at most 3 queries a day, "
            f"got more (the day turns in {TO_MIDNIGHT} s)"
        }
        site.supervisor.audit(actor="mallory", action="detect:query", outcome="refused")
        site.clock.advance(TO_MIDNIGHT - 1)
        assert _post(site, "mallory", {"image": b64(frames[4])}).headers["retry-after"] == "1"
        site.clock.advance(1)
        assert _post(site, "mallory", {"image": b64(frames[5])}).status_code == 200


def test_throttle_policy_answers_429_with_retry_after(
    tmp_path_factory: pytest.TempPathFactory, yolox_release: tuple[dict[str, Any], bytes]
) -> None:
    settings = ExtractionSettings(on_alarm=OnAlarm.THROTTLE, throttle_interval_s=30.0)
    for site in _site(tmp_path_factory, yolox_release, extraction=settings):
        _alarm(site, "mallory", 429)
        site.supervisor.audit(actor="mallory", action="detect:extraction_alarm", outcome="refused")
        image = {"image": b64(clip("pets")[0])}
        r = _post(site, "mallory", image)
        assert r.status_code == 429 and r.headers["retry-after"] == "30"
        assert (
            r.json()["detail"]
            == "expected at most one query per 30 s after an extraction alarm, got more"
        )
        site.clock.advance(30)
        assert _post(site, "mallory", image).status_code == 200
        assert _post(site, "mallory", image).status_code == 429


def test_no_worker_is_503_in_one_line(
    tmp_path_factory: pytest.TempPathFactory, yolox_release: tuple[dict[str, Any], bytes]
) -> None:
    for site in _site(tmp_path_factory, yolox_release, tamper=True):
        r = _post(site, "integrator", {"image": b64(clip("pets")[0])})
        assert (r.status_code, r.json()) == (
            503, {"detail": "expected the query worker to answer, got none (see the API's log)"}
        )  # fmt: skip
