"""Tests for tfvidgan.metrics.balls on synthetic anti-aliased discs with known positions."""

import numpy as np
import pytest

from tfvidgan.errors import ConfigError, DatasetError
from tfvidgan.metrics import balls


def draw_discs(size, centres, radii, supersample=5, peak=1.0):
    """One grayscale frame `[size, size, 1]` in [-1, 1]: background -1, discs at `peak`, anti-aliased by
    supersampling. `centres` are (row, col) pixels, pixel [i, j] covering [i, i+1) x [j, j+1)."""
    offsets = (np.arange(supersample) + 0.5) / supersample
    grid = np.arange(size)[:, None] + offsets[None, :]  # [size, ss] sub-sample coordinates
    sub = grid.reshape(-1)
    coverage = np.zeros((size * supersample, size * supersample))
    for (r, c), rad in zip(centres, radii):
        inside = (sub[:, None] - r) ** 2 + (sub[None, :] - c) ** 2 <= rad**2
        coverage = np.maximum(coverage, inside)
    coverage = coverage.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    return (-1.0 + (peak + 1.0) * coverage)[..., None].astype(np.float32)


def draw_clip(size, tracks, radii):
    """`tracks [T, N, 2]` → clip `[T, size, size, 1]`."""
    return np.stack([draw_discs(size, frame, radii) for frame in tracks])


def bounce(start, velocity, steps, size, radius):
    """Exact positions `[steps, 2]` of a ball reflecting off the walls at 0 and size."""
    lo, hi = radius, size - radius
    span = hi - lo
    raw = np.asarray(start)[None, :] - lo + np.arange(steps)[:, None] * np.asarray(velocity)[None, :]
    folded = np.mod(raw, 2 * span)
    return lo + np.where(folded > span, 2 * span - folded, folded)


def test_counts_zero_to_four_balls_and_histogram():
    layouts = [
        [],
        [(8.0, 8.0)],
        [(8.0, 8.0), (8.0, 22.0)],
        [(8.0, 8.0), (8.0, 22.0), (22.0, 8.0)],
        [(8.0, 8.0), (8.0, 22.0), (22.0, 8.0), (22.0, 22.0)],
    ]
    frames = np.stack([draw_discs(30, lay, [3.0] * len(lay)) for lay in layouts])
    detected = balls.detect_blobs(frames)
    assert [b.count for b in detected] == [0, 1, 2, 3, 4]

    stats = balls.frame_statistics(frames, expected_balls=2)
    assert stats["num_frames"] == 5
    assert stats["count_histogram"] == [1, 1, 1, 1, 1]
    assert stats["fraction_expected_count"] == pytest.approx(1 / 5)
    assert stats["count_mean"] == pytest.approx(2.0)
    # Identical discs at integer centres: every area equal, so no spread.
    assert stats["blob_area_std"] == pytest.approx(0.0)
    assert stats["blob_area_mean"] == pytest.approx(np.pi * 9, rel=0.15)


def test_centroids_and_areas_match_subpixel_ground_truth():
    rng = np.random.default_rng(0)
    centres = rng.uniform(6, 26, size=(20, 2))
    frames = np.stack([draw_discs(32, [c], [4.0]) for c in centres])
    detected = balls.detect_blobs(frames)
    found = np.array([d.centroids[0] for d in detected])
    assert np.max(np.abs(found - centres)) < 0.05
    areas = np.array([d.areas[0] for d in detected])
    assert np.all(np.abs(areas - np.pi * 16) / (np.pi * 16) < 0.1)
    assert np.all(np.abs(np.array([d.radii[0] for d in detected]) - 4.0) < 0.2)


def test_area_spread_reflects_inconsistent_ball_sizes():
    same = np.stack([draw_discs(32, [(16.0, 16.0)], [4.0]) for _ in range(4)])
    mixed = np.stack([draw_discs(32, [(16.0, 16.0)], [r]) for r in (2.0, 3.0, 5.0, 7.0)])
    s_same = balls.frame_statistics(same, expected_balls=1)
    s_mixed = balls.frame_statistics(mixed, expected_balls=1)
    true_areas = np.pi * np.array([4.0, 9.0, 25.0, 49.0])
    assert s_same["blob_area_std"] == pytest.approx(0.0)
    assert s_mixed["blob_area_std"] == pytest.approx(true_areas.std(), rel=0.15)


def test_straight_line_gives_speed_and_zero_second_difference():
    velocity = np.array([1.2, 0.5])
    start = np.array([6.0, 5.0])
    track = start[None, :] + np.arange(12)[:, None] * velocity[None, :]  # stays inside a 32 frame
    clip = draw_clip(32, track[:, None, :], [3.0])[None]
    stats = balls.clip_physics(clip, expected_balls=1)
    assert stats["fraction_stable_count"] == 1.0
    assert stats["mean_count_changes"] == 0.0
    assert stats["num_free_triples"] >= 8
    assert stats["mean_speed"] == pytest.approx(np.linalg.norm(velocity), abs=0.05)
    assert stats["speed_std"] < 0.05
    assert stats["free_flight_second_difference"] < 0.06


