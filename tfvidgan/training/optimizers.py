"""Optimizer factory: RMSprop by default (as in the reference setup), Adam as an option."""
from __future__ import annotations

import dataclasses

import keras

from tfvidgan.errors import ConfigError

OPTIMIZERS = ("rmsprop", "adam")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """`name` in OPTIMIZERS; `beta_1` is used by Adam only."""
    name: str = "rmsprop"
    learning_rate: float = 2e-4
    beta_1: float = 0.5

    def __post_init__(self):
        if self.name not in OPTIMIZERS:
            raise ConfigError(f"optimizer {self.name!r} is not one of {OPTIMIZERS} (flag --optimizer)")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning rate must be positive, got {self.learning_rate}")


def make_optimizer(config: OptimizerConfig, variables=None) -> keras.optimizers.Optimizer:
    """Creates the optimizer and, if `variables` are given, builds its slots for them.

    Call inside `strategy.scope()`: under MirroredStrategy an optimizer that is not built before the
    first distributed step fails ("You must feed a value for placeholder tensor").
    """
    if config.name == "rmsprop":
        optimizer = keras.optimizers.RMSprop(learning_rate=config.learning_rate)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate, beta_1=config.beta_1)
    if variables is not None:
        optimizer.build(variables)
    return optimizer
