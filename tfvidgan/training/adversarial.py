"""One GAN update against an ensemble of K discriminators, shared by the frames and the video GAN.

The discriminator ensemble maps a batch to logits `[b, K]` (any `[b, ...]` output is flattened: each entry,
e.g. each patch of a fully convolutional critic, counts as one discriminator). Each discriminator is trained on its own loss
(their sum is minimised; the gradients separate). The generator minimises Σ_k w_k · l_k, where l_k is its
loss against discriminator k and the weights w come from the combiner (`tfvidgan.losses.make_combiner`:
mean, GMAN softmax, hypervolume, or one registered by name), computed from the losses averaged over the GLOBAL batch (an
all-reduce), so a step on N replicas is the same computation as on one replica with the global batch.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import keras
import tensorflow as tf

from tfvidgan import losses
from tfvidgan.errors import ConfigError
from tfvidgan.models.ensemble_discriminator import split_at_projection


@dataclasses.dataclass(frozen=True)
class AdversarialConfig:
    """Loss kind (a key of `tfvidgan.losses.LOSSES`: "non_saturating" | "hinge" | registered), generator
    combiner (a key of `tfvidgan.losses.COMBINERS`: "mean" | "gman" | "hypervolume" | registered)."""
    loss: str = "non_saturating"
    combiner: str = "mean"
    gman_alpha: float = 0.8
    hypervolume_delta: float = 1.5
    hypervolume_normalize: bool = False
    discriminator_steps: int = 1
    # Real and fake through the discriminators as ONE batch (normalisation statistics over both), in
    # the discriminator and in the generator update; False: separate real and fake batches.
    joint_batch: bool = False
    # R1 gradient penalty (Mescheder et al. 2018), 0 = off: discriminator k's loss gains
    # r1_weight / 2 · E_real ||∇ D_k||², the gradient taken w.r.t. discriminator k's OWN input (its
    # projection of the frame or clip), so each discriminator is penalised alone (one backward pass for all K).
    r1_weight: float = 0.0

    def __post_init__(self):
        if self.loss not in losses.LOSSES:
            raise ConfigError(f"--loss={self.loss!r} is not one of {tuple(losses.LOSSES)}")
        if self.combiner not in losses.COMBINERS:
            raise ConfigError(f"--combiner={self.combiner!r} is not one of {tuple(losses.COMBINERS)}")
        losses.make_combiner(self)  # its parameters are checked now (e.g. hypervolume_delta > 1)
        if self.discriminator_steps < 1:
            raise ConfigError(f"--discriminator_steps must be >= 1, got {self.discriminator_steps}")
        if not self.r1_weight >= 0:
            raise ConfigError(f"--r1_weight must be >= 0, got {self.r1_weight}")


# generate(stream) -> (fake batch [b, ...] float32 in [-1, 1], generator_term): `generator_term` is a
# non-adversarial scalar added to the generator's objective, already scaled by 1/global batch (the video
# GAN's smoothness regulariser, the reconstructor's MSE), or None. `stream` selects independent noise
# within a step (0: the generator update; 2 + i: discriminator step i). Only stream 0's term is used: a task
# may return None for the others, and should when its term costs passes or all-reduces (frames, video).
GenerateFn = Callable[[int], tuple]


@dataclasses.dataclass(frozen=True)
class AdversarialStepOutput:
    """What one `train_step` returns: per-replica float32 tensors whose SUM over replicas is the global value.

    Attributes:
      d_loss: scalar, the discriminators' loss summed over the K discriminators (last discriminator step).
      g_loss: scalar, the value of the combiner's objective for the generator (without `adversarial_weight`);
        None (as the two below) when the step updates no generator (`generator_updates=[]`).
      d_loss_per_discriminator: `[K]`, each discriminator's loss.
      g_loss_per_discriminator: `[K]`, the generator's loss against each discriminator.
      g_weight_per_discriminator: `[K]`, the combiner's weights (divided by the number of replicas).
      generator_term: scalar, the task's non-adversarial term of the generator's objective (see
        `GenerateFn`), or None when the task has none. The task names it (`as_dict` does not).
      r1_penalty: scalar, Σ_k E_real ||∇ D_k||² (unweighted, last discriminator step), or None when R1 is off.
    """
    d_loss: tf.Tensor
    g_loss: tf.Tensor | None
    d_loss_per_discriminator: tf.Tensor
    g_loss_per_discriminator: tf.Tensor | None
    g_weight_per_discriminator: tf.Tensor | None
    generator_term: tf.Tensor | None = None
    r1_penalty: tf.Tensor | None = None

    def as_dict(self) -> dict[str, tf.Tensor]:
        """The adversarial values under their logged names (TensorBoard scalars, `last_metrics` keys); the
        generator's only when the step updated one."""
        values = {
            "d_loss": self.d_loss,
            "g_loss": self.g_loss,
            "per_discriminator/d_loss": self.d_loss_per_discriminator,
            "per_discriminator/g_loss": self.g_loss_per_discriminator,
            "per_discriminator/g_weight": self.g_weight_per_discriminator,
            "r1_penalty": self.r1_penalty,
        }
        return {k: v for k, v in values.items() if v is not None}