def test_jumping_ball_gives_large_second_difference():
    rng = np.random.default_rng(1)
    track = rng.uniform(8, 24, size=(12, 1, 2))
    clip = draw_clip(32, track, [3.0])[None]
    stats = balls.clip_physics(clip, expected_balls=1)
    second = np.linalg.norm(track[2:, 0] - 2 * track[1:-1, 0] + track[:-2, 0], axis=-1)
    assert stats["free_flight_second_difference"] > 2.0
    # The estimate tracks the true value of the triples it averaged over.
    assert stats["free_flight_second_difference"] == pytest.approx(second.mean(), rel=0.35)


def test_a_still_ball_is_not_in_flight_but_stutter_and_wobble_are():
    """A frozen ball has no free-flight triples (NaN, which fails every check) rather than a perfect 0;
    a stutter (steps 0 and 2v) and a wobble in place (steps +1, −1) still count, with their large
    second differences."""
    still = draw_clip(32, np.tile([[[16.0, 16.0]]], (12, 1, 1)), [3.0])[None]
    frozen = balls.clip_physics(still, expected_balls=1)
    assert frozen["num_free_triples"] == 0 and np.isnan(frozen["free_flight_second_difference"])
    assert frozen["num_free_steps"] > 0 and frozen["mean_speed"] < 0.01  # the speed columns still see it
    stutter_track = 8.0 + np.repeat(np.arange(6), 2)[:, None, None] * np.array([[[2.0, 1.0]]])
    stutter = balls.clip_physics(draw_clip(32, stutter_track, [3.0])[None], expected_balls=1)
    assert stutter["num_free_triples"] >= 8 and stutter["free_flight_second_difference"] > 1.5
    wobble_track = np.array([[[16.0, 16.0 + (k % 2)]] for k in range(12)])
    wobble = balls.clip_physics(draw_clip(32, wobble_track, [3.0])[None], expected_balls=1)
    assert wobble["num_free_triples"] >= 8 and wobble["free_flight_second_difference"] > 1.5
    lax = balls.clip_physics(still, expected_balls=1, min_flight_speed=0.0)
    assert lax["num_free_triples"] >= 8 and lax["free_flight_second_difference"] < 0.01
    with pytest.raises(ConfigError, match="min_flight_speed"):
        balls.clip_physics(still, expected_balls=1, min_flight_speed=-1.0)


def test_per_clip_values_are_each_clip_alone_and_average_to_the_totals():
    """A batch of a straight flight, a still ball and a jumping ball: each clip's per-clip value is its own
    statistic; the count columns and the in-band fraction average exactly to the batch values."""
    straight = 6.0 + np.arange(12)[:, None, None] * np.array([[[1.2, 0.5]]])
    still = np.tile([[[16.0, 16.0]]], (12, 1, 1))
    jumping = np.random.default_rng(1).uniform(8, 24, size=(12, 1, 2))
    two = np.concatenate([straight, 26.0 - straight], axis=1)  # two balls: counts differ from 1
    clips = np.stack([draw_clip(32, track, [3.0] * track.shape[1]) for track in (straight, still, jumping, two)])
    stats = balls.clip_physics(clips, expected_balls=1, per_clip=True)
    per = stats["per_clip"]
    assert set(per) == {"fraction_expected_count_frames", "mean_count_changes", "free_flight_second_difference",
                        "mean_speed", "fraction_steps_in_speed_band"}
    assert all(v.shape == (4,) and v.dtype == np.float64 for v in per.values())
    for column in ("fraction_expected_count_frames", "mean_count_changes", "fraction_steps_in_speed_band"):
        assert per[column].mean() == pytest.approx(stats[column])
    np.testing.assert_allclose(per["fraction_expected_count_frames"][[0, 1, 3]], [1.0, 1.0, 0.0])
    assert per["mean_speed"][0] == pytest.approx(np.hypot(1.2, 0.5), abs=0.05) and per["mean_speed"][1] < 0.01
    flight = per["free_flight_second_difference"]
    assert flight[0] < 0.06 and np.isnan(flight[1]) and flight[2] > 2.0 and np.isnan(flight[3])
    single = balls.clip_physics(clips[2:3], expected_balls=1)
    assert flight[2] == pytest.approx(single["free_flight_second_difference"])
    assert "per_clip" not in balls.clip_physics(clips, expected_balls=1)
    np.testing.assert_allclose(balls.consecutive_binarized_mse_per_clip(clips).mean(),
                               balls.consecutive_binarized_mse(clips))


