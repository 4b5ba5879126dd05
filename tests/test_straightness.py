"""Latent-line straightness regulariser (`--straightness_weight`, tfvidgan.training.straightness).

Checked: the latent triples (middle = z, offsets ±δu with u a unit vector ⊥ z); the penalty is about 0 for
balls moving straight at any constant speed and large for a kink or a speed change; minimising it alone
straightens a toy generator whose ball moves on a curve, without stopping the ball; in the frames task it
enters the generator's objective only, is logged, and 1 and 2 replicas compute the same step; bad settings
are refused by name."""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import mirrored_strategy, step_both, tiny_frames_config

from tfvidgan.data.bouncing_balls import render
from tfvidgan.errors import ConfigError
from tfvidgan.training import loop
from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask
from tfvidgan.training.straightness import StraightnessRegularizer, as_clips, latent_triples


def _clip(positions):
    """One ball (radius 3) at `positions` `[3, 2]` (row, col) → `[1, 3, 32, 32, 1]` in [-1, 1]."""
    p = np.asarray(positions, np.float64)[None, :, None]
    return tf.constant(render(p, np.full((1, 1), 3.0), size=32).astype(np.float32) / 127.5 - 1.0)


def test_triples_step_both_ways_along_a_unit_direction_orthogonal_to_z():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 7)).astype(np.float32)
    d = rng.normal(size=(5, 7)).astype(np.float32)
    triples = latent_triples(z, d, 0.8).numpy()
    assert triples.shape == (15, 7)
    before, middle, after = np.split(triples, 3)
    np.testing.assert_allclose(middle, z, atol=1e-6)
    u = (after - middle) / 0.8
    np.testing.assert_allclose(middle - before, after - middle, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.sum(u * z, axis=1), 0.0, atol=1e-4)
    frames = tf.reshape(tf.range(15 * 2, dtype=tf.float32), [15, 1, 2, 1])
    clips = as_clips(frames).numpy()
    assert clips.shape == (5, 3, 1, 2, 1)
    np.testing.assert_array_equal(clips[2, :, 0, 0, 0], [4.0, 14.0, 24.0])   # rows 2, 7, 12 of the batch


def test_straight_motion_costs_nothing_at_any_speed_and_kinks_or_speed_changes_cost():
    regularizer = StraightnessRegularizer(weight=2.0)
    t = np.arange(3.0)
    values = {}
    for name, positions in {
        "still": np.stack([14 + 0 * t, 15 + 0 * t], -1),
        "slow": np.stack([12 + 0.3 * t, 14 + 0.2 * t], -1),
        "fast": np.stack([11 + 1.4 * t, 15 - 0.5 * t], -1),
        "kink": np.stack([12 + 0.9 * t, 14 + np.array([0.0, 0.5, 0.0])], -1),
        "speed_change": np.stack([12 + np.array([0.0, 0.4, 1.6]), 14 + 0 * t], -1),
    }.items():
        term, penalty = regularizer(_clip(positions))
        assert float(term) == pytest.approx(2.0 * float(penalty), rel=1e-6)
        values[name] = float(penalty)
    print(values)
    assert max(values["still"], values["slow"], values["fast"]) < 0.08     # anti-aliasing only
    assert values["kink"] > 0.8 and values["speed_change"] > 0.8


class _CurvedBall(keras.layers.Layer):
    """A toy generator: a Gaussian ball whose centre is c0 + A z + B z² (B bends straight latent lines)."""

    def build(self, input_shape):
        z = int(input_shape[-1])
        self.a = self.add_weight(shape=(z, 2), initializer=keras.initializers.Constant(1.0), name="a")
        self.b = self.add_weight(shape=(z, 2), initializer=keras.initializers.Constant(0.6), name="b")

    def call(self, z):
        centre = 16.0 + tf.matmul(z, self.a) + tf.matmul(tf.square(z), self.b)            # [b, 2]
        grid = tf.stack(tf.meshgrid(tf.range(32.0), tf.range(32.0), indexing="ij"), -1)  # [32, 32, 2]
        d2 = tf.reduce_sum(tf.square(grid[None] - centre[:, None, None]), -1)
        return (2.0 * tf.exp(-d2 / (2 * 1.6 ** 2)) - 1.0)[..., None]


def _curved_generator(latent_dim=2):
    z = keras.Input((latent_dim,))
    return keras.Model(z, _CurvedBall()(z))


def test_minimising_it_straightens_a_curved_generator_without_stopping_the_ball():
    generator = _curved_generator()
    regularizer = StraightnessRegularizer(weight=1.0, step=0.8)
    optimizer = keras.optimizers.SGD(0.05)
    rng = np.random.default_rng(1)
    z = tf.constant(rng.normal(size=(32, 2)) * 0.7, tf.float32)
    d = tf.constant(rng.normal(size=(32, 2)), tf.float32)
    first = None
    for _ in range(60):
        with tf.GradientTape() as tape:
            term, penalty = regularizer(as_clips(generator(latent_triples(z, d, 0.8))))
        first = float(penalty) if first is None else first
        grads = tape.gradient(term, generator.trainable_variables)
        optimizer.apply_gradients(zip(grads, generator.trainable_variables))
    layer = generator.layers[-1]
    print(f"\npenalty {first:.3f} -> {float(penalty):.3f}; |B| {np.abs(layer.b.numpy()).max():.3f}, "
          f"|A| {np.abs(layer.a.numpy()).min():.3f}")
    assert first > 0.2 and float(penalty) < 0.25 * first
    assert np.abs(layer.b.numpy()).max() < 0.3          # the bend (0.6) shrank
    assert np.abs(layer.a.numpy()).min() > 0.5          # the ball still moves along latent lines


