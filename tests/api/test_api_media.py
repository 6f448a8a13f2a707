"""The picture routes: a camera's snapshot, a decision's frame with its box, the person crop,
and the decision's clip, each decoded from a real H.264 GOP in a real archive and audited.

The sim's GOP (``api_sim.h264_gop``) is 12 pictures of a bright square on grey moving one
pixel right per picture; the decision is on its last picture, with the square's first box.
"""

from __future__ import annotations

import io
import time

import av
import cv2
import numpy as np
import pytest
from api_sim import BOX, GOP_FRAMES, Site

from kontur.archive import Archive


def _image(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, "expected a JPEG"
    return img


def _square_left(img: np.ndarray) -> int:
    """The first column of the bright square on the picture's middle row (grey elsewhere)."""
    row = img[60, :, 1].astype(int)  # green: the red box does not touch it
    return int(np.argmax(row > 150))


def test_a_cameras_snapshot_is_the_last_picture_of_its_newest_gop(site: Site) -> None:
    with site.client("operator") as c:
        r = c.get("/cameras/cam1/snapshot")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["cache-control"] == "no-store"
    img = _image(r.content)
    assert img.shape == (120, 160, 3)
    assert abs(_square_left(img) - (60 + GOP_FRAMES - 1)) <= 1
    site.supervisor.audit(
        actor="operator-user", action="video:live", outcome="ok", target="camera cam1"
    )


def test_a_decisions_snapshot_draws_the_claimed_box_on_its_frame(site: Site) -> None:
    index = site.archived.decision_index
    with site.client("investigator") as c:
        r = c.get(f"/events/{index}/snapshot")
    assert r.status_code == 200, r.text
    img = _image(r.content).astype(int)
    x1, y1, _x2, y2 = (int(v) for v in BOX)
    edge = img[y1 + 5 : y2 - 5, x1]  # the box's left edge: red in BGR
    assert (edge[:, 2] > 150).all() and (edge[:, 1] < 100).all()
    assert abs(_square_left(_image(r.content)) - (60 + GOP_FRAMES - 1)) <= 1
    site.supervisor.audit(
        actor="investigator-user", action="video:archive", outcome="ok", target=f"decision {index}"
    )


def test_the_crop_is_the_box_with_a_margin_and_needs_biometrics(site: Site) -> None:
    index = site.archived.decision_index
    with site.client("investigator") as c:
        r = c.get(f"/events/{index}/crop")
    assert r.status_code == 200, r.text
    h, w = _image(r.content).shape[:2]
    bw, bh = BOX[2] - BOX[0], BOX[3] - BOX[1]
    assert abs(w - bw * 1.3) <= 2 and abs(h - bh * 1.3) <= 2
    site.supervisor.audit(actor="investigator-user", action="biometrics:read", outcome="ok")
    with site.client("operator") as c:  # video:live is not biometrics:read
        assert c.get(f"/events/{index}/crop").status_code == 403


def test_a_decisions_clip_is_its_gop_as_mp4(site: Site) -> None:
    index = site.archived.decision_index
    with site.client("investigator") as c:
        r = c.get(f"/events/{index}/clip")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(r.content)) as clip:
        frames = list(clip.decode(video=0))
    assert len(frames) == GOP_FRAMES


def test_a_pending_requests_snapshot_is_its_decisions_frame(site: Site) -> None:
    with site.client("operator") as c:
        listed = c.get("/operator/requests").json()["requests"][0]["id"]
        r = c.get(f"/operator/requests/{listed}/snapshot")
        missing = c.get("/operator/requests/op-999999/snapshot")
    assert r.status_code == 200 and _image(r.content).shape == (120, 160, 3)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("path", "status", "detail"),
    [
        ("/cameras/nope/snapshot", 404, "expected an archived segment of camera nope, got none"),
        ("/events/0/snapshot", 404, "expected a decision record at index 0, got none"),
        ("/events/99999/crop", 404, "expected a decision record at index 99999, got none"),
        ("/events/0/clip", 404, "expected a decision record at index 0, got none"),
    ],
)
def test_what_is_not_there_is_a_one_line_404_and_audited(
    site: Site, path: str, status: int, detail: str
) -> None:
    role = "operator" if path.startswith("/cameras") else "investigator"
    with site.client(role) as c:
        r = c.get(path)
    assert (r.status_code, r.json()["detail"]) == (status, detail)
    site.supervisor.audit(actor=f"{role}-user", outcome="refused")


@pytest.mark.parametrize(
    "path",
    ["/cameras/..%2f..%2fetc/snapshot", "/cameras/a%00b/snapshot", "/events/-1/crop",
     "/events/abc/clip", "/cameras/" + "c" * 65 + "/snapshot"],
)  # fmt: skip
def test_hostile_paths_are_refused_before_any_file_is_read(site: Site, path: str) -> None:
    with site.client("operator" if path.startswith("/cameras") else "investigator") as c:
        r = c.get(path)
    assert r.status_code in (404, 422), r.text
    assert "\n" not in r.text


def test_a_decision_without_a_box_has_no_crop(site: Site) -> None:
    with Archive.open(site.data_dir) as arc:
        rec = next(arc.iter_records(site.archived.decision_index))
        payload = {**rec.payload, "box": None}
        index = arc.append("decision", payload).index
        arc.flush()
    with site.client("investigator") as c:
        crop = c.get(f"/events/{index}/crop")
        snap = c.get(f"/events/{index}/snapshot")
    assert crop.status_code == 404
    assert crop.json()["detail"] == f"expected decision {index} to name a track's box, got none"
    assert snap.status_code == 200  # the frame, without a box


def test_a_refreshed_live_view_is_one_audit_record_per_minute(site: Site) -> None:
    """A console refreshes each camera's snapshot every few seconds: one record says the user
    is viewing the camera; the next minute's first view is a record again."""

    def views() -> int:
        return sum(
            a.actor == "operator-user" and a.action == "video:live" and a.target == "camera cam1"
            for a in site.supervisor.audits()
        )

    with site.client("operator") as c:
        assert c.get("/cameras/cam1/snapshot").status_code == 200
        site.supervisor.audit(actor="operator-user", action="video:live")
        before = views()
        for _ in range(5):
            assert c.get("/cameras/cam1/snapshot").status_code == 200
        assert views() == before
        site.clock.advance(61)
        assert c.get("/cameras/cam1/snapshot").status_code == 200
        site.supervisor.audit(actor="operator-user", action="video:live", target="camera cam1")
        deadline = time.monotonic() + 3
        while views() == before and time.monotonic() < deadline:
            time.sleep(0.02)
        assert views() == before + 1
