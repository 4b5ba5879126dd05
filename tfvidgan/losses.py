"""GAN losses and the combiners of K discriminators' generator losses, as swappable parts.

Losses are per example AND per discriminator: logits `[B, K]` → losses `[B, K]` float32, with NO
reduction over the batch (the trainer divides by the GLOBAL batch size, e.g. with
`tf.nn.compute_average_loss`, so that the sum over replicas is the global mean).

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
2. `generator_loss_weights(per_disc_loss, method)` returns constant weights `w` `[K]`;
3. the trainer minimises `Σ_k w_k · l_k` with per-example `l` scaled by 1/global batch; its
   gradient is `Σ_k w_k ∇ l̄_k`, identical on any number of replicas.

`combined_generator_loss_value` is the value of the combined objective for logging; its
gradient with respect to `per_disc_loss` is exactly `generator_loss_weights(...)` (weights and
the nadir point are held constant, as in the papers).

Methods (`method=`):
- "mean": w_k = 1/K; objective mean_k l_k.
- "gman" (Durugkar et al. 2017, soft-mean): w = softmax(α·l) (α = `gman_alpha`, sums to 1,
  larger loss → larger weight; α = 0 is "mean"); objective Σ_k w_k l_k with w held constant.
- "hypervolume" (Albuquerque et al. 2019): objective −Σ_k log(η − l_k) with the nadir point
  η = δ·max_k l_k (δ = `hypervolume_delta` > 1) held constant; its exact gradient weights are
  w_k = 1/(η − l_k) (larger loss → larger weight). These are NOT normalised (their sum is
  ≈ K/((δ−1)·l) for equal losses, so the effective learning rate scales with K);
  `hypervolume_normalize=True` divides them by their sum (what the authors' hGAN code does),
  i.e. the objective is divided by the constant Σ_j 1/(η − l_j).

  Losses ≤ 0 (hinge: l = −f can have any sign) would make η ≤ max l meaningless, so the losses
  are first shifted by the constant c = max(0, floor − min_k l_k), floor = `hypervolume_floor`
  (default 0.1): l'_k = l_k + c ≥ floor > 0 and η = δ·max_k l'_k. The shift is a constant, so
  ∇ l'_k = ∇ l_k, and it is zero (exactly the paper's formula) whenever all losses are ≥ floor,
  which is the usual case for non-saturating losses (≈ log 2 at equilibrium). The shift is
  continuous in the losses and bounds every weight by 1/((δ − 1)·floor).
"""

from __future__ import annotations

import tensorflow as tf

from tfvidgan.errors import ConfigError

LOSS_KINDS = ("non_saturating", "hinge")
COMBINE_METHODS = ("mean", "gman", "hypervolume")


def _check_kind(kind: str, caller: str) -> None:
    if kind not in LOSS_KINDS:
        raise ConfigError(f"{caller}: `kind` must be one of {LOSS_KINDS}, got {kind!r}")


def _check_method(method: str, hypervolume_delta: float, hypervolume_floor: float, caller: str) -> None:
    if method not in COMBINE_METHODS:
        raise ConfigError(f"{caller}: `method` must be one of {COMBINE_METHODS}, got {method!r}")
    if method == "hypervolume":
        if not hypervolume_delta > 1.0:
            raise ConfigError(f"{caller}: `hypervolume_delta` must be > 1, got {hypervolume_delta!r}")
        if not hypervolume_floor > 0.0:
            raise ConfigError(f"{caller}: `hypervolume_floor` must be > 0, got {hypervolume_floor!r}")


def discriminator_loss(real_logits, fake_logits, kind: str = "non_saturating") -> tf.Tensor:
    """Per-example, per-discriminator discriminator loss.

    Args:
      real_logits: `[B, K]` logits of the K discriminators on real data (any float dtype).
      fake_logits: `[B, K]` logits on generated data (same shape).
      kind: "non_saturating" (binary cross-entropy on logits) or "hinge".

    Returns:
      `[B, K]` float32 ≥ 0, not reduced over the batch.

    Raises:
      ConfigError: unknown `kind`.
    """
    _check_kind(kind, "discriminator_loss")
    real = tf.cast(real_logits, tf.float32)
    fake = tf.cast(fake_logits, tf.float32)
    if kind == "non_saturating":
        return tf.nn.softplus(-real) + tf.nn.softplus(fake)
    return tf.nn.relu(1.0 - real) + tf.nn.relu(1.0 + fake)