def _task(config, generator=None):
    task = FramesGanTask(config)
    task.build()
    if generator is not None:
        task.generator = generator
    for name, variables in (("g_optimizer", task.generator.trainable_variables),
                            ("d_optimizer", task.discriminators.trainable_variables)):
        setattr(task, name, keras.optimizers.SGD(0.1))
        getattr(task, name).build(variables)
    return task


def test_the_term_enters_the_generators_objective_only_and_is_logged():
    config = tiny_frames_config(ema_beta=0.0, latent_dim=2, generator_normalization="none")
    keras.utils.set_random_seed(3)
    generator = _curved_generator()
    initial = [v.numpy() for v in generator.weights]
    plain = _task(config, generator)
    d_initial = [v.numpy() for v in plain.discriminators.weights]
    regularised = _task(dataclasses.replace(config, straightness_weight=100.0), _curved_generator())
    for v, value in zip(regularised.generator.weights, initial, strict=True):
        v.assign(value)
    for v, value in zip(regularised.discriminators.weights, d_initial, strict=True):
        v.assign(value)
    real = tf.constant(np.random.default_rng(4).uniform(-1, 1, (8, 32, 32, 1)), tf.float32)
    out_plain, out_reg, moved = step_both(plain, regularised, real)
    assert "straightness_penalty" not in out_plain and float(out_reg["straightness_penalty"]) > 0.1
    assert moved > 1e-3


def test_two_replicas_match_one_replica(tmp_path):
    """Per-replica shares of a global mean: a per-replica denominator would give another step here, where
    the two replicas' halves of the batch show different numbers of centred balls."""
    config = tiny_frames_config(ema_beta=0.0, latent_dim=2, generator_normalization="none",
                                straightness_weight=5.0)
    frames = np.random.default_rng(5).uniform(-1, 1, (8, 32, 32, 1)).astype(np.float32)
    results = {}
    for devices in (("/cpu:0",), ("/cpu:0", "/cpu:1")):
        real = frames.reshape(len(devices), 8 // len(devices), 32, 32, 1)

        def dataset_fn(context, start_step, real=real):
            return tf.data.Dataset.from_tensor_slices(real).repeat()

        keras.utils.set_random_seed(21)
        strategy = mirrored_strategy(devices)
        with strategy.scope():
            generator = _curved_generator()
        task = FramesGanTask(config)
        original_build = task.build

        def build(task=task, generator=generator, original_build=original_build):
            original_build()
            task.generator = generator
            task.g_optimizer = keras.optimizers.SGD(0.1)
            task.g_optimizer.build(generator.trainable_variables)
            task.d_optimizer = keras.optimizers.SGD(0.1)
            task.d_optimizer.build(task.discriminators.trainable_variables)
        task.build = build
        result = loop.run_training(task, dataset_fn, strategy, loop.LoopConfig(
            model_dir=str(tmp_path / f"r{len(devices)}"), train_steps=2, export=False, log_every=1))
        results[len(devices)] = (result.last_metrics, [v.numpy() for v in generator.trainable_weights])
    (m1, w1), (m2, w2) = results[1], results[2]
    assert m1["straightness_penalty"] > 0.05
    for name in ("straightness_penalty", "g_loss", "d_loss"):
        np.testing.assert_allclose(m2[name], m1[name], rtol=1e-4)
    for a, b in zip(w1, w2, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_with_path_length_too_the_generator_runs_once_per_update():
    """Batch norm's moving statistics move once per generator call in training mode: with path length on as
    well (its lengths taken through the straightness call), they end where straightness alone leaves them,
    and the update's fakes are the same frames. Two calls would move them twice."""
    config = tiny_frames_config(ema_beta=0.0, straightness_weight=1.0, generator_normalization="batch")
    keras.utils.set_random_seed(8)
    alone = _task(config)
    both = _task(dataclasses.replace(config, path_length_weight=1.0))
    for source, target in ((alone.generator, both.generator), (alone.discriminators, both.discriminators)):
        for v, w in zip(target.weights, source.weights, strict=True):
            v.assign(w)
    for task in (alone, both):
        task.g_optimizer = keras.optimizers.SGD(0.0)     # frozen weights: only the statistics can move
        task.g_optimizer.build(task.generator.trainable_variables)
    moving = [w.path for w in alone.generator.non_trainable_weights if "moving" in w.path]
    assert moving
    before = [w.numpy() for w in alone.generator.non_trainable_weights]
    real = tf.constant(np.random.default_rng(9).uniform(-1, 1, (4, 32, 32, 1)), tf.float32)
    step = tf.constant(0, tf.int64)
    out_alone, out_both = alone.train_step(real, step), both.train_step(real, step)
    assert "path_length_penalty" in out_both and "path_length_penalty" not in out_alone
    changed = 0
    for a, b, b0 in zip(alone.generator.non_trainable_weights, both.generator.non_trainable_weights, before,
                        strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-6, atol=1e-7)
        changed += not np.allclose(a.numpy(), b0)
    assert changed >= 2
    fakes = [t._generate_fn(4, step, training=False)(0)[0].numpy() for t in (alone, both)]
    np.testing.assert_allclose(fakes[1], fakes[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(float(out_both["straightness_penalty"]), float(out_alone["straightness_penalty"]),
                               rtol=1e-6)


@pytest.mark.parametrize("field,value,flag", [("straightness_weight", -1.0, "--straightness_weight"),
                                              ("straightness_weight", float("nan"), "--straightness_weight"),
                                              ("straightness_step", 0.0, "--straightness_step"),
                                              ("straightness_step", float("inf"), "--straightness_step")])
def test_bad_settings_are_refused_by_name(field, value, flag):
    with pytest.raises(ConfigError, match=flag):
        FramesGanConfig(**{field: value})
