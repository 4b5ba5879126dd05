"""Tests for tfvidgan.metrics.frechet: the distance itself and the small trained encoders."""

import os

import numpy as np
import pytest

from tfvidgan.errors import ConfigError, DatasetError
from tfvidgan.metrics import frechet


def discs(size, centres, radius=2.5, supersample=3):
    """Frames `[N, size, size, 1]` in [-1, 1] with anti-aliased discs; `centres [N, balls, 2]` (row, col)."""
    offsets = (np.arange(supersample) + 0.5) / supersample  # pixel [i, j] covers [i, i+1) x [j, j+1)
    sub = (np.arange(size)[:, None] + offsets[None, :]).reshape(-1)
    rr = sub[None, None, :, None]
    cc = sub[None, None, None, :]
    inside = (rr - centres[..., 0, None, None]) ** 2 + (cc - centres[..., 1, None, None]) ** 2 <= radius**2
    cover = inside.any(axis=1).reshape(len(centres), size, supersample, size, supersample).mean(axis=(2, 4))
    return (2.0 * cover - 1.0)[..., None].astype(np.float32)


def moving_clips(rng, n, t, size, balls=1):
    """Clips `[n, t, size, size, 1]` of balls moving in straight lines, and positions `[n, t, balls, 2]`."""
    start = rng.uniform(4, size - 5, size=(n, 1, balls, 2))
    velocity = rng.uniform(-1.0, 1.0, size=(n, 1, balls, 2))
    pos = np.clip(start + np.arange(t)[None, :, None, None] * velocity, 3, size - 4)
    frames = discs(size, pos.reshape(n * t, balls, 2))
    return frames.reshape(n, t, size, size, 1), pos


# ---------------------------------------------------------------------------------- distance


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_identical_sets_give_zero(method):
    a = np.random.default_rng(0).normal(size=(200, 6))
    assert frechet.frechet_distance(a, a, method=method) == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_mean_shift_gives_squared_norm_of_shift(method):
    a = np.random.default_rng(1).normal(size=(300, 5))
    delta = np.array([0.5, -1.0, 2.0, 0.0, 0.25])
    expected = float(delta @ delta)
    assert frechet.frechet_distance(a, a + delta, method=method) == pytest.approx(expected, rel=1e-7)


def test_symmetric_and_methods_agree():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(150, 4))
    b = rng.normal(size=(120, 4)) @ rng.normal(size=(4, 4)) + 0.3
    d_ab = frechet.frechet_distance(a, b)
    assert d_ab == pytest.approx(frechet.frechet_distance(b, a), rel=1e-9)
    assert d_ab == pytest.approx(frechet.frechet_distance(a, b, method="sqrtm"), rel=1e-6)
    assert d_ab > 0.1


def test_scaled_set_matches_closed_form():
    # b = s * a exactly: mu_b = s mu_a, S_b = s^2 S_a, so FD = (1 - s)^2 (|mu_a|^2 + tr S_a).
    a = np.random.default_rng(3).normal(loc=0.2, size=(250, 3))
    s = 2.5
    mu = a.mean(axis=0)
    expected = (1 - s) ** 2 * (mu @ mu + np.trace(np.cov(a, rowvar=False)))
    assert frechet.frechet_distance(a, s * a) == pytest.approx(expected, rel=1e-8)


def test_one_dimensional_gaussians_formula():
    rng = np.random.default_rng(4)
    a = rng.normal(1.0, 2.0, size=(500, 1))
    b = rng.normal(-0.5, 0.5, size=(400, 1))
    sa, sb = a.std(ddof=1), b.std(ddof=1)
    expected = (a.mean() - b.mean()) ** 2 + (sa - sb) ** 2
    assert frechet.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_singular_covariances_are_handled():
    rng = np.random.default_rng(5)
    # N < D and a constant feature: both covariances are singular.
    a = rng.normal(size=(5, 20))
    a[:, 0] = 1.0
    b = a.copy()
    for method in ("eigh", "sqrtm"):
        assert frechet.frechet_distance(a, b, method=method) == pytest.approx(0.0, abs=1e-6)
    c = rng.normal(size=(6, 20))
    d = frechet.frechet_distance(a, c)
    assert np.isfinite(d) and d > 0
    assert d == pytest.approx(frechet.frechet_distance(a, c, method="sqrtm"), rel=1e-3)


