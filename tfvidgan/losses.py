"""GAN losses and the combiners of K discriminators' generator losses, as swappable parts.

Losses are per example AND per discriminator: logits `[B, K]` → losses `[B, K]` float32, with NO
reduction over the batch (the trainer divides by the GLOBAL batch size, e.g. with
`tf.nn.compute_average_loss`, so that the sum over replicas is the global mean).

Both parts are registered by name (`LOSSES`, `COMBINERS`); the registries' keys are the choices of
the `--loss` and `--combiner` flags and of `AdversarialConfig`. Register your own with
`@register_loss("name")` (a `LossKind` subclass) or `@register_combiner("name")` (a `Combiner`
subclass); an unknown name raises a ConfigError listing the known ones.

Kinds (`kind=`), with D's logit r on real and f on generated data, σ the sigmoid:

| kind | discriminator loss | generator loss |
| --- | --- | --- |
| "non_saturating" | softplus(−r) + softplus(f) = −log σ(r) − log(1 − σ(f)) | softplus(−f) = −log σ(f) |
| "hinge" | relu(1 − r) + relu(1 + f) | −f |

Combining the K generator losses exactly under data parallelism
----------------------------------------------------------------
Combiners that weight discriminators by their loss are non-linear in the losses, so evaluating
them on per-replica means would give a different gradient from the single-device one. Instead:

1. the trainer computes `per_disc_loss[k]`, discriminator k's generator loss averaged over the
   GLOBAL batch (per-replica sums / global batch, all-reduced with SUM), a `[K]` vector;
2. `combiner.weights(per_disc_loss)` returns constant weights `w` `[K]` (`combiner =
   make_combiner(config)`, built once from the config);
3. the trainer minimises `Σ_k w_k · l_k` with per-example `l` scaled by 1/global batch; its
   gradient is `Σ_k w_k ∇ l̄_k`, identical on any number of replicas.

`combiner.value(per_disc_loss)` is the value of the combined objective for logging; its
gradient with respect to `per_disc_loss` is exactly `combiner.weights(...)` (weights and
the nadir point are held constant, as in the papers).

Combiners (`AdversarialConfig.combiner`; parameters from the config's `gman_alpha`,
`hypervolume_delta`, `hypervolume_normalize`):
- "mean": w_k = 1/K; objective mean_k l_k.
- "gman" (Durugkar et al. 2017, soft-mean): w = softmax(α·l) (α = `alpha`, sums to 1,
  larger loss → larger weight; α = 0 is "mean"); objective Σ_k w_k l_k with w held constant.
- "hypervolume" (Albuquerque et al. 2019): objective −Σ_k log(η − l_k) with the nadir point
  η = δ·max_k l_k (δ = `delta` > 1) held constant; its exact gradient weights are
  w_k = 1/(η − l_k) (larger loss → larger weight). These are NOT normalised (their sum is
  ≈ K/((δ−1)·l) for equal losses, so the effective learning rate scales with K);
  `normalize=True` divides them by their sum (what the authors' hGAN code does),
  i.e. the objective is divided by the constant Σ_j 1/(η − l_j).

  Losses ≤ 0 (hinge: l = −f can have any sign) would make η ≤ max l meaningless, so the losses
  are first shifted by the constant c = max(0, floor − min_k l_k), floor = `floor`
  (default 0.1): l'_k = l_k + c ≥ floor > 0 and η = δ·max_k l'_k. The shift is a constant, so
  ∇ l'_k = ∇ l_k, and it is zero (exactly the paper's formula) whenever all losses are ≥ floor,
  which is the usual case for non-saturating losses (≈ log 2 at equilibrium). The shift is
  continuous in the losses and bounds every weight by 1/((δ − 1)·floor).
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from tfvidgan.errors import ConfigError


def _registrar(registry: dict, what: str) -> Callable[[str], Callable[[type], type]]:
    def register(name: str):
        def add(cls: type) -> type:
            if name in registry:
                raise ConfigError(f"{what} {name!r} is already registered (by {registry[name].__qualname__})")
            registry[name] = cls
            cls.name = name
            return cls
        return add
    return register


def _lookup(registry: dict, what: str, name: str):
    if name not in registry:
        raise ConfigError(f"unknown {what} {name!r}; known: {tuple(registry)}")
    return registry[name]


# -- loss kinds -----------------------------------------------------------------------------------------


class LossKind:
    """A GAN loss: `discriminator(real [B, K], fake [B, K]) -> [B, K]` and `generator(fake) -> [B, K]`,
    both float32 logits in, float32 per-example, per-discriminator losses out (no batch reduction)."""
    name: str = ""

    @staticmethod
    def discriminator(real: tf.Tensor, fake: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    @staticmethod
    def generator(fake: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError


LOSSES: dict[str, type[LossKind]] = {}
register_loss = _registrar(LOSSES, "loss")
register_loss.__doc__ = "Class decorator: `@register_loss(name)` on a `LossKind` subclass makes `kind=name` usable."


@register_loss("non_saturating")
class NonSaturating(LossKind):
    """softplus(−r) + softplus(f) for D (binary cross-entropy on logits), softplus(−f) ≥ 0 for G."""

    @staticmethod
    def discriminator(real, fake):
        return tf.nn.softplus(-real) + tf.nn.softplus(fake)

    @staticmethod
    def generator(fake):
        return tf.nn.softplus(-fake)


@register_loss("hinge")
class Hinge(LossKind):
    """relu(1 − r) + relu(1 + f) for D, −f (any sign) for G."""

    @staticmethod
    def discriminator(real, fake):
        return tf.nn.relu(1.0 - real) + tf.nn.relu(1.0 + fake)

    @staticmethod
    def generator(fake):
        return -fake


def get_loss(kind: str) -> type[LossKind]:
    """The registered `LossKind` called `kind`; ConfigError listing the known names otherwise."""
    return _lookup(LOSSES, "loss kind", kind)


def discriminator_loss(real_logits, fake_logits, kind: str = "non_saturating") -> tf.Tensor:
    """Per-example, per-discriminator discriminator loss.

    Args:
      real_logits: `[B, K]` logits of the K discriminators on real data (any float dtype).
      fake_logits: `[B, K]` logits on generated data (same shape).
      kind: a registered loss kind ("non_saturating": binary cross-entropy on logits, "hinge", ...).

    Returns:
      `[B, K]` float32 (≥ 0 for the built-in kinds), not reduced over the batch.

    Raises:
      ConfigError: unknown `kind` (the message lists the known ones).
    """
    loss = get_loss(kind)
    return loss.discriminator(tf.cast(real_logits, tf.float32), tf.cast(fake_logits, tf.float32))


def generator_loss(fake_logits, kind: str = "non_saturating") -> tf.Tensor:
    """Per-example, per-discriminator generator loss.

    Args:
      fake_logits: `[B, K]` logits of the K discriminators on generated data.
      kind: a registered loss kind ("non_saturating": softplus(−f) ≥ 0, "hinge": −f of any sign, ...).

    Returns:
      `[B, K]` float32, not reduced over the batch.

    Raises:
      ConfigError: unknown `kind` (the message lists the known ones).
    """
    return get_loss(kind).generator(tf.cast(fake_logits, tf.float32))


# -- combiners ------------------------------------------------------------------------------------------


def _as_loss_vector(per_disc_loss) -> tf.Tensor:
    losses = tf.convert_to_tensor(per_disc_loss)
    if losses.shape.rank != 1:
        raise ConfigError(f"combiner: `per_disc_loss` must be a [K] vector, got shape {losses.shape}")
    return tf.cast(losses, tf.float32)


class Combiner:
    """Combines the K generator losses `per_disc_loss [K]` (each averaged over the GLOBAL batch).

    Subclasses implement `_weights(losses) -> [K]` and `_value(losses) -> scalar` on float32 `[K]`
    losses, with d(value)/d(losses) == weights (weights held constant), and may override `from_config`
    to read their parameters from an `AdversarialConfig`.
    """
    name: str = ""

    @classmethod
    def from_config(cls, config) -> "Combiner":
        """The combiner with its parameters taken from `config` (an `AdversarialConfig`)."""
        return cls()

    def weights(self, per_disc_loss) -> tf.Tensor:
        """Constant weights w `[K]` float32 (wrapped in `tf.stop_gradient`) such that the generator's
        gradient is Σ_k w_k ∇ l_k. Raises ConfigError if `per_disc_loss` is not a `[K]` vector."""
        return tf.stop_gradient(self._weights(tf.stop_gradient(_as_loss_vector(per_disc_loss))))

    def value(self, per_disc_loss) -> tf.Tensor:
        """The combined objective, a float32 scalar for logging; its gradient with respect to
        `per_disc_loss` is exactly `weights(per_disc_loss)`."""
        return self._value(_as_loss_vector(per_disc_loss))

    def _weights(self, losses: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def _value(self, losses: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError


COMBINERS: dict[str, type[Combiner]] = {}
register_combiner = _registrar(COMBINERS, "combiner")
register_combiner.__doc__ = ("Class decorator: `@register_combiner(name)` on a `Combiner` subclass makes "
                             "`AdversarialConfig(combiner=name)` (and `--combiner=name`) usable.")


@register_combiner("mean")
class MeanCombiner(Combiner):
    """w_k = 1/K; objective mean_k l_k."""

    def _weights(self, losses):
        return tf.ones_like(losses) / tf.cast(tf.size(losses), tf.float32)

    def _value(self, losses):
        return tf.reduce_mean(losses)


@register_combiner("gman")
class GmanCombiner(Combiner):
    """w = softmax(α·l) (sums to 1, larger loss → larger weight; α = 0 is "mean"); objective Σ_k w_k l_k."""

    def __init__(self, alpha: float = 0.8):
        self.alpha = alpha

    @classmethod
    def from_config(cls, config):
        return cls(alpha=config.gman_alpha)

    def _weights(self, losses):
        return tf.nn.softmax(self.alpha * losses)

    def _value(self, losses):
        return tf.reduce_sum(tf.stop_gradient(tf.nn.softmax(self.alpha * losses)) * losses)


@register_combiner("hypervolume")
class HypervolumeCombiner(Combiner):
    """Objective −Σ_k log(η − l'_k), η = δ·max_k l'_k held constant, l' = l shifted above `floor`
    (see the module docstring); weights 1/(η − l'_k), divided by their sum when `normalize`."""

    def __init__(self, delta: float = 1.5, floor: float = 0.1, normalize: bool = False):
        if not delta > 1.0:
            raise ConfigError(f"hypervolume combiner: `hypervolume_delta` must be > 1, got {delta!r}")
        if not floor > 0.0:
            raise ConfigError(f"hypervolume combiner: `hypervolume_floor` must be > 0, got {floor!r}")
        self.delta, self.floor, self.normalize = delta, floor, normalize

    @classmethod
    def from_config(cls, config):
        return cls(delta=config.hypervolume_delta, normalize=config.hypervolume_normalize)

    def _gaps(self, losses):
        """η − l'_k, with the shift and η as constants (gradient flows only through `losses`)."""
        frozen = tf.stop_gradient(losses)
        shift = tf.maximum(0.0, self.floor - tf.reduce_min(frozen))
        nadir = self.delta * tf.reduce_max(frozen + shift)
        return nadir - shift - losses  # = η − (l_k + c)

    def _weights(self, losses):
        weights = 1.0 / self._gaps(losses)
        return weights / tf.reduce_sum(weights) if self.normalize else weights

    def _value(self, losses):
        gaps = self._gaps(losses)
        value = -tf.reduce_sum(tf.math.log(gaps))
        return value / tf.stop_gradient(tf.reduce_sum(1.0 / gaps)) if self.normalize else value


def build_combiner(name: str, **parameters) -> Combiner:
    """The registered combiner `name` built with keyword `parameters` (e.g. `build_combiner("gman", alpha=0.5)`).

    Raises:
      ConfigError: unknown `name` (the message lists the known ones) or bad parameters.
    """
    return _lookup(COMBINERS, "combiner", name)(**parameters)


def make_combiner(config) -> Combiner:
    """The combiner `config.combiner` with its parameters from `config` (an `AdversarialConfig`), built once.

    Raises:
      ConfigError: unknown combiner (the message lists the known ones) or bad parameters.
    """
    return _lookup(COMBINERS, "combiner", config.combiner).from_config(config)
