"""Tests for tfvidgan.losses: per-example GAN losses and the K-discriminator combiners."""

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from tfvidgan import losses
from tfvidgan.errors import ConfigError
from tfvidgan.training.adversarial import AdversarialConfig


def softplus(x):
    return math.log1p(math.exp(x))


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


# ----------------------------------------------------------------------------- per-example losses


def test_non_saturating_discriminator_loss_by_hand():
    real = np.array([[0.0, 2.0], [-1.0, 3.0]], np.float32)
    fake = np.array([[0.0, -1.0], [0.5, -4.0]], np.float32)
    got = losses.discriminator_loss(real, fake, "non_saturating").numpy()
    expected = [[-math.log(sigmoid(r)) - math.log(1.0 - sigmoid(f)) for r, f in zip(rr, ff)] for rr, ff in zip(real, fake)]
    assert got.shape == (2, 2) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got[0, 0] == pytest.approx(2.0 * math.log(2.0), rel=1e-6)  # D undecided: log 2 + log 2
    # Same as binary cross-entropy with labels 1 (real) and 0 (fake), without batch reduction.
    bce = tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(real), real) + tf.nn.sigmoid_cross_entropy_with_logits(
        tf.zeros_like(fake), fake
    )
    np.testing.assert_allclose(got, bce.numpy(), rtol=1e-6)


def test_hinge_discriminator_loss_by_hand():
    real = np.array([[0.5, 2.0, -1.0]], np.float32)
    fake = np.array([[-2.0, 0.5, 0.0]], np.float32)
    got = losses.discriminator_loss(real, fake, "hinge").numpy()
    # relu(1 - r) + relu(1 + f): (0.5 + 0), (0 + 1.5), (2 + 1)
    np.testing.assert_allclose(got, [[0.5, 1.5, 3.0]], rtol=1e-6)


def test_generator_losses_by_hand():
    fake = np.array([[0.0, 3.0, -2.0]], np.float32)
    ns = losses.generator_loss(fake, "non_saturating").numpy()
    np.testing.assert_allclose(ns, [[-math.log(sigmoid(f)) for f in fake[0]]], rtol=1e-6)
    np.testing.assert_allclose(ns, [[softplus(-f) for f in fake[0]]], rtol=1e-6)
    np.testing.assert_allclose(losses.generator_loss(fake, "hinge").numpy(), -fake, rtol=0)


def test_losses_keep_batch_and_discriminator_axes_and_accept_float16():
    logits = tf.random.normal((5, 3), seed=1)
    for kind in tuple(losses.LOSSES):
        assert losses.discriminator_loss(logits, logits, kind).shape == (5, 3)
        g16 = losses.generator_loss(tf.cast(logits, tf.float16), kind)
        assert g16.shape == (5, 3) and g16.dtype == tf.float32


def test_unknown_kind_and_method_raise_config_error():
    with pytest.raises(ConfigError, match=r"unknown loss kind 'wasserstein'; known: \('non_saturating', 'hinge'\)"):
        losses.discriminator_loss([[0.0]], [[0.0]], "wasserstein")
    with pytest.raises(ConfigError, match="unknown loss kind 'least_squares'"):
        losses.generator_loss([[0.0]], "least_squares")
    with pytest.raises(ConfigError, match=r"unknown combiner 'softmin'; known: \('mean', 'gman', 'hypervolume'\)"):
        losses.build_combiner("softmin")
    with pytest.raises(ConfigError, match=r"--combiner='max' is not one of \('mean', 'gman', 'hypervolume'\)"):
        AdversarialConfig(combiner="max")
    with pytest.raises(ConfigError, match=r"--loss='least_squares' is not one of \('non_saturating', 'hinge'\)"):
        AdversarialConfig(loss="least_squares")
    with pytest.raises(ConfigError, match="hypervolume_delta"):
        losses.build_combiner("hypervolume", delta=1.0).weights([1.0, 2.0])
    with pytest.raises(ConfigError, match="per_disc_loss"):
        losses.build_combiner("mean").weights([[1.0, 2.0]])