def test_wall_bounces_are_excluded_from_free_flight():
    size, radius = 30, 3.0
    velocity = np.array([1.7, -1.1])
    track = bounce(np.array([10.0, 12.0]), velocity, 40, size, radius)
    # The exact track really bounces (the raw second difference is large at the walls).
    raw = np.linalg.norm(track[2:] - 2 * track[1:-1] + track[:-2], axis=-1)
    assert raw.max() > 1.0
    clip = draw_clip(size, track[:, None, :], [radius])[None]
    stats = balls.clip_physics(clip, expected_balls=1, wall_margin=1.0)
    assert stats["num_free_triples"] > 5
    assert stats["free_flight_second_difference"] < 0.06
    assert stats["mean_speed"] == pytest.approx(np.linalg.norm(velocity), abs=0.05)
    # Without any wall margin the bounce steps are counted, and the statistic sees them.
    loose = balls.clip_physics(clip, expected_balls=1, wall_margin=0.0)
    assert loose["num_free_triples"] > stats["num_free_triples"]
    assert loose["free_flight_second_difference_max"] > 1.0


def test_touching_balls_merge_and_are_left_out_of_motion_statistics():
    touching = draw_discs(30, [(15.0, 11.0), (15.0, 19.0)], [4.0, 4.0])
    apart = draw_discs(30, [(15.0, 9.0), (15.0, 21.0)], [4.0, 4.0])
    found = balls.detect_blobs(np.stack([touching, apart]))
    assert [f.count for f in found] == [1, 2]
    assert found[0].areas[0] == pytest.approx(2 * np.pi * 16, rel=0.1)

    # Two balls that approach, touch and separate: the frames where they merge change the count,
    # and tracked steps next to the other ball are excluded by ball_margin.
    t = np.arange(13)
    left = np.stack([np.full(13, 15.0), 5.0 + 0.9 * t], axis=-1)
    right = np.stack([np.full(13, 15.0), 25.0 - 0.9 * t], axis=-1)
    # They would cross at t ~ 11: reverse their motion after closest approach, like a collision.
    left[8:] = left[7] - (left[8:] - left[7])
    right[8:] = right[7] - (right[8:] - right[7])
    clip = draw_clip(30, np.stack([left, right], axis=1), [3.0, 3.0])[None]
    stats = balls.clip_physics(clip, expected_balls=2, ball_margin=2.0)
    assert stats["free_flight_second_difference"] < 0.06  # the collision itself is excluded
    assert stats["mean_speed"] == pytest.approx(0.9, abs=0.05)
    strict = balls.clip_physics(clip, expected_balls=2, ball_margin=0.0)
    assert strict["num_free_triples"] > stats["num_free_triples"]
    assert strict["free_flight_second_difference_max"] > 1.0  # the reversal is seen without the margin


def test_count_changes_are_counted_per_clip():
    steady = draw_clip(30, np.tile([[[8.0, 8.0], [20.0, 20.0]]], (6, 1, 1)), [3.0, 3.0])
    flicker = steady.copy()
    flicker[2] = draw_discs(30, [(8.0, 8.0)], [3.0])  # ball 2 vanishes in frame 2 only
    flicker[4] = draw_discs(30, [(8.0, 8.0)], [3.0])  # and again in frame 4
    stats = balls.clip_physics(np.stack([steady, flicker]), expected_balls=2)
    assert stats["fraction_stable_count"] == 0.5
    assert stats["fraction_always_expected_count"] == 0.5
    assert stats["mean_count_changes"] == pytest.approx((0 + 4) / 2)
    assert stats["fraction_expected_count_frames"] == pytest.approx(10 / 12)
    assert stats["fraction_expected_count_first_frame"] == 1.0


def test_a_messy_first_frame_is_reported_on_its_own():
    # A speck in frame 0 of half the clips: a 1-in-T blip in the all-frames fraction, half of the first frames.
    steady = draw_clip(30, np.tile([[[8.0, 8.0], [20.0, 20.0]]], (10, 1, 1)), [3.0, 3.0])
    messy = steady.copy()
    messy[0] = draw_discs(30, [(8.0, 8.0), (20.0, 20.0), (4.0, 26.0)], [3.0, 3.0, 1.5])
    stats = balls.clip_physics(np.stack([steady, messy]), expected_balls=2)
    assert stats["fraction_expected_count_first_frame"] == 0.5
    assert stats["fraction_expected_count_frames"] == pytest.approx(19 / 20)


