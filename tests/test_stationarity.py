"""The stationarity term of the video trainer (`--stationarity_weight`, `latent_step_stationarity`).

Checked: the penalty is the squared coefficient of variation over time of the batch-mean latent step (0 for
a constant mean step at any speed, scale-free); its objective term's gradient is the penalty's; on two
replicas fed very different halves it is the one-replica value and gradient, where each replica's own means
give another number; minimising it alone stops a clock (an oscillating step size) without slowing down; in
a video step it is logged, the same on one and two replicas; bad settings are refused by name."""
import numpy as np
import pytest
import tensorflow as tf
from conftest import mirrored_strategy, video_step_on_one_and_two_replicas

from tfvidgan.errors import ConfigError
from tfvidgan.training.video_task import VideoGanConfig, latent_step_stationarity


def _walk(step_sizes, dim=4, batch=3, seed=0):
    """`[batch, T + 1, dim]` random walks whose step t has length `step_sizes[t]` (float32)."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(batch, len(step_sizes), dim))
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    steps = directions * np.asarray(step_sizes)[None, :, None]
    start = rng.normal(size=(batch, 1, dim))
    return np.concatenate([start, start + np.cumsum(steps, axis=1)], axis=1).astype(np.float32)


def _penalty_numpy(latents):
    steps = np.linalg.norm(np.diff(latents.astype(np.float64), axis=1), axis=-1)   # [b, T]
    m = steps.mean(axis=0)
    return float(np.mean((m / m.mean() - 1.0) ** 2))


def test_constant_steps_cost_nothing_at_any_speed_and_a_clock_costs_its_squared_variation():
    t = np.arange(59)
    for speed in (0.2, 1.0, 3.0):
        out = latent_step_stationarity(tf.constant(_walk(np.full(59, speed))), 3, weight=2.0)
        assert float(out.penalty) < 1e-10 and abs(float(out.objective_term)) < 1e-9
    clock = 1.0 + 0.15 * np.sin(2 * np.pi * t / 60)
    latents = _walk(clock)
    out = latent_step_stationarity(tf.constant(latents), 3, weight=2.0)
    assert float(out.penalty) == pytest.approx(_penalty_numpy(latents), rel=1e-5)
    assert float(out.penalty) == pytest.approx(0.15 ** 2 / 2, rel=0.05)      # mean of sin² = 1/2
    assert float(out.objective_term) == pytest.approx(2.0 * float(out.penalty), rel=1e-6)
    scaled = latent_step_stationarity(tf.constant(4.0 * latents), 3, weight=2.0)
    assert float(scaled.penalty) == pytest.approx(float(out.penalty), rel=1e-5)   # scale-free


def test_the_objective_terms_gradient_is_the_penaltys():
    latents = tf.constant(_walk(1.0 + 0.3 * np.random.default_rng(2).uniform(size=9), seed=2))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(latents)
        term = latent_step_stationarity(latents, 3, weight=0.7).objective_term
        steps = tf.norm(latents[:, 1:] - latents[:, :-1], axis=-1)
        m = tf.reduce_mean(steps, axis=0)
        direct = 0.7 * tf.reduce_mean(tf.square(m / tf.reduce_mean(m) - 1.0))
    np.testing.assert_allclose(tape.gradient(term, latents).numpy(), tape.gradient(direct, latents).numpy(),
                               rtol=1e-4, atol=1e-7)


def test_exact_on_two_replicas_where_per_replica_means_are_not():
    rng = np.random.default_rng(1)
    t = np.arange(12)
    # Replica 0's rollouts speed up over time, replica 1's slow down: the global mean is nearly flat.
    base = np.concatenate([_walk(1.0 + 0.05 * t, batch=2, seed=3), _walk(1.55 - 0.05 * t, batch=2, seed=4)])
    wiggle = rng.normal(size=base.shape).astype(np.float32)
    weight = 0.9

    def one_replica():
        scale = tf.Variable(0.3)
        with tf.GradientTape() as tape:
            out = latent_step_stationarity(base + scale * wiggle, 4, weight)
        return float(out.objective_term), float(tape.gradient(out.objective_term, scale))
    one_value, one_gradient = one_replica()

    strategy = mirrored_strategy(("/cpu:0", "/cpu:1"))
    with strategy.scope():
        scale = tf.Variable(0.3)
    halves = [strategy.experimental_distribute_values_from_function(
        lambda context, x=x: tf.constant(x[2 * context.replica_id_in_sync_group:][:2])) for x in (base, wiggle)]

    @tf.function
    def step(b, w):
        def replica_fn(b, w):
            with tf.GradientTape() as tape:
                out = latent_step_stationarity(b + scale * w, 4, weight)
            steps = tf.norm((b + scale * w)[:, 1:] - (b + scale * w)[:, :-1], axis=-1)
            own = tf.reduce_mean(steps, axis=0)        # the mutant: this replica's own means
            mutant = weight * tf.reduce_mean(tf.square(own / tf.reduce_mean(own) - 1.0)) / 2
            return out.objective_term, tape.gradient(out.objective_term, scale), mutant
        return strategy.run(replica_fn, args=(b, w))

    terms, gradients, mutants = step(*halves)
    total = lambda x: float(strategy.reduce(tf.distribute.ReduceOp.SUM, x, axis=None))  # noqa: E731
    assert total(terms) == pytest.approx(one_value, rel=1e-5)
    assert total(gradients) == pytest.approx(one_gradient, rel=1e-4)
    assert abs(total(mutants) - one_value) > 0.5 * one_value


def test_minimising_it_stops_a_clock_without_slowing_down():
    """A toy rollout whose step size oscillates (amplitude b) around a (trainable both): SGD on the term
    alone takes b to 0 and leaves a where it was (the term is scale-free)."""
    rng = np.random.default_rng(5)
    directions = rng.normal(size=(8, 59, 6))
    directions = tf.constant(directions / np.linalg.norm(directions, axis=-1, keepdims=True), tf.float32)
    phase = tf.constant(np.sin(2 * np.pi * np.arange(59) / 60), tf.float32)
    a, b = tf.Variable(1.2), tf.Variable(0.3)
    optimizer = tf.keras.optimizers.SGD(0.5)
    first = None
    for _ in range(100):
        with tf.GradientTape() as tape:
            sizes = a * (1.0 + b * phase)
            latents = tf.concat([tf.zeros([8, 1, 6]), tf.cumsum(directions * sizes[None, :, None], axis=1)], 1)
            out = latent_step_stationarity(latents, 8, weight=1.0)
        first = float(out.penalty) if first is None else first
        optimizer.apply_gradients(zip(tape.gradient(out.objective_term, [a, b]), [a, b]))
    print(f"\npenalty {first:.4f} -> {float(out.penalty):.2e}; b 0.3 -> {float(b):.4f}; a 1.2 -> {float(a):.4f}")
    assert first > 0.04 and float(out.penalty) < 1e-4 * first
    assert abs(float(b)) < 0.01 and float(a) == pytest.approx(1.2, abs=1e-4)


def test_a_video_step_logs_it_the_same_on_one_and_two_replicas(tmp_path):
    one, two = video_step_on_one_and_two_replicas(tmp_path, stationarity_weight=3.0, stationarity_length=12)
    assert one["stationarity_penalty"] > 0
    np.testing.assert_allclose(two["stationarity_penalty"], one["stationarity_penalty"], rtol=1e-4)
    np.testing.assert_allclose(two["g_regularizer"], one["g_regularizer"], rtol=1e-4)
    assert one["g_regularizer"] == pytest.approx(3.0 * one["stationarity_penalty"], rel=1e-4)


@pytest.mark.parametrize("field,value,flag", [("stationarity_weight", -1.0, "--stationarity_weight"),
                                              ("stationarity_length", 2, "--stationarity_length")])
def test_bad_settings_are_refused_by_name(field, value, flag):
    with pytest.raises(ConfigError, match=flag):
        VideoGanConfig(frames_generator="x", **{"stationarity_weight": 1.0, field: value})