# ----------------------------------------------------------------------------- registries


def test_combiner_built_once_from_the_config_carries_its_parameters():
    gman = losses.make_combiner(AdversarialConfig(combiner="gman", gman_alpha=0.3))
    per_disc = np.array([0.5, 1.0, 2.0], np.float32)
    e = np.exp(0.3 * per_disc.astype(np.float64))
    np.testing.assert_allclose(gman.weights(per_disc).numpy(), e / e.sum(), rtol=1e-6)
    hv = losses.make_combiner(AdversarialConfig(combiner="hypervolume", hypervolume_delta=2.0,
                                                hypervolume_normalize=True))
    w = 1.0 / (2.0 * 2.0 - per_disc)
    np.testing.assert_allclose(hv.weights(per_disc).numpy(), w / w.sum(), rtol=1e-6)
    assert isinstance(losses.make_combiner(AdversarialConfig()), losses.MeanCombiner)


def test_a_registered_custom_combiner_and_loss_are_usable_from_the_config_and_the_step():
    """`@register_combiner` / `@register_loss` make a name valid in AdversarialConfig, and the GAN step uses them."""
    from tfvidgan.training import adversarial

    @losses.register_combiner("first_only")
    class FirstOnly(losses.Combiner):  # all weight on discriminator 0
        def _weights(self, per_disc):
            return tf.one_hot(0, tf.size(per_disc))

        def _value(self, per_disc):
            return per_disc[0]

    @losses.register_loss("linear")
    class Linear(losses.LossKind):
        @staticmethod
        def discriminator(real, fake):
            return fake - real

        @staticmethod
        def generator(fake):
            return -fake

    try:
        assert "first_only" in losses.COMBINERS and "linear" in losses.LOSSES
        with pytest.raises(ConfigError, match="combiner 'first_only' is already registered"):
            losses.register_combiner("first_only")(FirstOnly)
        config = AdversarialConfig(combiner="first_only", loss="linear")
        assert isinstance(losses.make_combiner(config), FirstOnly)
        # One step against K = 2 linear critics: the step's weights, value and D loss follow the custom parts.
        critic = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2, use_bias=False)])
        generator = tf.Variable([[0.5, -1.0, 2.0]] * 4)
        real = tf.ones([4, 3])
        out = adversarial.train_step(
            real=real, generate=lambda stream: (generator * 1.0, None), discriminator=critic,
            d_optimizer=tf.keras.optimizers.SGD(0.0), generator_updates=[(tf.keras.optimizers.SGD(0.0), [generator])],
            config=config)
        logits_fake = critic(generator).numpy()
        np.testing.assert_allclose(out.g_weight_per_discriminator.numpy(), [1.0, 0.0])
        np.testing.assert_allclose(out.g_loss.numpy(), -logits_fake[:, 0].mean(), rtol=1e-5)
        np.testing.assert_allclose(out.d_loss.numpy(), (logits_fake - critic(real).numpy()).mean(0).sum(), rtol=1e-5)
        assert out.generator_term is None and set(out.as_dict()) == {
            "d_loss", "g_loss", "per_discriminator/d_loss", "per_discriminator/g_loss", "per_discriminator/g_weight"}
    finally:
        del losses.COMBINERS["first_only"], losses.LOSSES["linear"]


def test_flag_choices_are_the_registries_keys():
    from absl import flags

    from tfvidgan import common_flags
    from tfvidgan.training.frames_task import FramesGanConfig
    values = flags.FlagValues()
    common_flags.define_config_flags(FramesGanConfig, common_flags.adversarial_flags(), values)
    assert values["loss"].parser.enum_values == list(losses.LOSSES)
    assert values["combiner"].parser.enum_values == list(losses.COMBINERS)


# ----------------------------------------------------------------------------- weights


def test_mean_weights():
    np.testing.assert_allclose(losses.build_combiner("mean").weights([0.3, 5.0, -1.0, 2.0]).numpy(), [0.25] * 4)


