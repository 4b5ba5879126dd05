"""Data parallelism is exact: one step on 2 replicas == one step on 1 replica with the same global batch.

With teeth: SGD (updates proportional to gradients; the generator's learning rate is large so its updates
sit far above float32 rounding of its weights), discriminators with distinct losses, replicas fed very
different halves of the batch, every variable's update compared at 1e-4 of its own scale (float32 noise
measured here: <= 2.1e-5, in the discriminators' logit biases, whose gradients cancel); and a mutant
combiner that weighs the discriminators with this replica's losses (the all-reduce forgotten) must make the
comparison fail by a wide margin (4e-3..1e-2 measured).

Uses two logical CPU devices (tests/conftest.py). Also checks that replicas draw different latents and
that their draws together are exactly the single-replica draw.
"""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import mirrored_strategy

from tfvidgan.training import loop
from tfvidgan.training.adversarial import AdversarialConfig
from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask
from tfvidgan.training.noise import replica_normal

GLOBAL_BATCH = 8
SMALL = FramesGanConfig(image_size=32, channels=1, latent_dim=8, generator_filters=8,
                        num_discriminators=3, discriminator_filters=4, num_sample_images=4)


def _strategy(devices):
    return mirrored_strategy(tuple(devices))


class _SgdTask(FramesGanTask):
    """SGD instead of RMSprop: an update proportional to the gradient, so a wrong combiner weight shows up
    in the weights (RMSprop's normalised first step hides it). Discriminator k's output is scaled by
    (k + 1), so the K losses are distinct and the combiner's weights far from uniform."""

    def build(self):
        super().build()
        # Generator gradients arrive through the discriminators and are tiny (~1e-7 of its weights per step
        # at lr 0.5, below float32 rounding); a large rate makes the update itself measurable.
        self.g_optimizer = keras.optimizers.SGD(learning_rate=1000.0)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer = keras.optimizers.SGD(learning_rate=0.5)
        self.d_optimizer.build(self.discriminators.trainable_variables)
        kernel = next(v for v in self.discriminators.trainable_variables if v.path.endswith("logits_conv/kernel"))
        scale = np.arange(1, self.config.num_discriminators + 1, dtype=np.float32) * 3.0
        kernel.assign(kernel.numpy() * scale)


