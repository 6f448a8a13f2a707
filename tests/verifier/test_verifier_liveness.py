"""Scene liveness: frozen pictures (by pts) and exact replays (by thumbnail digest)."""

from __future__ import annotations

import numpy as np
import pytest

from kontur.verifier import SceneLiveness, ThumbnailError, make_thumbnail

FPS = 10.0


def feed(live: SceneLiveness, thumbs: list[np.ndarray], start: int = 0) -> list[str | None]:
    """Observe ``thumbs`` as consecutive frames from ``start`` at 10 fps."""
    return [live.observe(start + i, (start + i) / FPS, t) for i, t in enumerate(thumbs)]


def noise(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (48, 64), dtype=np.uint8) for _ in range(n)]


@pytest.fixture
def live() -> SceneLiveness:
    return SceneLiveness(frozen_seconds=3.0, frozen_mad_threshold=0.5)


def test_a_moving_scene_is_alive(live: SceneLiveness) -> None:
    assert feed(live, noise(200)) == [None] * 200


def test_a_constant_picture_is_frozen_only_after_frozen_seconds(live: SceneLiveness) -> None:
    still = np.full((48, 64), 128, np.uint8)
    reasons = feed(live, [still] * 45)
    # Still since pts 0.0; frame 30 (pts 3.0) is exactly 3 s: not yet longer than 3 s.
    assert reasons[:31] == [None] * 31
    assert reasons[31] == "scene frozen for 3.1 s (mean abs diff 0.00 < 0.5)"
    assert reasons[44] == "scene frozen for 4.4 s (mean abs diff 0.00 < 0.5)"


def test_a_faint_flicker_below_the_threshold_is_still_frozen(live: SceneLiveness) -> None:
    rng = np.random.default_rng(3)
    base = np.full((48, 64), 100, np.uint8)
    flicker = [base + (rng.random((48, 64)) < 0.2).astype(np.uint8) for _ in range(40)]
    reason = feed(live, flicker)[-1]
    assert reason is not None and reason.startswith("scene frozen for 3.9 s (mean abs diff 0.")


def test_motion_ends_a_freeze(live: SceneLiveness) -> None:
    still = np.full((48, 64), 128, np.uint8)
    assert feed(live, [still] * 40)[-1] is not None
    assert feed(live, noise(5), start=40) == [None] * 5


def test_a_zero_threshold_freezes_on_identical_pictures_only() -> None:
    live = SceneLiveness(frozen_seconds=1.0, frozen_mad_threshold=0.0)
    still = np.full((48, 64), 7, np.uint8)
    assert feed(live, [still] * 12)[-1] == "scene frozen for 1.1 s (identical pictures)"


def test_a_replayed_sequence_is_flagged(live: SceneLiveness) -> None:
    clip = noise(60)
    assert feed(live, clip) == [None] * 60
    replay = feed(live, clip, start=60)
    assert replay[0] == "picture repeats frame 0 seen 60 frames ago (replay or loop)"
    assert replay[59] == "picture repeats frame 59 seen 60 frames ago (replay or loop)"


def test_pictures_recurring_within_the_minimum_gap_are_not_a_loop(live: SceneLiveness) -> None:
    a, b = noise(2)
    assert feed(live, [a, b] * 20) == [None] * 40


def test_a_replay_older_than_the_window_is_forgotten() -> None:
    live = SceneLiveness(frozen_seconds=3.0, frozen_mad_threshold=0.5, window=300)
    clip = noise(400)
    feed(live, clip)
    assert live.digests_held == 300
    assert feed(live, clip[:50], start=400) == [None] * 50  # frames 0..49 are gone
    assert feed(live, clip[150:151], start=450) == [
        "picture repeats frame 150 seen 300 frames ago (replay or loop)"
    ]


def test_the_thumbnail_is_copied_not_aliased(live: SceneLiveness) -> None:
    """The shell may hand over a view of shared memory that the next frame overwrites."""
    rng = np.random.default_rng(5)
    buffer = np.zeros((48, 64), np.uint8)
    reasons = []
    for i in range(50):
        buffer[:] = rng.integers(0, 256, (48, 64), dtype=np.uint8)
        reasons.append(live.observe(i, i / FPS, buffer))
    assert reasons == [None] * 50


def test_liveness_refuses_frames_out_of_order(live: SceneLiveness) -> None:
    live.observe(5, 0.5, noise(1)[0])
    with pytest.raises(RuntimeError, match="expected a frame after 5, got frame 5"):
        live.observe(5, 0.6, noise(1)[0])


def test_make_thumbnail_samples_a_bgr_frame_to_48x64_grey() -> None:
    frame = np.zeros((360, 480, 3), np.uint8)
    frame[..., 2] = 255  # pure red in BGR
    thumb = make_thumbnail(frame)
    assert thumb.shape == (48, 64) and thumb.dtype == np.uint8
    assert int(thumb[0, 0]) == (77 * 255) >> 8  # BT.601 luma of red: 76
    assert not np.shares_memory(thumb, frame)
    again = make_thumbnail(frame.copy())
    assert np.array_equal(thumb, again)


def test_make_thumbnail_accepts_a_read_only_grey_frame() -> None:
    frame = np.arange(360 * 480, dtype=np.uint32).reshape(360, 480).astype(np.uint8)
    frame.setflags(write=False)
    thumb = make_thumbnail(frame, (24, 32))
    assert thumb.shape == (24, 32)
    assert thumb[0, 0] == frame[0, 0] and thumb[-1, -1] == frame[-1, -1]


@pytest.mark.parametrize(
    ("frame", "fragment"),
    [
        (np.zeros((360, 480, 3), np.float32), "expected a uint8 frame, got float32"),
        (np.zeros((360, 480, 4), np.uint8), "expected a frame of shape (h, w) or (h, w, 3)"),
        (np.zeros((20, 30, 3), np.uint8), "expected a frame of at least 48x64 pixels, got 20x30"),
    ],
    ids=["float", "bgra", "too_small"],
)
def test_make_thumbnail_refuses_what_is_not_a_decoded_frame(
    frame: np.ndarray, fragment: str
) -> None:
    with pytest.raises(ThumbnailError) as exc:
        make_thumbnail(frame)
    assert fragment in str(exc.value)