def test_gman_weights_softmax_sum_to_one_and_favor_larger_losses():
    per_disc = np.array([0.5, 1.0, 2.0], np.float32)
    w = losses.build_combiner("gman", alpha=0.8).weights(per_disc).numpy()
    e = np.exp(0.8 * per_disc.astype(np.float64))
    np.testing.assert_allclose(w, e / e.sum(), rtol=1e-6)
    assert w.sum() == pytest.approx(1.0, abs=1e-6)
    assert w[0] < w[1] < w[2]
    uniform = losses.build_combiner("gman", alpha=0.0).weights(per_disc).numpy()
    np.testing.assert_allclose(uniform, [1 / 3] * 3, rtol=1e-6)


def test_hypervolume_weights_for_positive_losses_follow_the_paper():
    per_disc = np.array([0.5, 1.0, 2.0], np.float32)
    w = losses.build_combiner("hypervolume", delta=1.5).weights(per_disc).numpy()
    nadir = 1.5 * 2.0  # all losses ≥ floor: no shift
    np.testing.assert_allclose(w, 1.0 / (nadir - per_disc), rtol=1e-6)
    assert w[0] < w[1] < w[2] and np.all(w > 0)
    normalized = losses.build_combiner("hypervolume", normalize=True).weights(per_disc).numpy()
    np.testing.assert_allclose(normalized, w / w.sum(), rtol=1e-6)


def test_hypervolume_is_well_defined_for_hinge_losses_below_zero():
    per_disc = np.array([-1.0, 0.0, 2.0], np.float32)
    w = losses.build_combiner("hypervolume", delta=1.5, floor=0.1).weights(per_disc).numpy()
    shifted = per_disc + (0.1 - (-1.0))  # documented shift: min becomes the floor
    expected = 1.0 / (1.5 * shifted.max() - shifted)
    np.testing.assert_allclose(w, expected, rtol=1e-6)
    assert np.all(np.isfinite(w)) and np.all(w > 0) and w[0] < w[1] < w[2]
    # All-equal, all-negative losses: equal, finite weights bounded by 1/((δ-1)·floor).
    equal = losses.build_combiner("hypervolume", delta=1.5).weights([-3.0, -3.0]).numpy()
    np.testing.assert_allclose(equal, [1.0 / (0.5 * 0.1)] * 2, rtol=1e-5)


def test_weights_carry_no_gradient():
    per_disc = tf.Variable([0.5, 1.0, 2.0])
    for method in tuple(losses.COMBINERS):
        with tf.GradientTape() as tape:
            w = losses.build_combiner(method).weights(per_disc)
        assert tape.gradient(w, per_disc) is None


# ----------------------------------------------------------------------------- exact gradients


def _toy_fake_logits(theta, x, projections):
    """Fake logits [B, K] of a toy 'generator' θ [3] judged by K fixed linear critics."""
    return tf.tanh(tf.einsum("bi,kij,j->bk", x, projections, theta)) * 3.0


def _reference_objective(per_disc, method, numpy_losses):
    """The papers' objectives written out independently, constants computed in numpy."""
    if method == "mean":
        return tf.reduce_mean(per_disc)
    if method == "gman":
        e = np.exp(0.8 * numpy_losses)
        return tf.reduce_sum(tf.constant(e / e.sum(), tf.float32) * per_disc)
    shift = max(0.0, 0.1 - numpy_losses.min())
    nadir = 1.5 * (numpy_losses + shift).max()
    return -tf.reduce_sum(tf.math.log(nadir - (per_disc + shift)))


