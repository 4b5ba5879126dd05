"""Tests for tfvidgan.models.projection.RandomProjection."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvidgan.errors import ConfigError
from tfvidgan.models.projection import RandomProjection, projected_size


def _built(num_projections, channels, seed=0, size=16):
    layer = RandomProjection(num_projections, seed=seed)
    layer.build((None, size, size, channels))
    return layer


def _numpy_projection(images, kernel, stride=2, padding=3):
    """Direct definition: zero-pad, then correlate each kernel with stride-spaced patches."""
    batch, height, width, _ = images.shape
    ks = kernel.shape[0]
    padded = np.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    out_h = (height + 2 * padding - ks) // stride + 1
    out_w = (width + 2 * padding - ks) // stride + 1
    out = np.zeros((batch, out_h, out_w, kernel.shape[-1]), np.float64)
    for i in range(out_h):
        for j in range(out_w):
            patch = padded[:, i * stride : i * stride + ks, j * stride : j * stride + ks, :]
            out[:, i, j, :] = np.einsum("bhwc,hwck->bk", patch, kernel)
    return out


def test_output_shape_64x64x3_to_32x32xk():
    layer = RandomProjection(5)
    images = tf.random.uniform((2, 64, 64, 3), -1.0, 1.0)
    assert tuple(layer(images).shape) == (2, 32, 32, 5)
    assert tuple(layer.kernel.shape) == (8, 8, 3, 5)
    assert [projected_size(s) for s in (64, 32, 30)] == [32, 16, 15]
    assert tuple(RandomProjection(4)(tf.zeros((1, 30, 30, 1))).shape) == (1, 15, 15, 4)


def test_matches_direct_padded_strided_correlation():
    rng = np.random.default_rng(3)
    images = rng.uniform(-1, 1, (2, 12, 10, 2)).astype(np.float32)
    layer = RandomProjection(3, seed=11)
    out = layer(images).numpy()
    expected = _numpy_projection(images.astype(np.float64), layer.kernel.numpy().astype(np.float64))
    assert out.shape == expected.shape == (2, 6, 5, 3)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_filters_have_unit_l2_norm():
    kernel = _built(7, 3).kernel.numpy()
    norms = np.sqrt(np.sum(kernel.astype(np.float64) ** 2, axis=(0, 1, 2)))
    np.testing.assert_allclose(norms, np.ones(7), rtol=1e-6)


def test_reproducible_from_seed_independent_of_tf_global_seed():
    keras.utils.set_random_seed(1)
    first = _built(4, 2, seed=42).kernel.numpy()
    keras.utils.set_random_seed(999)
    tf.random.uniform(())  # advance global generators
    second = _built(4, 2, seed=42).kernel.numpy()
    np.testing.assert_array_equal(first, second)


def test_different_seeds_give_different_filters():
    a = _built(4, 2, seed=0).kernel.numpy()
    b = _built(4, 2, seed=1).kernel.numpy()
    assert np.max(np.abs(a - b)) > 0.05
    # Within one layer the K filters are distinct (nearly uncorrelated) too.
    correlation = np.corrcoef(a.reshape(-1, 4).T)
    assert np.max(np.abs(correlation[~np.eye(4, dtype=bool)])) < 0.9


def test_kernel_is_non_trainable():
    layer = _built(3, 1)
    assert layer.trainable_weights == []
    assert len(layer.non_trainable_weights) == 1
    inputs = keras.Input((16, 16, 1))
    projection = RandomProjection(3)
    model = keras.Model(inputs, keras.layers.Dense(2)(projection(inputs)))
    assert len(model.trainable_variables) == 2  # the Dense kernel and bias only
    assert all(v is not projection.kernel for v in model.trainable_variables)
    assert any(v is projection.kernel for v in model.non_trainable_variables)


def test_kernel_survives_checkpoint_restore(tmp_path):
    source = _built(3, 2, seed=5)
    path = tf.train.Checkpoint(projection=source).save(str(tmp_path / "ckpt"))
    target = _built(3, 2, seed=6)
    assert not np.allclose(source.kernel.numpy(), target.kernel.numpy())
    tf.train.Checkpoint(projection=target).restore(path).assert_consumed()
    np.testing.assert_array_equal(source.kernel.numpy(), target.kernel.numpy())


def test_get_config_round_trip():
    layer = RandomProjection(6, kernel_size=4, stride=1, padding=2, seed=9, name="proj")
    clone = RandomProjection.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    x = tf.random.uniform((1, 9, 9, 2))
    np.testing.assert_array_equal(layer(x).numpy(), clone(x).numpy())
    assert tuple(layer(x).shape) == (1, 10, 10, 6)  # (9 + 4 - 4) // 1 + 1


def test_clips_are_projected_frame_by_frame():
    layer = RandomProjection(3, seed=2)
    clips = tf.random.uniform((2, 5, 16, 16, 1), -1.0, 1.0)
    out = layer(clips)
    assert tuple(out.shape) == (2, 5, 8, 8, 3)
    for b in range(2):
        for t in range(5):
            np.testing.assert_allclose(out[b, t].numpy(), layer(clips[b : b + 1, t])[0].numpy(), atol=1e-6)


@pytest.mark.parametrize("field,kwargs", [("num_projections", dict(num_projections=0)), ("stride", dict(num_projections=2, stride=0))])
def test_bad_config_raises_config_error_naming_field(field, kwargs):
    with pytest.raises(ConfigError, match=field):
        RandomProjection(**kwargs)
