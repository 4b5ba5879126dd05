"""Data parallelism is exact: one step on 2 replicas == one step on 1 replica with the same global batch.

Uses two logical CPU devices (tests/conftest.py). Also checks that replicas draw different latents and
that their draws together are exactly the single-replica draw.
"""
import dataclasses
import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvidgan.training import loop
from tfvidgan.training.adversarial import AdversarialConfig
from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask
from tfvidgan.training.noise import replica_normal

GLOBAL_BATCH = 8
SMALL = FramesGanConfig(image_size=32, channels=1, latent_dim=8, generator_filters=8,
                        num_discriminators=3, discriminator_filters=4, num_sample_images=4)


def _real_batch():
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, size=(GLOBAL_BATCH, 32, 32, 1)).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _strategy(devices):
    # One strategy per device set for the whole process: collective-op instance keys of two separate
    # MirroredStrategy objects over the same devices collide (as in real use, one strategy per process).
    return tf.distribute.MirroredStrategy(list(devices))


def _train_one_step(config, devices, tmp_path):
    strategy = _strategy(tuple(devices))
    replicas = len(devices)
    per_replica = GLOBAL_BATCH // replicas
    real = _real_batch().reshape(replicas, per_replica, 32, 32, 1)

    def dataset_fn(context, start_step):
        # One input pipeline feeds the replicas in turn: element r goes to replica r.
        return tf.data.Dataset.from_tensor_slices(real).repeat()

    keras.utils.set_random_seed(123)  # identical initial weights for both runs
    task = FramesGanTask(config)
    result = loop.run_training(task, dataset_fn, strategy, loop.LoopConfig(
        model_dir=str(tmp_path / f"run{replicas}"), train_steps=1, export=False))
    weights = [v.numpy() for v in task.generator.weights + task.discriminators.weights]
    return weights, result.last_metrics


@pytest.mark.parametrize("normalization,combiner", [("none", "mean"), ("sync_batch", "hypervolume"),
                                                     ("none", "gman")])
def test_two_replicas_match_one_replica(tmp_path, normalization, combiner):
    # Per-replica batch-norm statistics differ from global ones by design; "sync_batch" makes them global.
    config = dataclasses.replace(SMALL, generator_normalization=normalization,
                                 discriminator_normalization=normalization,
                                 adversarial=AdversarialConfig(combiner=combiner))
    one, metrics_one = _train_one_step(config, ["/cpu:0"], tmp_path)
    two, metrics_two = _train_one_step(config, ["/cpu:0", "/cpu:1"], tmp_path)
    assert len(one) == len(two)
    changed = 0
    for a, b in zip(one, two):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
    # The step really trained: compare against the untouched initialisation.
    keras.utils.set_random_seed(123)
    fresh = FramesGanTask(config)
    with _strategy(("/cpu:0",)).scope():
        fresh.build()
    for a, b in zip(one, [v.numpy() for v in fresh.generator.weights + fresh.discriminators.weights]):
        changed += int(not np.allclose(a, b))
    assert changed > 0.5 * len(one)
    for name in ("d_loss", "g_loss"):
        np.testing.assert_allclose(metrics_one[name], metrics_two[name], rtol=1e-4)
    np.testing.assert_allclose(metrics_one["per_discriminator/d_loss"], metrics_two["per_discriminator/d_loss"],
                               rtol=1e-4)


def test_replicas_draw_different_latents_that_tile_the_global_draw():
    strategy = _strategy(("/cpu:0", "/cpu:1"))
    per_replica = 4

    @tf.function
    def draw(step):
        return strategy.run(lambda: replica_normal(per_replica, [6], seed=7, step=step, stream=0))

    values = strategy.experimental_local_results(draw(tf.constant(3, tf.int64)))
    first, second = (v.numpy() for v in values)
    assert first.shape == second.shape == (per_replica, 6)
    assert not np.allclose(first, second)
    single = replica_normal(2 * per_replica, [6], seed=7, step=tf.constant(3, tf.int64), stream=0).numpy()
    np.testing.assert_array_equal(np.concatenate([first, second]), single)
    other_step = strategy.experimental_local_results(draw(tf.constant(4, tf.int64)))[0].numpy()
    assert not np.allclose(first, other_step)