def test_distance_bad_inputs():
    with pytest.raises(DatasetError, match="features_b"):
        frechet.frechet_distance(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(DatasetError, match="features_a"):
        frechet.frechet_distance(np.zeros((1, 3)), np.zeros((4, 3)))
    with pytest.raises(DatasetError, match="NaN"):
        frechet.frechet_distance(np.full((4, 3), np.nan), np.zeros((4, 3)))
    with pytest.raises(ConfigError, match="method"):
        frechet.frechet_distance(np.zeros((4, 3)), np.zeros((4, 3)), method="svd")


# ---------------------------------------------------------------------------------- encoders


def test_frame_encoder_separates_real_from_noise_and_blank_and_round_trips(tmp_path):
    rng = np.random.default_rng(6)
    size, balls = 16, 2

    def real(n):
        pos = rng.uniform(3, size - 4, size=(n, balls, 2))
        return discs(size, pos), pos

    train_x, train_pos = real(256)
    calls = []

    def train():
        calls.append(1)
        return frechet.train_frame_encoder(train_x, train_pos, feature_dim=16, steps=100, batch_size=32, seed=1)

    encoder = frechet.load_or_train_encoder(str(tmp_path), "tiny_frames", train)
    assert encoder.kind == "frame_encoder" and encoder.feature_dim == 16 and encoder.input_shape == (16, 16, 1)
    assert np.mean(encoder.loss_history[-10:]) < np.mean(encoder.loss_history[:10])

    real_a, _ = real(800)
    real_b, _ = real(800)
    noise = rng.uniform(-1, 1, size=real_a.shape).astype(np.float32)
    blank = -np.ones_like(real_a)
    one_ball = discs(size, rng.uniform(3, size - 4, size=(800, 1, 2)))  # wrong ball count
    d_real = frechet.encoder_frechet_distance(encoder, real_a, real_b)
    assert frechet.encoder_frechet_distance(encoder, real_a, noise) > 10 * d_real
    assert frechet.encoder_frechet_distance(encoder, real_a, blank) > 10 * d_real
    assert frechet.encoder_frechet_distance(encoder, real_a, one_ball) > 4 * d_real

    # The cached file is reused: no retraining, identical features.
    assert os.path.isfile(tmp_path / "tiny_frames.keras")
    again = frechet.load_or_train_encoder(str(tmp_path), "tiny_frames", train)
    assert len(calls) == 1
    np.testing.assert_allclose(again.features(real_a[:10]), encoder.features(real_a[:10]), atol=1e-6)

    with pytest.raises(DatasetError, match=r"frame_encoder expects inputs of shape \[N, 16, 16, 1\]"):
        encoder.features(np.zeros((2, 32, 32, 1)))


def test_clip_encoder_separates_real_from_noise_static_and_teleporting():
    rng = np.random.default_rng(7)
    t, size, n = 4, 16, 600
    train_x, train_pos = moving_clips(rng, 160, t, size)
    encoder = frechet.train_clip_encoder(train_x, train_pos, feature_dim=16, steps=100, batch_size=32, seed=2)
    assert encoder.kind == "clip_encoder" and encoder.input_shape == (t, size, size, 1)
    assert encoder.features(train_x[:3]).shape == (3, 16)

    real_a, _ = moving_clips(rng, n, t, size)
    real_b, _ = moving_clips(rng, n, t, size)
    other, _ = moving_clips(rng, n, t, size)
    noise = rng.uniform(-1, 1, size=real_a.shape).astype(np.float32)
    blank = -np.ones_like(real_a)
    static = np.repeat(other[:, :1], t, axis=1)  # real-looking frames that never move
    teleport = np.stack([other[rng.permutation(n), k] for k in range(t)], axis=1)  # each frame from another clip
    d_real = frechet.encoder_frechet_distance(encoder, real_a, real_b)
    assert frechet.encoder_frechet_distance(encoder, real_a, noise) > 5 * d_real
    assert frechet.encoder_frechet_distance(encoder, real_a, blank) > 10 * d_real
    assert frechet.encoder_frechet_distance(encoder, real_a, static) > 3 * d_real
    assert frechet.encoder_frechet_distance(encoder, real_a, teleport) > 3 * d_real

    with pytest.raises(DatasetError, match="clip_encoder expects"):
        encoder.features(real_a[:, :3])


def test_encoder_bad_arguments():
    frames = np.zeros((4, 8, 8, 1), np.float32)
    with pytest.raises(DatasetError, match="positions"):
        frechet.train_frame_encoder(frames, np.zeros((3, 1, 2)), steps=1)
    with pytest.raises(ConfigError, match="steps"):
        frechet.train_frame_encoder(frames, steps=0)
    with pytest.raises(DatasetError, match="clips"):
        frechet.train_clip_encoder(frames, steps=1)
    with pytest.raises(ConfigError, match="name"):
        frechet.load_or_train_encoder("/tmp", "../x", lambda: None)
    with pytest.raises(ConfigError, match="features are constant"):
        frechet.train_frame_encoder(np.full((8, 8, 8, 1), 0.5, np.float32), steps=2, feature_dim=4)
    with pytest.raises(DatasetError, match="does not exist"):
        frechet.FrechetEncoder.load("/nonexistent/enc.keras")
