"""The motion-energy regulariser: steady motion is free, changes of speed cost, contrast does not matter."""
import numpy as np
import pytest
import tensorflow as tf

from tfvidgan.data.bouncing_balls import render
from tfvidgan.errors import ConfigError
from tfvidgan.training.video_task import MOTION_ENERGY_EPSILON, VideoGanConfig, motion_energy_variation


def _ball_clip(positions, size=24, radius=3.0):
    """`[1, T, size, size, 1]` clip in [-1, 1] of one ball (the dataset's renderer) whose centre follows
    `positions` (x, y)."""
    centres = np.asarray(positions, np.float64)[None, :, None, ::-1]  # [1, T, 1, (row, col)]
    frames = render(centres, np.full((1, 1), radius), size=size)
    return tf.constant(frames.astype(np.float32) / 127.5 - 1.0)


def test_matches_the_formula_on_uniform_frames():
    levels = np.array([[0.0, 0.1, 0.1, 0.3], [0.0, 0.1, 0.2, 0.3]], np.float32)  # every pixel alike
    clips = tf.constant(np.broadcast_to(levels[:, :, None, None, None], (2, 4, 3, 5, 2)).copy())
    energy = np.diff(levels.astype(np.float64), axis=1) ** 2  # [0.01, 0, 0.04] and [0.01, 0.01, 0.01]
    expected = energy.var(axis=1) / (energy.mean(axis=1) ** 2 + MOTION_ENERGY_EPSILON**2)
    np.testing.assert_allclose(motion_energy_variation(clips).numpy(), expected, rtol=1e-4, atol=1e-6)
    assert expected[0] > 0.5 and expected[1] < 1e-9


def test_steady_motion_and_bounces_are_free_stalls_and_jitter_are_not():
    steady = _ball_clip([(5.0 + t, 12.0) for t in range(10)])
    bounce = _ball_clip([(14.0 + t if t < 5 else 22.0 - t, 12.0) for t in range(10)])  # turns at x = 18
    stall = _ball_clip([(5.0 + t if t < 5 else 9.0 + 0.2 * (t - 4), 12.0) for t in range(10)])
    jitter = _ball_clip([(5.0 + t, 12.0 + (0.5 if t % 3 == 1 else 0.0)) for t in range(10)])  # uneven steps
    zigzag = _ball_clip([(5.0 + t, 12.0 + (0.5 if t % 2 else 0.0)) for t in range(10)])  # even steps
    values = {name: float(motion_energy_variation(c).numpy()[0])
              for name, c in dict(steady=steady, bounce=bounce, stall=stall, jitter=jitter).items()}
    assert values["steady"] < 1e-4 and values["bounce"] < 1e-4
    assert values["stall"] > 0.5 and values["jitter"] > 2e-3  # a stall costs far more than a jitter
    # What it cannot see: a zigzag whose steps all have the same length.
    assert float(motion_energy_variation(zigzag).numpy()[0]) < 1e-3
    # Scale-free: the same motion at half the contrast costs the same; a frozen clip costs nothing.
    half = motion_energy_variation(0.5 * _ball_clip([(5.0, 12.0), (6.0, 12.0), (6.2, 12.0), (8.0, 12.0)]))
    full = motion_energy_variation(_ball_clip([(5.0, 12.0), (6.0, 12.0), (6.2, 12.0), (8.0, 12.0)]))
    np.testing.assert_allclose(half.numpy(), full.numpy(), rtol=1e-3)
    frozen = _ball_clip([(5.0, 12.0)] * 6)
    np.testing.assert_array_equal(motion_energy_variation(frozen).numpy(), [0.0])


def test_gradient_evens_out_the_steps():
    """One gradient step on the frames lowers the variation (the term is differentiable where it is used)."""
    clips = tf.Variable(_ball_clip([(5.0, 12.0), (6.0, 12.0), (6.2, 12.0), (8.0, 12.0), (9.0, 12.0)]))
    with tf.GradientTape() as tape:
        before = tf.reduce_sum(motion_energy_variation(clips))
    clips.assign_sub(0.02 * tape.gradient(before, clips))
    assert float(tf.reduce_sum(motion_energy_variation(clips))) < float(before)


def test_negative_weight_is_refused_by_name():
    with pytest.raises(ConfigError, match="--motion_energy_weight must be >= 0"):
        VideoGanConfig(frames_generator="x", motion_energy_weight=-1.0)


def test_the_report_metric_is_the_square_root_of_the_regulariser_and_fails_frozen_sets():
    from tfvidgan.errors import DatasetError
    from tfvidgan.metrics.balls import motion_energy_cv, motion_energy_cv_per_clip
    moving = np.concatenate([_ball_clip([(5.0, 12.0), (6.0, 12.0), (6.2, 12.0), (8.0, 12.0), (9.0, 12.0)]),
                             _ball_clip([(5.0 + t, 9.0) for t in range(5)])]).astype(np.float64)
    frozen = np.repeat(moving[:, :1], 5, axis=1)
    per_clip = motion_energy_cv_per_clip(np.concatenate([moving, frozen]))
    np.testing.assert_allclose(per_clip[:2] ** 2, motion_energy_variation(moving).numpy(), rtol=1e-3, atol=1e-6)
    assert per_clip[0] > 0.5 and per_clip[1] < 1e-6 and np.isnan(per_clip[2:]).all()
    assert motion_energy_cv(np.concatenate([moving, frozen])) == pytest.approx(per_clip[:2].mean())
    assert np.isnan(motion_energy_cv(frozen))
    with pytest.raises(DatasetError, match="T>=3"):
        motion_energy_cv(moving[:, :2])
