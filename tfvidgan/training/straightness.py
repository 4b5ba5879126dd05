"""Latent-line straightness of a frames generator: balls should move in straight lines along straight latent
lines, exact under tf.distribute.

Why: step 2 renders a video by moving through the frames generator's latent space about 0.8–1.6 latent
units per frame. Along straight latent lines at that step the balls of the trained frames generators move
on curved paths (radius about 1 px; `benchmarks/wobble_source.py --fine_step`, `stride_scaling`), so the
sequence generator has to trace curved latent paths to move balls straight, and the videos wobble. This
regulariser asks step 1 for the property directly.

For latents z_i (the generator update's own draw) and random unit directions u_i tangent to the sphere
through z_i (u_i ⊥ z_i, so the three points stay on the prior's typical set to first order), the generator
renders the triple (G(z_i − δu_i), G(z_i), G(z_i + δu_i)), δ = `step` latent units. The penalty is the mean
squared, tanh-squashed centroid acceleration of that 3-frame clip where a whole ball is centred
(`CentroidAccelerations`: window moments, no tracker, differentiable; the gate is a constant):

    penalty = Σ_global g · |tanh(a / unit)|² / Σ_global g

(0 when every ball moves in a straight line at constant speed across the triple, however fast.) It does not
pay for moving balls less per latent unit: only curvature and speed changes cost. Each replica returns its
exact share (local sum ÷ the all-reduced global count of shown pixels), so N replicas compute what one does.

One generator call renders the triples and the update's frames together (`[3b, Z]`, training mode): with
batch norm the statistics are those of the 3b frames, of which the middle third are the GAN's fakes.
"""
from __future__ import annotations

import math

import tensorflow as tf

from tfvidgan.errors import ConfigError
from tfvidgan.models.ensemble_discriminator import CentroidAccelerations, centroid_acceleration_energy
from tfvidgan.training.adversarial import all_reduce_sum

# Latent units between the triple's frames: a video frame's step (the budget video runs' mean latent step is
# about 0.9 on the sphere of radius √100).
DEFAULT_STRAIGHTNESS_STEP = 0.8


def check_straightness(weight: float, step: float) -> None:
    """Raises `ConfigError` naming the flag unless `weight` is finite and >= 0 (0 = off) and `step` > 0."""
    if not (weight >= 0 and math.isfinite(weight)):
        raise ConfigError(f"--straightness_weight must be a finite number >= 0 (0 = off), got {weight}")
    if not (step > 0 and math.isfinite(step)):
        raise ConfigError(f"--straightness_step must be a finite number > 0 (latent units), got {step}")


def latent_triples(z: tf.Tensor, directions: tf.Tensor, step: float) -> tf.Tensor:
    """`[3b, Z]`: (z − δu, z, z + δu) stacked as three blocks of b rows, u the unit component of
    `directions` `[b, Z]` orthogonal to `z` `[b, Z]` (float32), δ = `step`."""
    z = tf.convert_to_tensor(z, tf.float32)
    d = tf.convert_to_tensor(directions, tf.float32)
    d = d - tf.reduce_sum(d * z, axis=1, keepdims=True) / tf.maximum(
        tf.reduce_sum(z * z, axis=1, keepdims=True), 1e-12) * z
    u = d / tf.maximum(tf.norm(d, axis=1, keepdims=True), 1e-12)
    return tf.concat([z - step * u, z, z + step * u], axis=0)


def as_clips(frames: tf.Tensor) -> tf.Tensor:
    """The generator's output for `latent_triples` (`[3b, H, W, C]`) as 3-frame clips `[b, 3, H, W, C]`."""
    return tf.stack(tf.split(frames, 3, axis=0), axis=1)


class StraightnessRegularizer:
    """The penalty above. `__call__` runs in the replica context of the generator update."""

    def __init__(self, weight: float, step: float = DEFAULT_STRAIGHTNESS_STEP, layer=None):
        check_straightness(weight, step)
        self.weight, self.step = float(weight), float(step)
        self.layer = layer or CentroidAccelerations()

    def __call__(self, clips: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """`(term, penalty)` for this replica's triples `[b, 3, H, W, C]` in [-1, 1]: `term` = weight ×
        this replica's share of the penalty (the shares sum over the replicas to weight × penalty, and so do
        their gradients); `penalty` the global value (float32 scalar, no gradient), the same on every
        replica."""
        local, local_shown = centroid_acceleration_energy(tf.cast(clips, tf.float32), self.layer)
        local_sum, shown = tf.unstack(all_reduce_sum(tf.stop_gradient(tf.stack([local, local_shown]))))
        shown = tf.maximum(shown, 1.0)
        return self.weight * local / shown, local_sum / shown
