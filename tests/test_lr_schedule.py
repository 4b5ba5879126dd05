"""The cosine learning-rate schedule: its values, its checkpoints (interchangeable with constant-rate ones),
its flags and its errors."""
import math
import os

import numpy as np
import pytest
import tensorflow as tf

from tfvidgan import common_flags, train_reconstructor
from tfvidgan.errors import ConfigError
from tfvidgan.training.optimizers import OptimizerConfig, cosine_factor, make_optimizer
from tfvidgan.training.reconstruction_task import ReconstructionConfig


def _expected(base, step, decay_steps, final):
    step = min(step, decay_steps)
    return base * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * step / decay_steps)))


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
])
def test_bad_schedules_are_named(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        OptimizerConfig("adam", 1e-3, 0.9, **kwargs)


def test_schedule_flags_feed_the_config():
    from absl import flags

    values = flags.FlagValues()
    train_reconstructor.define_flags(values)
    values(["prog", "--data=d", "--model_dir=m", "--reconstructor_lr_schedule=cosine",
            "--reconstructor_lr_decay_steps=1200", "--reconstructor_lr_final_fraction=0.05"])
    kwargs = common_flags.config_kwargs(ReconstructionConfig, values, train_reconstructor.config_flags())
    config = ReconstructionConfig(num_frames=4, height=8, width=8, mask=np.ones((8, 8), np.float32), **kwargs)
    assert (config.optimizer.schedule, config.optimizer.decay_steps, config.optimizer.final_fraction) == (
        "cosine", 1200, 0.05)
    assert config.discriminator_optimizer.schedule == "constant"


def test_scheduled_optimizer_round_trips_through_keras_serialization():
    import keras

    optimizer = make_optimizer(OptimizerConfig("rmsprop", 3e-4, schedule="cosine", decay_steps=7, final_fraction=0.25))
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(again) is type(optimizer)
    assert (again.decay_steps, again.final_fraction) == (7, 0.25)
    assert float(again.learning_rate) == pytest.approx(3e-4)
