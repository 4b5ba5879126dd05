"""Reconstructor U-Net and critic: shapes, range, gradients, physics layer, mask saved with the model."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvidgan.cup.operator import CupOperator, make_mask
from tfvidgan.errors import ConfigError
from tfvidgan.models.reconstructor import build_reconstruction_critic, build_reconstructor


@pytest.mark.parametrize("size,frames", [(30, 4), (32, 3), (64, 2)])
def test_reconstructor_and_critic_shapes_range_and_finite_gradients(size, frames):
    mask = make_mask(size, size, seed=size)
    model = build_reconstructor(frames, size, size, mask, base_filters=4, depth=3)
    critic = build_reconstruction_critic(frames, size, size, base_filters=4)
    assert model.input.name == "sensed_image" and model.output_names == ["scene"]
    sensed = CupOperator(mask, frames).forward(tf.random.stateless_uniform([2, frames, size, size], seed=[0, size]))
    sensed = tf.concat([sensed, 50.0 * sensed], axis=0)  # also far outside the training range
    with tf.GradientTape(persistent=True) as tape:
        scene = model(sensed, training=True)
        logits = critic(scene, training=True)
        loss = tf.reduce_mean(tf.square(scene - 0.5))
        critic_loss = tf.reduce_mean(logits)
    assert scene.shape == (4, frames, size, size, 1)
    assert float(tf.reduce_min(scene)) >= 0.0 and float(tf.reduce_max(scene)) <= 1.0
    patches = -(-size // 8)
    assert logits.shape == (4, patches, patches, 1)
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None and bool(tf.reduce_all(tf.math.is_finite(g))) for g in grads)
    assert sum(float(tf.reduce_sum(tf.abs(g))) for g in grads) > 0
    critic_grads = tape.gradient(critic_loss, critic.trainable_weights)
    assert all(g is not None and bool(tf.reduce_all(tf.math.is_finite(g))) for g in critic_grads)


def test_physics_layer_is_the_normalised_adjoint_and_is_fixed():
    frames, height, width = 5, 12, 10
    mask = make_mask(height, width, seed=4)
    op = CupOperator(mask, frames)
    model = build_reconstructor(frames, height, width, mask, base_filters=4, depth=2)
    layer = model.get_layer("back_projection")
    sensed = op.forward(tf.random.stateless_uniform([3, frames, height, width], seed=[1, 1]))
    diag = op.aat_diagonal().numpy()[None]
    assert diag.min() == 0 < diag.max()  # both cases: pixels no open mask pixel reaches contribute 0
    expected = op.adjoint(np.divide(sensed.numpy(), diag, out=np.zeros_like(diag * sensed.numpy()), where=diag > 0))
    got = layer(sensed).numpy()
    assert got.shape == (3, height, width, frames)
    np.testing.assert_allclose(got, np.transpose(expected.numpy()[..., 0], (0, 2, 3, 1)), rtol=1e-6, atol=1e-6)
    assert [w.name for w in layer.weights] == ["mask"] and not layer.trainable_weights
    assert all("mask" not in w.path for w in model.trainable_weights)
    np.testing.assert_array_equal(layer.mask.numpy(), mask)


def test_mask_is_saved_and_restored_with_the_model(tmp_path):
    frames, size = 3, 16
    mask = make_mask(size, size, seed=9)
    model = build_reconstructor(frames, size, size, mask, base_filters=4, depth=2)
    path = str(tmp_path / "reconstructor.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_array_equal(restored.get_layer("back_projection").mask.numpy(), mask)
    sensed = tf.random.stateless_uniform([2, size + frames - 1, size, 1], seed=[2, 2], maxval=3.0)
    np.testing.assert_allclose(restored(sensed).numpy(), model(sensed).numpy(), atol=1e-6)
    # The mask really comes from the saved weights: a model with another mask disagrees until loaded.
    other = build_reconstructor(frames, size, size, make_mask(size, size, seed=10), base_filters=4, depth=2)
    assert not np.array_equal(other.get_layer("back_projection").mask.numpy(), mask)
    other.load_weights(path)
    np.testing.assert_array_equal(other.get_layer("back_projection").mask.numpy(), mask)


def test_bad_sizes_raise_config_errors():
    with pytest.raises(ConfigError, match="mask"):
        build_reconstructor(4, 16, 16, np.ones((16, 15), np.float32))
    with pytest.raises(ConfigError, match="depth"):
        build_reconstructor(4, 16, 16, np.ones((16, 16), np.float32), depth=0)
    with pytest.raises(ConfigError, match="num_frames"):
        build_reconstruction_critic(0, 16, 16)
