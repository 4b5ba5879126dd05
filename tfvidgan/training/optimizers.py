"""Optimizer factory: RMSprop by default (as in the reference setup), Adam as an option; a constant
learning rate by default, cosine decay (optionally after a constant phase) as an option; and an optional
clip of the gradients' global norm, taken over the gradients summed across replicas."""
from __future__ import annotations

import dataclasses
import math

import keras
import tensorflow as tf

from tfvidgan.errors import ConfigError

OPTIMIZERS = ("rmsprop", "adam")
LR_SCHEDULES = ("constant", "cosine")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """`name` in OPTIMIZERS; `beta_1` is used by Adam only.

    `schedule` in LR_SCHEDULES: "constant" keeps `learning_rate`; "cosine" holds it for the optimizer's
    first `decay_start` updates, then decays it until update `decay_steps` (updates: its `iterations`,
    checkpointed with it, so a resumed run continues the curve) from `learning_rate` to
    `learning_rate · final_fraction`, then holds it there (`cosine_factor`). `decay_start` = 0 decays from
    the first update; 0 < `decay_start` < `decay_steps` is the "constant, then decay" (warmup-stable-decay
    without the warm-up) shape. An optimizer that updates k times per training step (e.g. discriminators
    with `discriminator_steps` = k) counts k updates per step.

    `clip_norm` > 0 rescales each update's gradients so that their global norm is at most `clip_norm`
    (`tf.clip_by_global_norm`). Under a `tf.distribute` strategy the norm is that of the gradients summed
    over the replicas, the gradient of the global batch, so N replicas clip exactly what one replica does
    (Keras' own `global_clipnorm` clips each replica's partial gradients before they are summed)."""
    name: str = "rmsprop"
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    schedule: str = "constant"
    decay_steps: int = 0
    final_fraction: float = 0.0
    decay_start: int = 0
    clip_norm: float = 0.0

    def __post_init__(self):
        if self.name not in OPTIMIZERS:
            raise ConfigError(f"optimizer {self.name!r} is not one of {OPTIMIZERS} (flag --optimizer)")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning rate must be positive, got {self.learning_rate}")
        if self.schedule not in LR_SCHEDULES:
            raise ConfigError(f"learning-rate schedule {self.schedule!r} is not one of {LR_SCHEDULES}")
        if self.schedule == "cosine" and not int(self.decay_steps) > 0:
            raise ConfigError(f"the cosine learning-rate schedule needs decay_steps > 0 (flag *_lr_decay_steps, "
                              f"e.g. the run's --train_steps), got {self.decay_steps}")
        if not 0.0 <= self.final_fraction <= 1.0:
            raise ConfigError(f"final_fraction (flag *_lr_final_fraction) must be in [0, 1], got {self.final_fraction}")
        if self.decay_start < 0 or (self.schedule == "cosine" and self.decay_start >= self.decay_steps):
            raise ConfigError(f"decay_start (flag *_lr_decay_start) must be >= 0 and below decay_steps (flag "
                              f"*_lr_decay_steps, {self.decay_steps}), got {self.decay_start}")
        if self.decay_start and self.schedule != "cosine":
            raise ConfigError(f"decay_start (flag *_lr_decay_start) = {self.decay_start} needs the cosine schedule "
                              f"(flag *_lr_schedule=cosine)")
        if not (math.isfinite(self.clip_norm) and self.clip_norm >= 0.0):
            raise ConfigError(f"clip_norm (flag *_clip_norm) must be >= 0 (0 = off), got {self.clip_norm}")


def cosine_factor(step, decay_steps: int, final_fraction: float, decay_start: int = 0):
    """The cosine schedule's multiplier of the base learning rate after `step` optimizer updates (a float
    scalar tensor): ``f + (1 − f) · ½ (1 + cos(π · u))`` with ``u = clip((step − S) / (N − S), 0, 1)``,
    ``N = decay_steps``, ``S = decay_start``, ``f = final_fraction``; 1 up to step S, f from step N on."""
    step = keras.ops.cast(step, "float32")
    progress = keras.ops.clip((step - float(decay_start)) / float(decay_steps - decay_start), 0.0, 1.0)
    cosine = 0.5 * (1.0 + keras.ops.cos(math.pi * progress))
    return final_fraction + (1.0 - final_fraction) * cosine


