"""The cosine learning-rate schedule (also after a constant phase, `decay_start`): its values, its checkpoints
(interchangeable with constant-rate ones), its flags and its errors; and the gradient clip on the global norm
of the gradients summed over replicas (`clip_norm`): 2 replicas clip what 1 replica clips."""
import math
import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import mirrored_strategy

from tfvidgan import common_flags, train_reconstructor
from tfvidgan.errors import ConfigError
from tfvidgan.training.optimizers import (
    OptimizerConfig,
    clip_global_norm_across_replicas,
    cosine_factor,
    make_optimizer,
)
from tfvidgan.training.reconstruction_task import ReconstructionConfig


def _expected(base, step, decay_steps, final, start=0):
    progress = min(max(step - start, 0) / (decay_steps - start), 1.0)
    return base * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress)))


@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_cosine_rate_follows_the_curve_and_the_updates_use_it(name):
    variables = [tf.Variable(np.zeros(2, np.float32))]
    optimizer = make_optimizer(OptimizerConfig(name, 1e-2, 0.9, schedule="cosine", decay_steps=4,
                                               final_fraction=0.1), variables)
    plain_variables = [tf.Variable(np.zeros(2, np.float32))]
    for step in range(6):
        rate = float(optimizer.learning_rate)
        assert rate == pytest.approx(_expected(1e-2, step, 4, 0.1), rel=1e-6)
        # The step this rate makes equals a constant-rate optimizer's step at that rate from the same state.
        plain = make_optimizer(OptimizerConfig(name, rate, 0.9), plain_variables)
        for source, target in zip(optimizer.variables, plain.variables):
            if "learning_rate" not in target.path:
                target.assign(source)
        plain_variables[0].assign(variables[0])
        gradient = tf.constant([1.0, -2.0]) * (step + 1)
        optimizer.apply_gradients([(gradient, variables[0])])
        plain.apply_gradients([(gradient, plain_variables[0])])
        np.testing.assert_allclose(variables[0].numpy(), plain_variables[0].numpy(), rtol=1e-5, atol=1e-8)
    assert float(optimizer.learning_rate) == pytest.approx(1e-3, rel=1e-6)  # held at final_fraction · rate


def test_cosine_factor_endpoints():
    assert float(cosine_factor(0, 10, 0.0)) == pytest.approx(1.0)
    assert float(cosine_factor(5, 10, 0.0)) == pytest.approx(0.5)
    assert float(cosine_factor(10, 10, 0.2)) == pytest.approx(0.2)
    assert float(cosine_factor(50, 10, 0.2)) == pytest.approx(0.2)


def test_decay_start_holds_the_rate_then_decays_to_the_same_end():
    optimizer = make_optimizer(OptimizerConfig("adam", 1e-2, 0.9, schedule="cosine", decay_steps=8, decay_start=4,
                                               final_fraction=0.1), [tf.Variable(np.zeros(2, np.float32))])
    rates = []
    for step in range(10):
        optimizer.iterations.assign(step)
        rates.append(float(optimizer.learning_rate))
        assert rates[-1] == pytest.approx(_expected(1e-2, step, 8, 0.1, start=4), rel=1e-6)
    assert rates[:5] == pytest.approx([1e-2] * 5) and rates[6] == pytest.approx(1e-2 * (0.1 + 0.9 * 0.5))
    assert rates[8:] == pytest.approx([1e-3, 1e-3])
    assert float(cosine_factor(6, 8, 0.0, 4)) == pytest.approx(0.5)


def _clip_run(devices, clip_norm, steps=4):
    """Variables after `steps` Adam updates of a loss whose per-example gradients differ between the halves
    of the global batch (so clipping each replica's partial gradient would differ from clipping the sum)."""
    strategy = mirrored_strategy(devices) if devices else tf.distribute.get_strategy()
    examples = tf.constant([[8.0, -1.0], [0.5, 0.25], [-3.0, 6.0], [0.1, 0.2]])
    with strategy.scope():
        w = tf.Variable([1.0, -2.0])
        optimizer = make_optimizer(OptimizerConfig("adam", 0.1, 0.9, clip_norm=clip_norm), [w])
    dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(examples).repeat().unbatch().batch(4))

    @tf.function
    def step(batch, scale):
        def replica(x):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(x * w - 1.0) * scale) / 4.0   # mean over the GLOBAL batch
            optimizer.apply_gradients([(tape.gradient(loss, w), w)])
        strategy.run(replica, args=(batch,))

    iterator = iter(dataset)
    for i in range(steps):
        step(next(iterator), tf.constant([1.0, 0.05, 3.0, 0.5][i]))         # the clip engages on some steps only
    return w.numpy()


def test_clip_of_the_summed_gradient_is_the_same_on_one_and_two_replicas():
    one, two = _clip_run(None, 2.0), _clip_run(("/cpu:0", "/cpu:1"), 2.0)
    np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6)
    assert not np.allclose(one, _clip_run(None, 0.0), atol=1e-3)          # the clip changed the updates


