"""Path-length regulariser (`--path_length_weight`, tfvidgan.training.path_length).

Checked: a_i = ||J_{z_i}ᵀ y_i|| against the closed form of a linear generator; the running mean's
arithmetic; the penalty pulls a linear generator's singular values together (towards an isometry up to
scale), which is what makes equal latent steps render equal changes; the frames task reports it, adds it
to the generator's objective only, checkpoints the running mean and resumes it; 1 and 2 replicas compute
the same step with synchronised batch norm (double backpropagation through the collectives); bad weights
are refused by name."""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import mirrored_strategy, step_both, tiny_frames_config

from tfvidgan.errors import ConfigError
from tfvidgan.training import loop
from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask
from tfvidgan.training.path_length import PATH_LENGTH_DECAY, PathLengthRegularizer, path_lengths


def _linear_generator(weights: np.ndarray, shape=(4, 4, 1)):
    """G(z) = reshape(z W): its Jacobian at every z is Wᵀ, so J_zᵀ y = W y."""
    z = keras.Input((weights.shape[0],))
    dense = keras.layers.Dense(weights.shape[1], use_bias=False)
    model = keras.Model(z, keras.layers.Reshape(shape)(dense(z)))
    dense.set_weights([weights])
    return model


def test_lengths_are_the_norms_of_the_jacobian_transpose_times_the_directions():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 16)).astype(np.float32)
    generator = _linear_generator(w)
    z = tf.constant(rng.normal(size=(5, 3)), tf.float32)
    y = tf.constant(rng.normal(size=(5, 4, 4, 1)), tf.float32)
    images, lengths = path_lengths(generator, z, y)
    np.testing.assert_allclose(images.numpy().reshape(5, 16), z.numpy() @ w, rtol=1e-5)
    expected = np.linalg.norm(y.numpy().reshape(5, 16) @ w.T, axis=1)
    np.testing.assert_allclose(lengths.numpy(), expected, rtol=1e-5)
    # A generator that is an isometry up to scale s has E a² = s² ||y||² whatever z: here W = s·Q.
    q, _ = np.linalg.qr(rng.normal(size=(16, 3)))
    iso = _linear_generator((2.5 * q.T).astype(np.float32))
    _, iso_lengths = path_lengths(iso, z, y)
    projected = np.linalg.norm(y.numpy().reshape(5, 16) @ q, axis=1)   # what the isometry keeps of y
    np.testing.assert_allclose(iso_lengths.numpy(), 2.5 * projected, rtol=1e-5)


def test_the_running_mean_moves_by_decay_towards_the_batch_mean_and_the_penalty_is_the_spread_about_it():
    regularizer = PathLengthRegularizer(weight=2.0)
    first = tf.constant([1.0, 3.0])
    term, penalty = regularizer(first, global_batch=2)
    mean_1 = PATH_LENGTH_DECAY * 2.0
    assert float(regularizer.mean.numpy()) == pytest.approx(mean_1)
    assert float(penalty) == pytest.approx(((1 - mean_1) ** 2 + (3 - mean_1) ** 2) / 2, rel=1e-6)
    assert float(term) == pytest.approx(2.0 * float(penalty))
    regularizer(tf.constant([5.0, 5.0]), global_batch=2)
    assert float(regularizer.mean.numpy()) == pytest.approx(mean_1 + PATH_LENGTH_DECAY * (5.0 - mean_1), rel=1e-6)


def test_the_penalty_gradient_pulls_singular_values_together():
    """Minimising the penalty alone (SGD) makes a linear generator closer to an isometry up to scale."""
    rng = np.random.default_rng(1)
    u, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    v, _ = np.linalg.qr(rng.normal(size=(16, 4)))
    w = (u @ np.diag([3.0, 1.5, 0.8, 0.3]) @ v.T).astype(np.float32)   # condition number 10
    generator = _linear_generator(w)
    regularizer = PathLengthRegularizer(weight=1.0, decay=1.0)    # ā = this batch's mean
    optimizer = keras.optimizers.SGD(0.3)
    for step in range(200):
        z = tf.constant(rng.normal(size=(64, 4)), tf.float32)
        y = tf.constant(rng.normal(size=(64, 4, 4, 1)) / 4.0, tf.float32)
        with tf.GradientTape() as tape:
            _, lengths = path_lengths(generator, z, y)
            term, _ = regularizer(lengths, global_batch=64)
        optimizer.apply_gradients(zip(tape.gradient(term, generator.trainable_variables),
                                      generator.trainable_variables))
    singular = np.linalg.svd(generator.trainable_variables[0].numpy(), compute_uv=False)
    print(f"\nsingular values 3.0/1.5/0.8/0.3 → {np.round(singular, 3)}")
    assert singular.max() / singular.min() < 3.0   # from 10
    assert singular.min() > 0.3                    # not collapsed to zero (the mean is not pulled down)