@pytest.mark.parametrize("kind", tuple(losses.LOSSES))
@pytest.mark.parametrize("method", tuple(losses.COMBINERS))
def test_weighted_sum_of_gradients_equals_gradient_of_combined_objective(kind, method):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(6, 4)), tf.float32)
    projections = tf.constant(rng.normal(size=(5, 4, 3)), tf.float32)
    theta = tf.Variable(rng.normal(size=(3,)).astype(np.float32))

    with tf.GradientTape(persistent=True) as tape:
        per_example = losses.generator_loss(_toy_fake_logits(theta, x, projections), kind)  # [B, K]
        per_disc = tf.reduce_mean(per_example, axis=0)  # [K], the global-batch mean
        per_disc_terms = [per_disc[k] for k in range(5)]
        value = losses.build_combiner(method).value(per_disc)
        reference = _reference_objective(per_disc, method, per_disc.numpy().astype(np.float64))
    weights = losses.build_combiner(method).weights(per_disc)
    trainer_grad = sum(weights[k] * tape.gradient(per_disc_terms[k], theta) for k in range(5))

    np.testing.assert_allclose(trainer_grad.numpy(), tape.gradient(reference, theta).numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(trainer_grad.numpy(), tape.gradient(value, theta).numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(value.numpy(), reference.numpy(), rtol=1e-5, atol=1e-6)
    assert np.linalg.norm(trainer_grad.numpy()) > 1e-4  # non-degenerate toy problem


@pytest.mark.parametrize("method", tuple(losses.COMBINERS))
def test_combiner_is_exact_under_data_parallelism(method):
    """Two simulated replicas: all-reduced per-disc means → same weights → same summed gradient."""
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(8, 4)), tf.float32)
    projections = tf.constant(rng.normal(size=(3, 4, 3)), tf.float32)
    theta = tf.Variable(rng.normal(size=(3,)).astype(np.float32))
    global_batch = 8

    def replica_loss_parts(xs):
        per_example = losses.generator_loss(_toy_fake_logits(theta, xs, projections), "hinge")
        return tf.reduce_sum(per_example, axis=0) / global_batch  # this replica's share of the mean

    with tf.GradientTape() as tape:
        per_disc = tf.reduce_mean(losses.generator_loss(_toy_fake_logits(theta, x, projections), "hinge"), 0)
        single = tf.reduce_sum(losses.build_combiner(method).weights(per_disc) * per_disc)
    single_grad = tape.gradient(single, theta)

    shares = [replica_loss_parts(x[:4]), replica_loss_parts(x[4:])]
    all_reduced = shares[0] + shares[1]
    weights = losses.build_combiner(method).weights(all_reduced)
    replica_grads = []
    for xs in (x[:4], x[4:]):
        with tf.GradientTape() as tape:
            replica_objective = tf.reduce_sum(weights * replica_loss_parts(xs))
        replica_grads.append(tape.gradient(replica_objective, theta))
    np.testing.assert_allclose((replica_grads[0] + replica_grads[1]).numpy(), single_grad.numpy(), rtol=1e-5, atol=1e-6)


def test_a_step_without_generator_updates_runs_only_the_discriminator_half():
    """`generator_updates=[]` (discriminator refinement): the discriminators move exactly as in a full step
    from the same state, the generator is never called for its own update (stream 0), and nothing of the
    generator is reported."""
    from tfvidgan.training import adversarial

    def run(with_generator):
        tf.keras.utils.set_random_seed(0)
        critic = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2)])
        generator = tf.Variable([[0.5, -1.0, 2.0]] * 4)
        streams = []

        def generate(stream):
            streams.append(stream)
            return generator * 1.0, None
        updates = [(tf.keras.optimizers.SGD(0.1), [generator])] if with_generator else []
        out = adversarial.train_step(real=tf.ones([4, 3]), generate=generate, discriminator=critic,
                                     d_optimizer=tf.keras.optimizers.SGD(0.1), generator_updates=updates,
                                     config=AdversarialConfig(discriminator_steps=2))
        return out, [w.numpy() for w in critic.weights], streams

    full, full_weights, full_streams = run(True)
    only_d, d_weights, d_streams = run(False)
    for a, b in zip(full_weights, d_weights):
        np.testing.assert_array_equal(a, b)
    assert full_streams == [2, 3, 0] and d_streams == [2, 3]
    np.testing.assert_array_equal(full.d_loss.numpy(), only_d.d_loss.numpy())
    assert only_d.g_loss is None and only_d.g_weight_per_discriminator is None
    assert set(only_d.as_dict()) == {"d_loss", "per_discriminator/d_loss"}