def replicas_in_sync() -> int:
    """The number of replicas in sync (replica context); 1 outside a strategy."""
    context = tf.distribute.get_replica_context()
    return context.num_replicas_in_sync if context is not None else 1


def all_reduce_sum(value):
    """The sum of `value` over the replicas in sync (replica context); `value` itself with one replica or
    outside a strategy."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def _flat(logits):
    """`[b, ...]` logits (any float dtype, e.g. bfloat16 under mixed precision) → float32 `[b, K]`."""
    logits = tf.cast(logits, tf.float32)
    return tf.reshape(logits, [tf.shape(logits)[0], -1]) if logits.shape.rank != 2 else logits


def _real_and_fake_logits(discriminator, real, fake, joint: bool):
    """`([b, K], [b, K])` float32 logits of the real and the fake batch (one call when `joint`)."""
    if not joint:
        return _flat(discriminator(real, training=True)), _flat(discriminator(fake, training=True))
    both = _flat(discriminator(tf.concat([real, tf.cast(fake, real.dtype)], axis=0), training=True))
    return both[:real.shape[0]], both[real.shape[0]:]


def _logits_and_r1(discriminator, real, fake, joint: bool):
    """`(real [b, K], fake [b, K], r1 [b, K])` float32: the logits and each real example's squared gradient
    norm ||∇ D_k||² w.r.t. discriminator k's own projected input (a double-backprop-able tensor)."""
    front, trunk, k = split_at_projection(discriminator)
    b = real.shape[0]
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        if joint:
            projected = front(tf.concat([real, tf.cast(fake, real.dtype)], axis=0), training=True)
            tape.watch(projected)
            both = _flat(trunk(projected, training=True))
            real_logits, fake_logits = both[:b], both[b:]
        else:
            projected = front(real, training=True)
            tape.watch(projected)
            real_logits = _flat(trunk(projected, training=True))
            fake_logits = _flat(discriminator(fake, training=True))
        # Sample i's logits depend on sample i's input only (batch statistics aside), and discriminator
        # k's on channel block k only: one gradient of the sum holds every ∇ D_k(x_i).
        total = tf.reduce_sum(real_logits)
    gradient = tf.cast(tape.gradient(total, projected)[:b], tf.float32)   # [b, ..., K·c]
    per_block = tf.reshape(tf.square(gradient), [b, -1, k, gradient.shape[-1] // k])
    return real_logits, fake_logits, tf.reduce_sum(per_block, axis=[1, 3])


def train_step(*, real: tf.Tensor, generate: GenerateFn, discriminator: keras.Model,
               d_optimizer: keras.optimizers.Optimizer,
               generator_updates: Sequence[tuple],
               config: AdversarialConfig, adversarial_weight: float = 1.0) -> AdversarialStepOutput:
    """Runs `config.discriminator_steps` discriminator updates then one generator update (replica context);
    with `generator_updates=[]` only the discriminator updates (e.g. refining the discriminators of a
    frozen generator): the generator half, whose gradients would go nowhere, is not run.

    Args:
      real: this replica's real batch, `[b, ...] float32 in [-1, 1]` (frames or clips).
      generate: see `GenerateFn`.
      discriminator: ensemble, `[b, ...] → [b, K]` logits.
      d_optimizer: the discriminators' optimizer (built).
      generator_updates: [(optimizer, variables), ...]; several optimizers let parts of the generator
        train at their own learning rate (e.g. a fine-tuned frames generator).
      config: losses and combiner.
      adversarial_weight: the generator minimises `adversarial_weight · Σ_k w_k l_k + generator_term`.
    Returns:
      `AdversarialStepOutput` of per-replica values whose sum over replicas is the global value.
    """
    per_replica_batch = real.shape[0]
    if per_replica_batch is None:
        raise ConfigError("the training dataset must have a static batch size: batch it with "
                          "drop_remainder=True")
    global_batch = per_replica_batch * replicas_in_sync()
    combiner = losses.make_combiner(config)
    d_vars = discriminator.trainable_variables
    for i in range(config.discriminator_steps):
        fake, _ = generate(2 + i)
        fake = tf.stop_gradient(fake)
        r1_penalty = None
        with tf.GradientTape() as tape:
            if config.r1_weight > 0:
                real_logits, fake_logits, r1 = _logits_and_r1(discriminator, real, fake, config.joint_batch)
            else:
                real_logits, fake_logits = _real_and_fake_logits(discriminator, real, fake, config.joint_batch)
            per_example = losses.discriminator_loss(real_logits, fake_logits, kind=config.loss)
            d_per_disc = tf.reduce_sum(per_example, axis=0) / global_batch      # [K]
            d_loss = tf.reduce_sum(d_per_disc)
            if config.r1_weight > 0:
                r1_penalty = tf.reduce_sum(r1) / global_batch
                d_loss += 0.5 * config.r1_weight * r1_penalty
        d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))
    if not generator_updates:
        return AdversarialStepOutput(d_loss=d_loss, g_loss=None, d_loss_per_discriminator=d_per_disc,
                                     g_loss_per_discriminator=None, g_weight_per_discriminator=None,
                                     r1_penalty=r1_penalty)

    g_vars = [v for _, variables in generator_updates for v in variables]
    with tf.GradientTape() as tape:
        fake, generator_term = generate(0)
        if config.joint_batch:
            _, fake_logits = _real_and_fake_logits(discriminator, real, fake, True)
        else:
            fake_logits = _flat(discriminator(fake, training=True))
        g_per_disc = tf.reduce_sum(losses.generator_loss(fake_logits, kind=config.loss), axis=0) / global_batch
        g_global = all_reduce_sum(tf.stop_gradient(g_per_disc))              # [K], global batch mean
        weights = combiner.weights(g_global)
        objective = adversarial_weight * tf.reduce_sum(weights * g_per_disc)
        if generator_term is not None:
            objective += generator_term
    gradients = tape.gradient(objective, g_vars)
    offset = 0
    for optimizer, variables in generator_updates:
        n = len(variables)
        optimizer.apply_gradients(zip(gradients[offset:offset + n], variables))
        offset += n

    replicas = float(replicas_in_sync())
    g_value = combiner.value(g_global)
    return AdversarialStepOutput(
        d_loss=d_loss, g_loss=g_value / replicas, d_loss_per_discriminator=d_per_disc,
        g_loss_per_discriminator=g_per_disc, g_weight_per_discriminator=weights / replicas,
        generator_term=generator_term, r1_penalty=r1_penalty)
