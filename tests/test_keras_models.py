"""Keras-native GANs (tfvidgan.keras_models): fit() runs the task's own train_step, so it ends at the same
weights as the custom loop on the same data and seeds — on one device and on two replicas (two logical
CPU devices, tests/conftest.py) — plus compile() mapping, trackers, views, save/load, callbacks, errors.

Equivalence tolerance: max |w_fit − w_loop| ≤ 1e-5 over every weight (generator, discriminators, EMA
shadow) after 3 SGD steps (learning rate 0.5, normalization "none": per-replica batch norm is a different
computation by design). Measured values are printed (run with -s).
"""
import dataclasses
import functools
import json
import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvidgan.errors import ConfigError
from tfvidgan.keras_models import DiscriminatorView, FramesGAN
from tfvidgan.training import loop
from tfvidgan.training.adversarial import AdversarialConfig
from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 1e-5
GLOBAL_BATCH = 8
STEPS = 3
FRAMES = FramesGanConfig(image_size=32, channels=1, latent_dim=6, generator_filters=8,
                         generator_normalization="none", num_discriminators=3, discriminator_filters=4,
                         discriminator_normalization="none", num_sample_images=4, ema_beta=0.9,
                         adversarial=AdversarialConfig(combiner="gman"))


@functools.lru_cache(maxsize=None)
def _strategy(devices):
    # One strategy per device set per process (collective keys of two strategies over the same devices collide).
    return tf.distribute.MirroredStrategy(list(devices))


def _frames(n=GLOBAL_BATCH * STEPS, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.uniform(-1, 1, size=(n, 32, 32, 1)).astype(np.float32)
    frames[: n // 2] = np.clip(frames[: n // 2] * 0.1 - 0.9, -1, 1)  # halves differ: per-replica ≠ global
    return frames


def _weights(task):
    models = [task.generator, task.discriminators] + ([task.ema.shadow] if task.ema is not None else [])
    return [v.numpy() for m in models for v in m.weights]


def _max_difference(a, b):
    assert len(a) == len(b)
    return max(float(np.max(np.abs(x.astype(np.float64) - y))) for x, y in zip(a, b, strict=True))


class _LoopSgdTask(FramesGanTask):
    """The loop's task with SGD and given initial weights (those of the fit model)."""

    def __init__(self, config, initial):
        super().__init__(config)
        self.initial = initial

    def build(self):
        super().build()
        self.g_optimizer = keras.optimizers.SGD(learning_rate=0.5)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer = keras.optimizers.SGD(learning_rate=0.5)
        self.d_optimizer.build(self.discriminators.trainable_variables)
        for v, value in zip(self.generator.weights + self.discriminators.weights, self.initial, strict=True):
            v.assign(value)
        self.ema.copy_from_model()


def _fit_frames(strategy, frames, config=FRAMES):
    keras.utils.set_random_seed(5)
    scope = strategy.scope() if strategy is not None else tf.distribute.get_strategy().scope()
    with scope:
        gan = FramesGAN(config)
        gan.compile(generator_optimizer=keras.optimizers.SGD(learning_rate=0.5),
                    discriminator_optimizer=keras.optimizers.SGD(learning_rate=0.5))
    initial = [v.numpy() for v in gan.generator.weights + gan.ensemble.weights]
    dataset = tf.data.Dataset.from_tensor_slices(frames).batch(GLOBAL_BATCH, drop_remainder=True)
    history = gan.fit(dataset, epochs=1, verbose=0)
    return gan, initial, history


def _loop_frames(strategy, frames, initial, model_dir, config=FRAMES):
    replicas = strategy.num_replicas_in_sync

    def dataset_fn(context, start_step):  # per-replica batches, replica r takes element r of each group
        return tf.data.Dataset.from_tensor_slices(frames).batch(GLOBAL_BATCH // replicas, drop_remainder=True)

    task = _LoopSgdTask(config, initial)
    result = loop.run_training(task, dataset_fn, strategy, loop.LoopConfig(
        model_dir=str(model_dir), train_steps=STEPS, export=False, log_every=STEPS))
    return task, result


@pytest.mark.parametrize("devices", [(), ("/cpu:0", "/cpu:1")], ids=["one_device", "two_replicas"])
def test_fit_ends_at_the_loops_weights(tmp_path, devices):
    frames = _frames()
    strategy = _strategy(devices) if devices else None
    gan, initial, history = _fit_frames(strategy, frames)
    assert int(gan.step.numpy()) == STEPS
    assert int(gan.task.g_optimizer.iterations.numpy()) == STEPS
    loop_strategy = strategy or _strategy(("/cpu:0",))
    task, result = _loop_frames(loop_strategy, frames, initial, tmp_path / "loop")
    assert result.final_step == STEPS
    fit_weights, loop_weights = _weights(gan.task), _weights(task)
    moved = _max_difference(fit_weights[:len(initial)], initial)
    difference = _max_difference(fit_weights, loop_weights)
    print(f"\n[{'x'.join(devices) or 'one device'}] fit vs loop: max |Δw| = {difference:.3g} "
          f"(weights moved by up to {moved:.3g})")
    assert moved > 1e-3  # the steps really trained
    assert difference <= TOLERANCE
    # EMA ran inside the shared step: the shadow lags the generator.
    ema_lag = _max_difference([v.numpy() for v in gan.generator_ema.weights], [v.numpy() for v in gan.generator.weights])
    assert ema_lag > 1e-4
    # The trackers hold global means; the last step's loss is the loop's last metric (same step, same value).
    logs = history.history
    assert set(logs) >= {"d_loss", "g_loss", "d_loss_000", "g_loss_002", "g_weight_001"}
    weights = [logs[f"g_weight_{k:03d}"][0] for k in range(3)]
    assert abs(sum(weights) - 1.0) < 1e-5  # GMAN weights of the GLOBAL losses sum to 1 (not 1/replicas)
    assert np.isfinite(logs["d_loss"][0])