def generator_loss(fake_logits, kind: str = "non_saturating") -> tf.Tensor:
    """Per-example, per-discriminator generator loss.

    Args:
      fake_logits: `[B, K]` logits of the K discriminators on generated data.
      kind: "non_saturating" (softplus(−f) ≥ 0) or "hinge" (−f, any sign).

    Returns:
      `[B, K]` float32, not reduced over the batch.

    Raises:
      ConfigError: unknown `kind`.
    """
    _check_kind(kind, "generator_loss")
    fake = tf.cast(fake_logits, tf.float32)
    if kind == "non_saturating":
        return tf.nn.softplus(-fake)
    return -fake


def _as_loss_vector(per_disc_loss, caller: str) -> tf.Tensor:
    losses = tf.convert_to_tensor(per_disc_loss)
    if losses.shape.rank != 1:
        raise ConfigError(f"{caller}: `per_disc_loss` must be a [K] vector, got shape {losses.shape}")
    return tf.cast(losses, tf.float32)


def _hypervolume_gaps(losses, delta: float, floor: float) -> tf.Tensor:
    """η − l'_k, with the shift and η as constants (gradient flows only through `losses`)."""
    frozen = tf.stop_gradient(losses)
    shift = tf.maximum(0.0, floor - tf.reduce_min(frozen))
    nadir = delta * tf.reduce_max(frozen + shift)
    return nadir - shift - losses  # = η − (l_k + c)


def generator_loss_weights(
    per_disc_loss,
    method: str = "mean",
    gman_alpha: float = 0.8,
    hypervolume_delta: float = 1.5,
    hypervolume_floor: float = 0.1,
    hypervolume_normalize: bool = False,
) -> tf.Tensor:
    """Constant weights w `[K]` such that the generator's gradient is Σ_k w_k ∇ l_k.

    Args:
      per_disc_loss: `[K]` generator loss of each discriminator averaged over the GLOBAL batch
        (all-reduced by the trainer, so all replicas compute identical weights).
      method: "mean", "gman" or "hypervolume" (see the module docstring).
      gman_alpha: GMAN softmax temperature α (weights = softmax(α·l)).
      hypervolume_delta: δ > 1, nadir point η = δ·max_k l'_k.
      hypervolume_floor: > 0, losses are shifted so that their minimum is at least this.
      hypervolume_normalize: divide the hypervolume weights by their sum.

    Returns:
      `[K]` float32 weights, all > 0, wrapped in `tf.stop_gradient`. "mean" and "gman" (and
      normalised "hypervolume") sum to 1.

    Raises:
      ConfigError: unknown `method`, `hypervolume_delta` ≤ 1, `hypervolume_floor` ≤ 0, or
        `per_disc_loss` not a vector.
    """
    caller = "generator_loss_weights"
    _check_method(method, hypervolume_delta, hypervolume_floor, caller)
    losses = tf.stop_gradient(_as_loss_vector(per_disc_loss, caller))
    if method == "mean":
        weights = tf.ones_like(losses) / tf.cast(tf.size(losses), tf.float32)
    elif method == "gman":
        weights = tf.nn.softmax(gman_alpha * losses)
    else:
        weights = 1.0 / _hypervolume_gaps(losses, hypervolume_delta, hypervolume_floor)
        if hypervolume_normalize:
            weights = weights / tf.reduce_sum(weights)
    return tf.stop_gradient(weights)


def combined_generator_loss_value(
    per_disc_loss,
    method: str = "mean",
    gman_alpha: float = 0.8,
    hypervolume_delta: float = 1.5,
    hypervolume_floor: float = 0.1,
    hypervolume_normalize: bool = False,
) -> tf.Tensor:
    """The combined generator objective (scalar float32) for logging.

    "mean": mean_k l_k; "gman": Σ_k w_k l_k; "hypervolume": −Σ_k log(η − l'_k) (divided by the
    constant Σ_k 1/(η − l'_k) if normalised). Weights, shift and nadir point are held constant,
    so d(value)/d(per_disc_loss) == `generator_loss_weights(...)` with the same arguments.
    Arguments and errors as in `generator_loss_weights`.
    """
    caller = "combined_generator_loss_value"
    _check_method(method, hypervolume_delta, hypervolume_floor, caller)
    losses = _as_loss_vector(per_disc_loss, caller)
    if method == "mean":
        return tf.reduce_mean(losses)
    if method == "gman":
        weights = tf.stop_gradient(tf.nn.softmax(gman_alpha * losses))
        return tf.reduce_sum(weights * losses)
    gaps = _hypervolume_gaps(losses, hypervolume_delta, hypervolume_floor)
    value = -tf.reduce_sum(tf.math.log(gaps))
    if hypervolume_normalize:
        value = value / tf.stop_gradient(tf.reduce_sum(1.0 / gaps))
    return value
