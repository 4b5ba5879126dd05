"""CUP forward operator: exact adjoint, geometry, A Aᵀ diagonal, shapes, XLA, noise statistics."""
import numpy as np
import pytest
import tensorflow as tf

from tfvidgan.cup.operator import CupOperator, add_noise, make_mask
from tfvidgan.errors import ConfigError


def reference_forward(scenes: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Independent loop implementation of E[r, c] = sum_t C[r - t, c] I[t, r - t, c]."""
    batch, frames, height, width = scenes.shape
    out = np.zeros((batch, height + frames - 1, width), scenes.dtype)
    for t in range(frames):
        out[:, t : t + height] += scenes[:, t] * mask
    return out


def test_make_mask_is_seeded_binary_with_requested_fill():
    a = make_mask(64, 48, seed=3, fill=0.3)
    assert a.shape == (64, 48) and a.dtype == np.float32
    assert set(np.unique(a)) == {0.0, 1.0}
    np.testing.assert_array_equal(a, make_mask(64, 48, seed=3, fill=0.3))
    assert not np.array_equal(a, make_mask(64, 48, seed=4, fill=0.3))
    # Binomial(3072, 0.3): std of the mean is 0.008; 0.04 is 5 sigma.
    assert abs(a.mean() - 0.3) < 0.04
    assert make_mask(5, 5, seed=0, fill=1.0).min() == 1.0
    for bad in (dict(fill=0.0), dict(fill=1.5)):
        with pytest.raises(ConfigError, match="fill"):
            make_mask(4, 4, seed=0, **bad)
    with pytest.raises(ConfigError, match="height"):
        make_mask(0, 4, seed=0)


@pytest.mark.parametrize("frames,height,width", [(1, 5, 4), (3, 6, 5), (7, 4, 9)])
def test_adjoint_is_exact_in_float64(frames, height, width):
    rng = np.random.default_rng(frames)
    op = CupOperator(make_mask(height, width, seed=frames), frames)
    x = rng.normal(size=(3, frames, height, width))
    y = rng.normal(size=(3, height + frames - 1, width, 1))
    ax = op.forward(tf.constant(x)).numpy()
    aty = op.adjoint(tf.constant(y)).numpy()
    assert ax.dtype == np.float64 and aty.dtype == np.float64
    lhs, rhs = np.sum(ax * y), np.sum(x[..., None] * aty)
    assert abs(lhs - rhs) <= 1e-12 * (abs(lhs) + 1.0)
    np.testing.assert_allclose(ax[..., 0], reference_forward(x, op.mask_np), rtol=0, atol=1e-12)


def test_single_bright_pixel_lands_sheared_by_its_frame_index_only_if_mask_open():
    frames, height, width = 4, 6, 5
    mask = make_mask(height, width, seed=1)
    op = CupOperator(mask, frames)
    assert 0 < mask.sum() < mask.size  # both cases occur
    for t in range(frames):
        for r in range(height):
            for c in range(width):
                scene = np.zeros((1, frames, height, width, 1), np.float32)
                scene[0, t, r, c, 0] = 0.75
                sensed = op.forward(scene).numpy()[0, ..., 0]
                expected = np.zeros((height + frames - 1, width), np.float32)
                if mask[r, c]:
                    expected[r + t, c] = 0.75
                np.testing.assert_array_equal(sensed, expected)


def test_shapes_and_channel_handling():
    op = CupOperator(make_mask(8, 6, seed=0), 5)
    assert op.scene_shape == (5, 8, 6, 1) and op.sensed_shape == (12, 6, 1)
    x = tf.random.uniform([2, 5, 8, 6])
    sensed = op.forward(x)
    assert sensed.shape == (2, 12, 6, 1)
    np.testing.assert_array_equal(sensed.numpy(), op.forward(x[..., None]).numpy())
    assert op.adjoint(sensed).shape == (2, 5, 8, 6, 1)
    np.testing.assert_array_equal(op.adjoint(sensed).numpy(), op.adjoint(sensed[..., 0]).numpy())
    with pytest.raises(ConfigError, match="scenes"):
        op.forward(tf.zeros([2, 4, 8, 6]))
    with pytest.raises(ConfigError, match="sensed"):
        op.adjoint(tf.zeros([2, 11, 6, 1]))
    with pytest.raises(ConfigError):
        CupOperator(np.zeros(5), 3)


def test_aat_is_diagonal_with_the_documented_diagonal():
    frames, height, width = 3, 4, 3
    op = CupOperator(make_mask(height, width, seed=2), frames)
    n = frames * height * width
    basis = np.eye(n).reshape(n, frames, height, width)
    dense = op.forward(tf.constant(basis)).numpy().reshape(n, -1).T  # [sensed pixels, scene pixels]
    aat = dense @ dense.T
    np.testing.assert_array_equal(aat, np.diag(np.diag(aat)))
    np.testing.assert_array_equal(np.diag(aat), op.aat_diagonal(tf.float64).numpy().ravel())


def test_normalized_back_projection_is_consistent_with_the_measurement():
    op = CupOperator(make_mask(10, 7, seed=5), 6)
    x = tf.random.stateless_uniform([2, 6, 10, 7, 1], seed=[1, 2], dtype=tf.float64)
    y = op.forward(x)
    x0 = op.normalized_back_projection(y)
    reached = op.aat_diagonal(tf.float64).numpy() > 0
    np.testing.assert_allclose(op.forward(x0).numpy()[:, reached], y.numpy()[:, reached], atol=1e-12)
    # Least-norm solution: not larger than the true scene.
    assert np.all(np.linalg.norm(x0.numpy().reshape(2, -1), axis=1) <= np.linalg.norm(x.numpy().reshape(2, -1), axis=1))


def test_operator_compiles_with_xla():
    op = CupOperator(make_mask(8, 8, seed=0), 4)
    x = tf.random.uniform([3, 4, 8, 8, 1])
    fn = tf.function(lambda v: op.adjoint(op.forward(v)), jit_compile=True)
    np.testing.assert_allclose(fn(x).numpy(), op.adjoint(op.forward(x)).numpy(), atol=1e-6)


def test_poisson_noise_has_variance_equal_to_mean_in_photon_units():
    photons, level = 200.0, 0.4  # expected counts 80 per pixel
    sensed = tf.fill([4, 100, 100, 1], level)
    noisy = add_noise(sensed, photons, 0.0, seed=7).numpy()
    counts = noisy * photons
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)  # whole photons
    # 40000 samples of Poisson(80): mean to ~0.05, variance to ~0.6 (1 sigma).
    assert abs(counts.mean() - 80.0) < 0.5
    assert abs(counts.var() / counts.mean() - 1.0) < 0.05
    np.testing.assert_array_equal(noisy, add_noise(sensed, photons, 0.0, seed=7).numpy())
    assert not np.array_equal(noisy, add_noise(sensed, photons, 0.0, seed=8).numpy())
    assert not np.array_equal(noisy, add_noise(sensed, photons, 0.0, seed=[7, 1]).numpy())


def test_gaussian_read_noise_has_the_requested_std_and_zero_disables_noise():
    sensed = tf.fill([2, 200, 100, 1], 1.5)
    noisy = add_noise(sensed, 0.0, 0.05, seed=1).numpy()
    assert abs(noisy.mean() - 1.5) < 0.002
    assert abs(noisy.std() / 0.05 - 1.0) < 0.02
    np.testing.assert_array_equal(add_noise(sensed, 0.0, 0.0, seed=1).numpy(), sensed.numpy())
    both = add_noise(sensed, 100.0, 0.05, seed=1).numpy()  # variances add: 1.5/100 + 0.05²
    assert abs(both.var() / (1.5 / 100 + 0.05**2) - 1.0) < 0.05
    with pytest.raises(ConfigError, match="photons"):
        add_noise(sensed, -1.0, 0.0, seed=0)
    with pytest.raises(ConfigError, match="read_noise"):
        add_noise(sensed, 0.0, -0.1, seed=0)