def test_clip_function_sums_clips_and_divides_by_the_replicas():
    strategy = mirrored_strategy(("/cpu:0", "/cpu:1"))
    parts = [tf.constant([3.0, 0.0]), tf.constant([0.0, 4.0])]             # replica 0, replica 1

    def replica():
        index = tf.distribute.get_replica_context().replica_id_in_sync_group
        gradient = tf.where(index == 0, parts[0], parts[1])
        return clip_global_norm_across_replicas([gradient, None], 1.0)

    (gradients, norm) = strategy.run(replica)
    for value in strategy.experimental_local_results(gradients[0]):        # sum [3, 4], norm 5 → [0.6, 0.8] / 2
        np.testing.assert_allclose(value.numpy(), [0.3, 0.4], rtol=1e-6)
    assert gradients[1] is None
    assert [float(n) for n in strategy.experimental_local_results(norm)] == pytest.approx([5.0, 5.0])
    single, norm = clip_global_norm_across_replicas([tf.constant([3.0, 4.0])], 10.0)   # no strategy: unclipped
    np.testing.assert_allclose(single[0].numpy(), [3.0, 4.0])
    assert float(norm) == pytest.approx(5.0)


def test_checkpoints_load_across_schedules_and_resume_the_curve(tmp_path):
    variables = [tf.Variable(np.ones(3, np.float32))]
    constant = make_optimizer(OptimizerConfig("adam", 1e-3, 0.9), variables)
    for _ in range(3):
        constant.apply_gradients([(tf.ones(3), variables[0])])
    path = tf.train.Checkpoint(optimizer=constant).save(os.path.join(tmp_path, "constant"))
    cosine = make_optimizer(OptimizerConfig("adam", 1e-3, 0.9, schedule="cosine", decay_steps=10), variables)
    tf.train.Checkpoint(optimizer=cosine).restore(path).assert_consumed()
    assert int(cosine.iterations) == 3
    assert float(cosine.learning_rate) == pytest.approx(_expected(1e-3, 3, 10, 0.0), rel=1e-6)
    for a, b in zip(constant.variables, cosine.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    cosine.learning_rate = 2e-3  # what the loop does on a resume (the flags win): sets the base rate
    assert float(cosine.learning_rate) == pytest.approx(_expected(2e-3, 3, 10, 0.0), rel=1e-6)
    # And back: a cosine checkpoint loads into a constant-rate optimizer.
    cosine.apply_gradients([(tf.ones(3), variables[0])])
    path = tf.train.Checkpoint(optimizer=cosine).save(os.path.join(tmp_path, "cosine"))
    again = make_optimizer(OptimizerConfig("adam", 1e-3, 0.9), variables)
    tf.train.Checkpoint(optimizer=again).restore(path).assert_consumed()
    assert int(again.iterations) == 4 and float(again.learning_rate) == pytest.approx(2e-3)  # the base rate


@pytest.mark.parametrize("kwargs, words", [
    ({"schedule": "linear"}, "linear"),
    ({"schedule": "cosine"}, "_lr_decay_steps"),
    ({"schedule": "cosine", "decay_steps": 10, "final_fraction": 1.5}, "_lr_final_fraction"),
    ({"schedule": "cosine", "decay_steps": 10, "decay_start": 10}, "_lr_decay_start.*below decay_steps"),
    ({"decay_start": 5}, "_lr_decay_start.*cosine"),
    ({"clip_norm": -1.0}, "_clip_norm"),
    ({"clip_norm": float("nan")}, "_clip_norm"),
])
def test_bad_schedules_are_named(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        OptimizerConfig("adam", 1e-3, 0.9, **kwargs)


def test_schedule_flags_feed_the_config():
    from absl import flags

    values = flags.FlagValues()
    train_reconstructor.define_flags(values)
    values(["prog", "--data=d", "--model_dir=m", "--reconstructor_lr_schedule=cosine",
            "--reconstructor_lr_decay_steps=1200", "--reconstructor_lr_final_fraction=0.05",
            "--reconstructor_lr_decay_start=800", "--reconstructor_clip_norm=1.5"])
    kwargs = common_flags.config_kwargs(ReconstructionConfig, values, train_reconstructor.config_flags())
    config = ReconstructionConfig(num_frames=4, height=8, width=8, mask=np.ones((8, 8), np.float32), **kwargs)
    assert (config.optimizer.schedule, config.optimizer.decay_steps, config.optimizer.final_fraction) == (
        "cosine", 1200, 0.05)
    assert (config.optimizer.decay_start, config.optimizer.clip_norm) == (800, 1.5)
    assert config.discriminator_optimizer.schedule == "constant"


def test_scheduled_optimizer_round_trips_through_keras_serialization():
    import keras

    optimizer = make_optimizer(OptimizerConfig("rmsprop", 3e-4, schedule="cosine", decay_steps=7, final_fraction=0.25,
                                               decay_start=2, clip_norm=0.5))
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(again) is type(optimizer)
    assert (again.decay_steps, again.final_fraction, again.decay_start, again.clip_norm) == (7, 0.25, 2, 0.5)
    assert float(again.learning_rate) == pytest.approx(3e-4)
