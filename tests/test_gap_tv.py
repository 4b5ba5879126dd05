"""GAP-TV baseline: beats the back-projection on moving discs, drives the residual down, TV prox.

(The PSNR/SSIM tests live in test_image_quality.py.)
"""
import numpy as np
import pytest
import tensorflow as tf

from tfvidgan.cup.gap_tv import gap_tv_reconstruct, tv_denoise
from tfvidgan.cup.operator import CupOperator, make_mask
from tfvidgan.cup.synthetic import moving_discs
from tfvidgan.errors import ConfigError
from tfvidgan.metrics.image_quality import mean_psnr, mean_ssim


def numpy_tv(u, temporal_weight):
    """Isotropic TV of [B, T, H, W] with forward differences (0 at the last index)."""
    def diff(a, axis):
        d = np.diff(a, axis=axis)
        pad = [(0, 0)] * a.ndim
        pad[axis] = (0, 1)
        return np.pad(d, pad)

    return np.sum(np.sqrt(diff(u, 2) ** 2 + diff(u, 3) ** 2 + (temporal_weight * diff(u, 1)) ** 2))


@pytest.fixture(scope="module")
def problem():
    frames, size = 8, 24
    scenes = moving_discs(3, frames, size, size, seed=0)
    op = CupOperator(make_mask(size, size, seed=1), frames)
    return scenes, op, op.forward(tf.constant(scenes))


def test_gap_tv_beats_back_projection_and_reduces_the_residual(problem):
    scenes, op, sensed = problem
    back_projection = tf.clip_by_value(op.normalized_back_projection(sensed), 0.0, 1.0)
    recon, residuals = gap_tv_reconstruct(sensed, op, iterations=60, tv_weight=0.3, return_history=True)
    assert recon.shape == scenes.shape and recon.dtype == tf.float32
    assert float(tf.reduce_min(recon)) >= 0.0 and float(tf.reduce_max(recon)) <= 1.0
    psnr_gap, psnr_bp = float(mean_psnr(recon, scenes)), float(mean_psnr(back_projection, scenes))
    assert psnr_gap > psnr_bp + 3.0, (psnr_gap, psnr_bp)
    assert float(mean_ssim(recon, scenes)) > float(mean_ssim(back_projection, scenes)) + 0.1
    # Residual after each GAP-TV iteration (the TV step moves off the data; the projections pull back).
    residuals = residuals.numpy()
    assert residuals.shape == (3, 60)
    assert np.all(residuals[:, -1] < 0.05 * residuals[:, 0])
    assert np.all(residuals[:, -10:].mean(axis=1) < residuals[:, 10:20].mean(axis=1))


def test_gap_tv_xla_matches_graph_mode():
    op = CupOperator(make_mask(8, 8, seed=0), 3)
    sensed = op.forward(tf.constant(moving_discs(2, 3, 8, 8, seed=1)))
    graph = gap_tv_reconstruct(sensed, op, iterations=5, tv_iterations=2)
    xla = gap_tv_reconstruct(sensed, op, iterations=5, tv_iterations=2, jit_compile=True)
    np.testing.assert_allclose(xla.numpy(), graph.numpy(), atol=1e-4)


def test_tv_denoise_lowers_the_rof_objective_and_flattens_with_a_large_weight():
    rng = np.random.default_rng(0)
    clean = moving_discs(2, 4, 12, 12, seed=3)[..., 0]
    noisy = (clean + rng.normal(0, 0.2, clean.shape)).astype(np.float32)
    weight = 0.2

    def objective(u):
        return 0.5 * np.sum((u - noisy) ** 2) + weight * numpy_tv(u, 1.0)

    denoised = tv_denoise(noisy, weight, iterations=50).numpy()
    assert objective(denoised) < 0.5 * objective(noisy)
    # The prox is better than nearby points and than a blunt alternative (the clean scene).
    for _ in range(5):
        assert objective(denoised) <= objective(denoised + rng.normal(0, 0.01, noisy.shape).astype(np.float32))
    assert objective(denoised) < objective(clean)
    flat = tv_denoise(noisy, 100.0, iterations=400).numpy()
    np.testing.assert_allclose(flat, np.broadcast_to(noisy.mean(axis=(1, 2, 3), keepdims=True), flat.shape), atol=0.02)
    np.testing.assert_array_equal(tv_denoise(noisy, 0.0).numpy(), noisy)


def test_gap_tv_rejects_bad_arguments(problem):
    _, op, sensed = problem
    with pytest.raises(ConfigError, match="iterations"):
        gap_tv_reconstruct(sensed, op, iterations=0)
    with pytest.raises(ConfigError, match="tv_weight"):
        gap_tv_reconstruct(sensed, op, tv_weight=-1.0)
    with pytest.raises(ConfigError, match="GAP-TV input"):
        gap_tv_reconstruct(sensed[:, 1:], op)