def clip_global_norm_across_replicas(gradients: list, clip_norm: float) -> tuple[list, tf.Tensor]:
    """(gradients to hand to a Keras optimizer, global norm before clipping) for `clip_norm` > 0.

    In a replica context of N > 1 replicas the gradients are first summed over the replicas (the global
    batch's gradient, which the optimizer would apply), clipped to global norm `clip_norm`, and divided by
    N: the optimizer's own cross-replica sum then applies exactly the clipped global gradient. With one
    replica (or none) this is `tf.clip_by_global_norm`. `None` gradients stay `None`.
    """
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    present = [i for i, g in enumerate(gradients) if g is not None]
    values = [gradients[i] for i in present]
    if replicas > 1:
        values = context.all_reduce(tf.distribute.ReduceOp.SUM, values)
    clipped, norm = tf.clip_by_global_norm(values, clip_norm)
    if replicas > 1:
        clipped = [g / replicas for g in clipped]
    out = list(gradients)
    for i, g in zip(present, clipped):
        out[i] = g
    return out, norm


class _Tuned:
    """Mixin for a Keras optimizer: the cosine schedule and the cross-replica global-norm clip.

    The learning rate it applies is its (checkpointed) base learning-rate variable times
    `cosine_factor(iterations, ...)` (with `decay_steps` = 0: the base rate). The base rate stays the
    optimizer's own variable, so the optimizer's variables, and so its checkpoints, are the same with and
    without the schedule or the clip: a run can switch schedules on a resume, and checkpoints written before
    schedules existed load. `clip_norm` > 0 clips in `apply` (`clip_global_norm_across_replicas`).
    """

    def __init__(self, *args, decay_steps: int = 0, final_fraction: float = 0.0, decay_start: int = 0,
                 clip_norm: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.decay_steps, self.final_fraction = int(decay_steps), float(final_fraction)
        self.decay_start, self.clip_norm = int(decay_start), float(clip_norm)

    def _get_current_learning_rate(self):
        rate = super()._get_current_learning_rate()
        if self.decay_steps <= 0:
            return rate
        return rate * cosine_factor(self._iterations, self.decay_steps, self.final_fraction, self.decay_start)

    def apply(self, grads, trainable_variables=None):
        # `apply_gradients` calls `apply`, so both paths clip.
        if self.clip_norm > 0:
            grads, _ = clip_global_norm_across_replicas(list(grads), self.clip_norm)
        return super().apply(grads, trainable_variables)

    def get_config(self):
        return {**super().get_config(), "decay_steps": self.decay_steps, "final_fraction": self.final_fraction,
                "decay_start": self.decay_start, "clip_norm": self.clip_norm}


@keras.saving.register_keras_serializable(package="tfvidgan")
class CosineDecayAdam(_Tuned, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with the `_Tuned` schedule and clip (the name predates the clip)."""


@keras.saving.register_keras_serializable(package="tfvidgan")
class CosineDecayRMSprop(_Tuned, keras.optimizers.RMSprop):
    """`keras.optimizers.RMSprop` with the `_Tuned` schedule and clip (the name predates the clip)."""


def make_optimizer(config: OptimizerConfig, variables=None) -> keras.optimizers.Optimizer:
    """Creates the optimizer and, if `variables` are given, builds its slots for them.

    Call inside `strategy.scope()`: under MirroredStrategy an optimizer that is not built before the
    first distributed step fails ("You must feed a value for placeholder tensor").
    """
    if config.schedule == "cosine" or config.clip_norm > 0:
        schedule = {"decay_steps": config.decay_steps if config.schedule == "cosine" else 0,
                    "final_fraction": config.final_fraction, "decay_start": config.decay_start,
                    "clip_norm": config.clip_norm}
        optimizer = (CosineDecayRMSprop(learning_rate=config.learning_rate, **schedule) if config.name == "rmsprop"
                     else CosineDecayAdam(learning_rate=config.learning_rate, beta_1=config.beta_1, **schedule))
    elif config.name == "rmsprop":
        optimizer = keras.optimizers.RMSprop(learning_rate=config.learning_rate)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate, beta_1=config.beta_1)
    if variables is not None:
        optimizer.build(variables)
    return optimizer
