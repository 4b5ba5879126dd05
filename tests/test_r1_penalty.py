"""R1 gradient penalty (`--r1_weight`): discriminator k's squared gradient norm w.r.t. its own projected input.

Checked against a per-example, per-discriminator loop of gradients; quadratic in the logits' scale; added to
the discriminators' loss with weight γ/2; reported as `r1_penalty` by the loop and by Keras `fit`; the same
value on 1 and 2 replicas; refused by name for a model without a projection."""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import mirrored_strategy

from tfvidgan.errors import ConfigError
from tfvidgan.models.ensemble_discriminator import (
    build_frame_discriminators,
    build_video_discriminators,
    split_at_projection,
)
from tfvidgan.training import adversarial
from tfvidgan.training.adversarial import AdversarialConfig, _logits_and_r1


def _reference_r1(model, x):
    """[b, K]: ||∂ logit[i, k] / ∂ projected||², one gradient per example and discriminator."""
    front, trunk, k = split_at_projection(model)
    projected = front(x, training=False)

    @tf.function  # graph mode: the eager gradient of a Keras Conv3D crashes in TF 2.21 (no data_format)
    def norm(i, j):
        with tf.GradientTape() as tape:
            tape.watch(projected)
            logit = tf.reshape(trunk(projected, training=False), [x.shape[0], -1])[i, j]
        return tf.reduce_sum(tf.square(tape.gradient(logit, projected)))

    return np.array([[float(norm(tf.constant(i), tf.constant(j))) for j in range(k)] for i in range(x.shape[0])])


@pytest.mark.parametrize("kind", ["frames", "clips_and_differences"])
def test_r1_is_each_discriminators_own_gradient_norm(kind):
    keras.utils.set_random_seed(0)
    if kind == "frames":
        model = build_frame_discriminators((32, 32, 1), 3, base_filters=4, normalization="none")
        x = tf.random.uniform([3, 32, 32, 1], -1, 1)
    else:
        model = build_video_discriminators((8, 32, 32, 1), 3, base_filters=2, normalization="none",
                                           inputs="clips_and_differences")
        x = tf.random.uniform([3, 8, 32, 32, 1], -1, 1)
    fake = tf.random.uniform(x.shape, -1, 1)
    for joint in (False, True):
        real_logits, fake_logits, r1 = tf.function(lambda: _logits_and_r1(model, x, fake, joint))()
        reference = _reference_r1(model, x)
        assert r1.shape == (3, 3) and np.all(reference > 0)
        np.testing.assert_allclose(r1.numpy(), reference, rtol=1e-4)
        np.testing.assert_allclose(real_logits.numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(fake_logits.numpy(), model(fake).numpy(), rtol=1e-5, atol=1e-6)


def test_r1_is_quadratic_in_the_logit_scale_and_enters_the_loss_with_half_gamma():
    keras.utils.set_random_seed(1)
    model = build_frame_discriminators((32, 32, 1), 2, base_filters=4, normalization="none")
    real = tf.random.uniform([4, 32, 32, 1], -1, 1)
    fake = tf.random.uniform([4, 32, 32, 1], -1, 1)
    _, _, before = _logits_and_r1(model, real, fake, False)
    kernel = next(v for v in model.trainable_variables if v.path.endswith("logits_conv/kernel"))
    kernel.assign(kernel * 3.0)
    _, _, after = _logits_and_r1(model, real, fake, False)
    np.testing.assert_allclose(after.numpy(), 9.0 * before.numpy(), rtol=1e-4)

    def step(r1_weight):
        d = keras.models.clone_model(model)
        d.set_weights(model.get_weights())
        optimizer = keras.optimizers.SGD(0.0)  # losses only: the weights stay
        optimizer.build(d.trainable_variables)
        out = adversarial.train_step(real=real, generate=lambda s: (fake, None), discriminator=d,
                                     d_optimizer=optimizer, generator_updates=[],
                                     config=AdversarialConfig(r1_weight=r1_weight))
        return out

    plain, penalised = step(0.0), step(10.0)
    assert plain.r1_penalty is None and "r1_penalty" not in plain.as_dict()
    expected_penalty = float(tf.reduce_sum(after)) / 4
    assert float(penalised.r1_penalty) == pytest.approx(expected_penalty, rel=1e-4)
    assert float(penalised.d_loss) == pytest.approx(float(plain.d_loss) + 5.0 * expected_penalty, rel=1e-4)
    with pytest.raises(ConfigError, match="--r1_weight"):
        AdversarialConfig(r1_weight=-1.0)


def test_r1_on_two_replicas_is_the_single_replica_value():
    keras.utils.set_random_seed(2)
    two, one = mirrored_strategy(("/cpu:0", "/cpu:1")), mirrored_strategy(("/cpu:0",))
    models = {}
    for name, strategy in (("two", two), ("one", one)):
        with strategy.scope():
            models[name] = build_frame_discriminators((32, 32, 1), 3, base_filters=4, normalization="sync_batch")
    models["one"].set_weights(models["two"].get_weights())
    real = tf.random.uniform([4, 32, 32, 1], -1, 1)
    fake = tf.random.uniform([4, 32, 32, 1], -1, 1)

    def r1_of(strategy, model, per_replica):
        inputs = strategy.experimental_distribute_values_from_function(
            lambda ctx: (real[per_replica * ctx.replica_id_in_sync_group:][:per_replica],
                         fake[per_replica * ctx.replica_id_in_sync_group:][:per_replica]))
        step = tf.function(lambda p: strategy.run(lambda q: _logits_and_r1(model, q[0], q[1], True)[2], args=(p,)))
        return np.concatenate([v.numpy() for v in strategy.experimental_local_results(step(inputs))])

    halves, whole = r1_of(two, models["two"], 2), r1_of(one, models["one"], 4)
    assert halves.shape == whole.shape == (4, 3)
    # Sync batch norm normalises over the global batch, so even the per-example gradients agree.
    np.testing.assert_allclose(halves, whole, rtol=1e-4)


def test_r1_names_a_model_without_projection_and_is_logged_by_fit(tmp_path):
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="no_projection")
    with pytest.raises(ConfigError, match="'no_projection' is not a projected discriminator ensemble"):
        split_at_projection(plain)
    from tfvidgan.keras_models import FramesGAN
    from tfvidgan.training.frames_task import FramesGanConfig
    config = FramesGanConfig(image_size=32, channels=1, latent_dim=4, generator_filters=4, num_discriminators=2,
                             discriminator_filters=2, ema_beta=0.0)
    gan = FramesGAN(config)
    gan.compile(r1_weight=1.0)
    frames = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 1)).astype(np.float32)
    history = gan.fit(tf.data.Dataset.from_tensor_slices(frames).batch(2, drop_remainder=True), verbose=0)
    assert history.history["r1_penalty"][0] > 0
    assert dataclasses.replace(gan.config.adversarial).r1_weight == 1.0