def test_threshold_min_area_and_connectivity_are_parameters():
    dim = draw_discs(30, [(15.0, 15.0)], [4.0], peak=-0.3)
    assert balls.detect_blobs(dim[None])[0].count == 0
    assert balls.detect_blobs(dim[None], threshold=-0.6)[0].count == 1

    frame = -np.ones((10, 10, 1), np.float32)
    frame[2, 2] = frame[3, 3] = 1.0  # diagonal neighbours
    frame[7:9, 7:9] = 1.0  # a 4-pixel blob
    assert balls.detect_blobs(frame[None], connectivity=4)[0].count == 3
    assert balls.detect_blobs(frame[None], connectivity=8)[0].count == 2
    only_big = balls.detect_blobs(frame[None], connectivity=4, min_area=2)[0]
    assert only_big.count == 1 and only_big.areas[0] == 4
    np.testing.assert_allclose(only_big.centroids[0], [8.0, 8.0])  # pixels 7..8 span [7, 9)

    rgb = np.repeat(frame, 3, axis=-1)
    assert balls.detect_blobs(rgb[None], connectivity=8)[0].count == 2


def test_coloured_balls_are_detected_by_their_brightest_channel():
    gray = draw_discs(32, [(10.3, 20.6)], [4.0])
    coverage = (gray + 1.0) / 2.0
    blue = (-1.0 + 2.0 * coverage * np.array([0.35, 0.5, 1.0])).astype(np.float32)  # a palette colour
    g, c = balls.detect_blobs(np.stack([np.repeat(gray, 3, axis=-1), blue]))
    assert g.count == c.count == 1
    assert c.areas[0] == g.areas[0]
    np.testing.assert_allclose(c.centroids, g.centroids, atol=1e-6)
    np.testing.assert_allclose(c.centroids[0], [10.3, 20.6], atol=0.05)


def test_hungarian_tracking_keeps_identities_when_balls_pass_close():
    # Two balls moving in parallel; greedy nearest matching of the second ball would be fine too, but
    # the assignment must be one-to-one even when one ball is closer to both previous positions.
    a = np.stack([np.full(5, 10.0), 5.0 + 2.0 * np.arange(5)], axis=-1)
    b = np.stack([np.full(5, 20.0), 6.0 + 2.0 * np.arange(5)], axis=-1)
    frames = draw_clip(30, np.stack([a, b], axis=1), [3.0, 3.0])
    track_of = balls.track_blobs(balls.detect_blobs(frames))
    first = balls.detect_blobs(frames[:1])[0]
    id_top = track_of[0][int(np.argmin(first.centroids[:, 0]))]
    for t, blobs in enumerate(balls.detect_blobs(frames)):
        top = int(np.argmin(blobs.centroids[:, 0]))
        assert track_of[t][top] == id_top
    assert sorted({i for ids in track_of for i in ids}) == [0, 1]

    jump = np.concatenate([a[:3], a[3:] + [0.0, 12.0]])  # jump of 12 px between frames 2 and 3
    frames = draw_clip(30, jump[:, None, :], [3.0])
    assert balls.track_blobs(balls.detect_blobs(frames), max_match_distance=5.0) == [[0], [0], [0], [1], [1]]


def test_consecutive_binarized_mse_counts_flipped_pixels():
    clip = -np.ones((2, 3, 4, 5, 1), np.float32)
    assert balls.consecutive_binarized_mse(clip) == 0.0
    clip[0, 1, 0, :3] = 1.0  # 3 pixels on in frame 1 of clip 0: 3 flips at t=0->1 and 3 at t=1->2
    clip[1, 2, 1, 1] = 0.7  # 1 flip in clip 1
    expected = ((3 + 3) / 2 / 20 + (0 + 1) / 2 / 20) / 2
    assert balls.consecutive_binarized_mse(clip) == pytest.approx(expected)
    # A value exactly at the threshold is background (same as the authors' x > 0 rule).
    clip[1, 2, 1, 1] = 0.0
    assert balls.consecutive_binarized_mse(clip) == pytest.approx((3 + 3) / 2 / 20 / 2)
    assert balls.consecutive_binarized_mse(clip, threshold=-0.5) == pytest.approx(expected)


def test_bad_inputs_raise_named_errors():
    with pytest.raises(DatasetError, match="frames"):
        balls.detect_blobs(np.zeros((4, 4, 1)))
    with pytest.raises(DatasetError, match="clips"):
        balls.clip_physics(np.zeros((2, 4, 4, 1)), expected_balls=1)
    with pytest.raises(DatasetError, match="NaN"):
        balls.frame_statistics(np.full((1, 4, 4, 1), np.nan), expected_balls=1)
    with pytest.raises(ConfigError, match="connectivity"):
        balls.detect_blobs(np.zeros((1, 4, 4, 1)), connectivity=6)
    with pytest.raises(ConfigError, match="min_area"):
        balls.detect_blobs(np.zeros((1, 4, 4, 1)), min_area=0)
    with pytest.raises(DatasetError, match="clips"):
        balls.consecutive_binarized_mse(np.zeros((1, 1, 4, 4, 1)))