def _task(config, initial=None):
    task = FramesGanTask(config)
    task.build()
    for name, variables in (("g_optimizer", task.generator.trainable_variables),
                            ("d_optimizer", task.discriminators.trainable_variables)):
        setattr(task, name, keras.optimizers.SGD(1.0))   # updates proportional to the gradients
        getattr(task, name).build(variables)
    if initial is not None:
        for v, value in zip(task.generator.weights + task.discriminators.weights, initial, strict=True):
            v.assign(value)
    return task


def _run(config, model_dir, steps, strategy):
    frames = np.random.default_rng(0).uniform(-1, 1, size=(8, 32, 32, 1)).astype(np.float32)

    def dataset_fn(context, start_step):
        return tf.data.Dataset.from_tensor_slices(frames).batch(4, drop_remainder=True).repeat()

    keras.utils.set_random_seed(11)
    task = FramesGanTask(config)
    result = loop.run_training(task, dataset_fn, strategy, loop.LoopConfig(
        model_dir=str(model_dir), train_steps=steps, export=False, log_every=1, checkpoint_every=2))
    return task, result


def test_the_frames_task_reports_checkpoints_and_resumes_the_running_mean(tmp_path):
    config = tiny_frames_config(path_length_weight=2.0, ema_beta=0.0)
    strategy = mirrored_strategy(("/cpu:0",))
    task, result = _run(config, tmp_path / "straight", 4, strategy)
    metrics = result.last_metrics
    assert metrics["path_length_penalty"] > 0
    mean = float(task.path_length.mean.numpy())
    assert metrics["path_length_mean"] == pytest.approx(mean, rel=1e-6) and mean > 0
    # Stopped at 2 and resumed to 4: the same running mean and weights as the straight run.
    _run(config, tmp_path / "resumed", 2, strategy)
    resumed, _ = _run(config, tmp_path / "resumed", 4, strategy)
    assert float(resumed.path_length.mean.numpy()) == pytest.approx(mean, rel=1e-6)
    for a, b in zip(task.generator.weights, resumed.generator.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_the_term_enters_the_generators_objective_only():
    """Same initial weights and data, SGD, weight 0 vs 1e6: the discriminators' step is the same, the
    generator's differs. (An untrained generator hardly depends on z: a ≈ 5e-5, penalty ≈ 3e-9.)"""
    keras.utils.set_random_seed(3)
    plain = _task(tiny_frames_config(ema_beta=0.0, generator_normalization="none"))
    initial = [v.numpy() for v in plain.generator.weights + plain.discriminators.weights]
    regularised = _task(tiny_frames_config(ema_beta=0.0, generator_normalization="none",
                                           path_length_weight=1e6), initial)
    real = tf.constant(np.random.default_rng(4).uniform(-1, 1, (4, 32, 32, 1)), tf.float32)
    out_plain, out_reg, moved = step_both(plain, regularised, real)
    assert "path_length_penalty" not in out_plain and float(out_reg["path_length_penalty"]) > 0
    assert moved > 1e-4


def test_two_replicas_match_one_replica_with_sync_batch_norm(tmp_path):
    config = tiny_frames_config(path_length_weight=1.0, ema_beta=0.0, generator_normalization="sync_batch")
    frames = np.concatenate([np.full((4, 32, 32, 1), -0.9, np.float32),
                             np.random.default_rng(5).uniform(-1, 1, (4, 32, 32, 1)).astype(np.float32)])
    results = {}
    for devices in (("/cpu:0",), ("/cpu:0", "/cpu:1")):
        per_replica = 8 // len(devices)
        real = frames.reshape(len(devices), per_replica, 32, 32, 1)

        def dataset_fn(context, start_step, real=real):
            return tf.data.Dataset.from_tensor_slices(real).repeat()

        keras.utils.set_random_seed(21)
        task = FramesGanTask(dataclasses.replace(config))
        result = loop.run_training(task, dataset_fn, mirrored_strategy(devices), loop.LoopConfig(
            model_dir=str(tmp_path / f"r{len(devices)}"), train_steps=1, export=False, log_every=1))
        results[len(devices)] = (result.last_metrics, [v.numpy() for v in task.generator.trainable_weights])
    (m1, w1), (m2, w2) = results[1], results[2]
    for name in ("path_length_penalty", "path_length_mean", "g_loss"):
        np.testing.assert_allclose(m2[name], m1[name], rtol=1e-4)
    for a, b in zip(w1, w2, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("weight", [-1.0, float("nan"), float("inf")])
def test_bad_weights_are_refused_by_name(weight):
    with pytest.raises(ConfigError, match="--path_length_weight"):
        FramesGanConfig(path_length_weight=weight)