def _real_batch():
    # The two halves (one per replica) are very different, so per-replica losses differ from the global ones.
    rng = np.random.default_rng(0)
    dark = np.full((GLOBAL_BATCH // 2, 32, 32, 1), -1.0, np.float32) + rng.uniform(0, 0.1, (GLOBAL_BATCH // 2, 32, 32, 1))
    bright = rng.uniform(-1, 1, size=(GLOBAL_BATCH // 2, 32, 32, 1)).astype(np.float32)
    return np.concatenate([dark, bright]).astype(np.float32)


def _train_one_step(config, devices, tmp_path, task_class=_SgdTask):
    strategy = _strategy(tuple(devices))
    replicas = len(devices)
    per_replica = GLOBAL_BATCH // replicas
    real = _real_batch().reshape(replicas, per_replica, 32, 32, 1)

    def dataset_fn(context, start_step):
        # One input pipeline feeds the replicas in turn: element r goes to replica r.
        return tf.data.Dataset.from_tensor_slices(real).repeat()

    keras.utils.set_random_seed(123)  # identical initial weights for both runs
    task = task_class(config)
    result = loop.run_training(task, dataset_fn, strategy, loop.LoopConfig(
        model_dir=str(tmp_path / f"run{replicas}_{len(list(tmp_path.iterdir()))}"), train_steps=1, export=False))
    weights = [v.numpy() for v in task.generator.trainable_weights + task.discriminators.trainable_weights]
    return weights, result.last_metrics


def _initial_weights(config):
    keras.utils.set_random_seed(123)
    fresh = _SgdTask(config)
    with _strategy(("/cpu:0",)).scope():
        fresh.build()
    return [v.numpy() for v in fresh.generator.trainable_weights + fresh.discriminators.trainable_weights]


def _update_discrepancy(config, tmp_path):
    """One step on 1 and on 2 replicas from the same weights: (max over variables of
    max|update_2 - update_1| / max|update_1|, metrics of 1 replica, metrics of 2 replicas)."""
    one, metrics_one = _train_one_step(config, ["/cpu:0"], tmp_path)
    two, metrics_two = _train_one_step(config, ["/cpu:0", "/cpu:1"], tmp_path)
    start = _initial_weights(config)
    assert len(one) == len(two) == len(start)
    worst, moved = 0.0, 0
    for a, b, w in zip(one, two, start):
        update_one, update_two = a.astype(np.float64) - w, b.astype(np.float64) - w
        scale = float(np.max(np.abs(update_one)))
        moved += scale > 1e-6
        # Float32 rounding of the weights themselves bounds how exactly an update can be recovered.
        floor = 4 * np.finfo(np.float32).eps * float(np.max(np.abs(w)))
        worst = max(worst, float(np.max(np.maximum(np.abs(update_two - update_one) - floor, 0))) / max(scale, 1e-30))
    assert moved > 0.5 * len(one)  # the step really trained
    return worst, metrics_one, metrics_two


def _compare_one_and_two_replicas(config, tmp_path):
    """Asserts the updates of 1 and 2 replicas agree to 1e-4 of each variable's update scale."""
    worst, metrics_one, metrics_two = _update_discrepancy(config, tmp_path)
    assert worst < 1e-4, worst
    for name in ("d_loss", "g_loss", "per_discriminator/d_loss", "per_discriminator/g_weight"):
        np.testing.assert_allclose(metrics_two[name], metrics_one[name], rtol=1e-5)
    return metrics_one


# Per-replica batch-norm statistics differ from global ones by design: normalisation "none" or "layer"
# (discriminators) or "sync_batch" keep the two runs the same computation.
# The shipped configs' choice (sync batch norm, real and fake as one discriminator batch) is in the list.
CASES = [("none", "none", "gman", False), ("none", "layer", "hypervolume", False),
         ("sync_batch", "sync_batch", "mean", False), ("sync_batch", "sync_batch", "mean", True)]


@pytest.mark.parametrize("g_norm,d_norm,combiner,joint", CASES)
def test_two_replicas_match_one_replica(tmp_path, g_norm, d_norm, combiner, joint):
    config = dataclasses.replace(SMALL, generator_normalization=g_norm, discriminator_normalization=d_norm,
                                 adversarial=AdversarialConfig(combiner=combiner, joint_batch=joint))
    metrics = _compare_one_and_two_replicas(config, tmp_path)
    losses = np.asarray(metrics["per_discriminator/g_loss"])
    assert np.ptp(losses) > 0.02 * np.mean(np.abs(losses)), losses  # distinct losses: the combiner matters


def test_the_comparison_catches_a_combiner_fed_per_replica_losses(tmp_path, monkeypatch):
    """Mutant: the combiner weighs the discriminators with this replica's losses (the all-reduce forgotten)
    instead of the global ones; the equivalence check above must then fail.

    (A subtler mutant, per-replica losses scaled by the number of replicas, is not separable from float
    noise here: with i.i.d. latents the two replicas' generator losses agree to ~1e-5.)"""
    from tfvidgan.training import adversarial
    monkeypatch.setattr(adversarial, "all_reduce_sum", lambda value: value)
    config = dataclasses.replace(SMALL, generator_normalization="none", discriminator_normalization="none",
                                 adversarial=AdversarialConfig(combiner="gman"))
    worst, _, _ = _update_discrepancy(config, tmp_path)
    assert worst > 2e-3, worst  # 20x the tolerance of the equivalence test: it fails, clearly
    with pytest.raises(AssertionError):
        _compare_one_and_two_replicas(config, tmp_path)


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
