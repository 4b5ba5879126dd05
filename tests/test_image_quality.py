"""tfvidgan.metrics.image_quality: per-frame PSNR and SSIM against their definitions.

(The scores used by the GAP-TV tests, the reconstruction report and the reconstruction benchmark.)
"""
import numpy as np
import pytest

from tfvidgan.errors import ConfigError
from tfvidgan.metrics.image_quality import mean_psnr, mean_ssim, psnr_per_frame, ssim_per_frame, ssim_window


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
