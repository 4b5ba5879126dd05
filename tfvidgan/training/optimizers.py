"""Optimizer factory: RMSprop by default (as in the reference setup), Adam as an option; a constant
learning rate by default, cosine decay as an option."""
from __future__ import annotations

import dataclasses
import math

import keras

from tfvidgan.errors import ConfigError

OPTIMIZERS = ("rmsprop", "adam")
LR_SCHEDULES = ("constant", "cosine")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """`name` in OPTIMIZERS; `beta_1` is used by Adam only.

    `schedule` in LR_SCHEDULES: "constant" keeps `learning_rate`; "cosine" decays it over the optimizer's
    first `decay_steps` updates (its `iterations`, checkpointed with it, so a resumed run continues the
    curve) from `learning_rate` to `learning_rate · final_fraction`, then holds it there
    (`cosine_factor`). An optimizer that updates k times per training step (e.g. discriminators with
    `discriminator_steps` = k) counts k updates per step."""
    name: str = "rmsprop"
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    schedule: str = "constant"
    decay_steps: int = 0
    final_fraction: float = 0.0

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


def cosine_factor(step, decay_steps: int, final_fraction: float):
    """The cosine schedule's multiplier of the base learning rate after `step` optimizer updates (a float
    scalar tensor): ``f + (1 − f) · ½ (1 + cos(π · min(step, N) / N))`` with ``N = decay_steps``,
    ``f = final_fraction``; 1 at step 0, f from step N on."""
    step = keras.ops.minimum(keras.ops.cast(step, "float32"), float(decay_steps))
    cosine = 0.5 * (1.0 + keras.ops.cos(math.pi * step / float(decay_steps)))
    return final_fraction + (1.0 - final_fraction) * cosine


class _CosineDecay:
    """Mixin for a Keras optimizer: the learning rate it applies is its (checkpointed) base learning-rate
    variable times `cosine_factor(iterations, ...)`. The base rate stays the optimizer's own variable, so the
    optimizer's variables, and so its checkpoints, are the same with and without the schedule: a run can
    switch schedules on a resume, and checkpoints written before schedules existed load."""

    def __init__(self, *args, decay_steps: int, final_fraction: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.decay_steps, self.final_fraction = int(decay_steps), float(final_fraction)

    def _get_current_learning_rate(self):
        return super()._get_current_learning_rate() * cosine_factor(self._iterations, self.decay_steps,
                                                                   self.final_fraction)

    def get_config(self):
        return {**super().get_config(), "decay_steps": self.decay_steps, "final_fraction": self.final_fraction}


@keras.saving.register_keras_serializable(package="tfvidgan")
class CosineDecayAdam(_CosineDecay, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with the `_CosineDecay` schedule."""


@keras.saving.register_keras_serializable(package="tfvidgan")
class CosineDecayRMSprop(_CosineDecay, keras.optimizers.RMSprop):
    """`keras.optimizers.RMSprop` with the `_CosineDecay` schedule."""


def make_optimizer(config: OptimizerConfig, variables=None) -> keras.optimizers.Optimizer:
    """Creates the optimizer and, if `variables` are given, builds its slots for them.

    Call inside `strategy.scope()`: under MirroredStrategy an optimizer that is not built before the
    first distributed step fails ("You must feed a value for placeholder tensor").
    """
    if config.schedule == "cosine":
        schedule = {"decay_steps": config.decay_steps, "final_fraction": config.final_fraction}
        optimizer = (CosineDecayRMSprop(learning_rate=config.learning_rate, **schedule) if config.name == "rmsprop"
                     else CosineDecayAdam(learning_rate=config.learning_rate, beta_1=config.beta_1, **schedule))
    elif config.name == "rmsprop":
        optimizer = keras.optimizers.RMSprop(learning_rate=config.learning_rate)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate, beta_1=config.beta_1)
    if variables is not None:
        optimizer.build(variables)
    return optimizer
