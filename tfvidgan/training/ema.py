"""Exponential moving average (EMA) of a Keras model's weights, exact under tf.distribute.

The standard remedy for the high-frequency noise ("specks") of GAN generators (Karras et al. 2018/2019,
Yazıcı et al. 2019): samples come from a *shadow* copy of the generator whose weights are

    w̄ ← β_t · w̄ + (1 − β_t) · w,      β_t = min(β, (1 + t) / (10 + t))

after every optimizer step t (the ramp of `tf.train.ExponentialMovingAverage(num_updates=t)`, so the
average does not remember the random initialisation for ~1/(1 − β) steps). All weights are averaged,
the non-trainable ones too (e.g. batch-norm moving statistics), so the shadow is a complete model.

Under a `tf.distribute` strategy the update runs in the replica context of the training step: it
merges to the cross-replica context (`merge_call`) and updates each mirrored shadow variable from the
(already synchronised) model weights with `strategy.extended.update` — the pattern Keras' own
optimizers use — so every replica holds the same average, and N replicas average exactly what one does.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from tfvidgan.errors import ConfigError


def check_beta(beta: float) -> None:
    """Raises `ConfigError` naming `--ema_beta` unless 0 <= `beta` < 1 (0 = EMA off)."""
    if not 0.0 <= beta < 1.0:
        raise ConfigError(f"--ema_beta must be in [0, 1) (0 disables EMA), got {beta}")


def ema_decay(beta: float, step) -> tf.Tensor:
    """β_t = min(β, (1 + t) / (10 + t)) as float32; `step` is the number of updates done before this one."""
    t = tf.cast(step, tf.float32)
    return tf.minimum(tf.constant(beta, tf.float32), (1.0 + t) / (10.0 + t))


def _tf_variable(variable):
    """The `tf.Variable` (possibly distributed) behind a Keras 3 variable."""
    return variable.value if isinstance(variable, keras.Variable) else variable


class WeightAverage:
    """A shadow model holding the EMA of `model`'s weights.

    Create it inside the strategy scope (it clones `model`, so the clone's variables are mirrored like
    the model's). `shadow` is a `keras.Model` with the same inputs and outputs as `model`; checkpoint it
    beside the model (`checkpoint_objects()["generator_ema"] = average.shadow`).
    """

    def __init__(self, model: keras.Model, beta: float):
        if not 0.0 < beta < 1.0:
            raise ConfigError(f"EMA beta must be in (0, 1), got {beta} (flag --ema_beta; 0 disables EMA)")
        self.beta = float(beta)
        self.model = model
        self.shadow = keras.models.clone_model(model)
        self.shadow.set_weights(model.get_weights())   # start at the initial weights
        self.shadow.trainable = False
        if len(self.shadow.weights) != len(model.weights):
            raise ConfigError("EMA: the clone of the model has a different number of weights")

    def update(self, step) -> None:
        """One EMA step towards the model's current weights (call after the optimizer step).

        Replica context (inside `strategy.run`) or no strategy at all. `step`: int tensor, number of
        updates before this one (the global step).
        """
        decay = ema_decay(self.beta, step)
        pairs = [(_tf_variable(a), _tf_variable(w)) for a, w in zip(self.shadow.weights, self.model.weights)]

        def merge_fn(strategy, decay):
            def apply(average, value, decay):
                return average.assign(decay * average + (1.0 - decay) * tf.cast(value, average.dtype))
            for average, value in pairs:
                strategy.extended.update(average, apply, args=(value, decay), group=False)

        context = tf.distribute.get_replica_context()
        if context is None:  # cross-replica context: update directly
            merge_fn(tf.distribute.get_strategy(), decay)
        else:
            context.merge_call(merge_fn, args=(decay,))

    def copy_from_model(self) -> None:
        """Sets the average to the model's weights (e.g. when EMA is switched on for a trained model)."""
        self.shadow.set_weights(self.model.get_weights())
