"""GAP-TV baseline: beats the back-projection on moving discs, drives the residual down, TV prox."""
import numpy as np
import pytest
import tensorflow as tf

from tfvidgan.cup.gap_tv import gap_tv_reconstruct, tv_denoise
from tfvidgan.cup.operator import CupOperator, make_mask
from tfvidgan.errors import ConfigError
from tfvidgan.metrics.image_quality import mean_psnr, mean_ssim, psnr_per_frame, ssim_per_frame, ssim_window


def moving_discs(batch, frames, size, seed, discs=2):
    """[B, T, H, W, 1] float32 in {0, 1}: `discs` discs per scene moving on straight lines."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    out = np.zeros((batch, frames, size, size), np.float32)
    for b in range(batch):
        for _ in range(discs):
            radius = rng.uniform(size / 8, size / 5)
            start = rng.uniform(radius, size - radius, 2)
            velocity = rng.uniform(-1, 1, 2)
            for t in range(frames):
                r, c = start + velocity * t
                out[b, t] = np.maximum(out[b, t], (rows - r) ** 2 + (cols - c) ** 2 <= radius**2)
    return out[..., None]


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
    scenes = moving_discs(3, frames, size, seed=0)
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
    sensed = op.forward(tf.constant(moving_discs(2, 3, 8, seed=1)))
    graph = gap_tv_reconstruct(sensed, op, iterations=5, tv_iterations=2)
    xla = gap_tv_reconstruct(sensed, op, iterations=5, tv_iterations=2, jit_compile=True)
    np.testing.assert_allclose(xla.numpy(), graph.numpy(), atol=1e-4)


def test_tv_denoise_lowers_the_rof_objective_and_flattens_with_a_large_weight():
    rng = np.random.default_rng(0)
    clean = moving_discs(2, 4, 12, seed=3)[..., 0]
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


# -- tfvidgan.metrics.image_quality (the scores used above and by the reconstruction benchmark) ----


def numpy_ssim(x, y, size, sigma):
    """Reference SSIM of two [H, W] images: Gaussian window, 'valid' positions, k1=0.01, k2=0.03, L=1."""
    coords = np.arange(size) - (size - 1) / 2
    g = np.exp(-(coords**2) / (2 * sigma**2))
    window = np.outer(g, g) / np.outer(g, g).sum()

    def filt(a):
        h, w = a.shape[0] - size + 1, a.shape[1] - size + 1
        return np.array([[np.sum(a[i : i + size, j : j + size] * window) for j in range(w)] for i in range(h)])

    c1, c2 = 0.01**2, 0.03**2
    mx, my = filt(x), filt(y)
    vx, vy, cxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    return np.mean((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))


def test_psnr_per_frame_matches_the_definition():
    offsets = np.array([[0.1, 0.01, 0.5], [0.2, 0.05, 0.0]], np.float32)  # [B=2, T=3]
    y = np.random.default_rng(0).uniform(0.0, 0.4, (2, 3, 5, 7, 1)).astype(np.float32)
    x = y + offsets[:, :, None, None, None]
    psnr = psnr_per_frame(x, y).numpy()
    assert psnr.shape == (2, 3)
    expected = -10.0 * np.log10(offsets[:, :2].astype(np.float64) ** 2)  # MSE = offset²; e.g. 0.1 -> 20 dB
    np.testing.assert_allclose(psnr[:, :2], expected, atol=1e-3)
    assert psnr[0, 2] == pytest.approx(-10 * np.log10(0.25), abs=1e-3)
    assert np.isinf(psnr[1, 2])  # identical frames
    assert float(mean_psnr(x[:1], y[:1])) == pytest.approx(np.mean(psnr[0]), abs=1e-4)


@pytest.mark.parametrize("size", [6, 16])
def test_ssim_per_frame_matches_a_hand_computation(size):
    # Constant frames a, b: the structure term is 1, SSIM = (2ab + c1) / (a² + b² + c1).
    a, b = 0.6, 0.2
    x = np.full((1, 2, size, size, 1), a, np.float32)
    y = np.full((1, 2, size, size, 1), b, np.float32)
    y[0, 1] = a
    ssim = ssim_per_frame(x, y).numpy()
    assert ssim.shape == (1, 2)
    # (float32 E[x²] − E[x]² leaves ~1e-7 in the variances, i.e. ~1e-4 against c2 = 9e-4.)
    assert ssim[0, 0] == pytest.approx((2 * a * b + 1e-4) / (a * a + b * b + 1e-4), abs=5e-4)
    assert ssim[0, 1] == pytest.approx(1.0, abs=5e-4)
    # Textured frames: against the reference formula with the documented window.
    rng = np.random.default_rng(size)
    u = rng.uniform(0, 1, (1, 1, size, size + 3, 1)).astype(np.float32)
    v = np.clip(u + rng.normal(0, 0.1, u.shape), 0, 1).astype(np.float32)
    window = ssim_window(size, size + 3)
    assert window == (min(size, 11), 1.5 * min(size, 11) / 11)
    expected = numpy_ssim(u[0, 0, ..., 0].astype(np.float64), v[0, 0, ..., 0].astype(np.float64), *window)
    assert float(ssim_per_frame(u, v)[0, 0]) == pytest.approx(expected, abs=2e-4)
    assert float(mean_ssim(u, u)) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ConfigError):
        ssim_per_frame(u, v[:, :, 1:])
