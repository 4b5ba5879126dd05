"""Path-length regularisation of a generator (Karras et al. 2020, "Analyzing and improving the image quality
of StyleGAN", §3.2), exact under tf.distribute.

For a latent z and an image-space direction y ~ N(0, I) / √(H·W), the path length of the generator G at z
is a(z, y) = ||J_zᵀ y||₂ with J_z = ∂G(z)/∂z, computed as one gradient: ∇_z Σ G(z) ⊙ y. The regulariser

    Σ_i (a_i − ā)² / global batch,       ā ← ā + decay · (mean_global(a) − ā)   (a running mean, `decay` 0.01)

is smallest when every latent step of a given length changes the image by the same amount, whatever the
point and direction (J_z orthogonal up to one global scale). Why it matters here: the video generator moves
along latent paths of the frames generator; with an uneven Jacobian an even latent path renders uneven
motion (`benchmarks/wobble_source.py`: straight latent lines wobble 0.82 px per px/frame of speed).
Measured on bouncing balls (docs/experiments_frames.md, "Path-length regularisation"): at weight 2 the discriminators win and
the GAN collapses; at 0.2 the frame changes along even paths are steadier, the balls' motion is not.

Data parallelism: the running mean is updated with the GLOBAL batch mean of a (an all-reduce) and the
penalty is a per-replica sum divided by the global batch, so a step on N replicas is the same computation
as on one replica with the N-times batch. The directions y are each replica's slice of one global draw
(`replica_normal`). With batch-normalised generators (training mode), G(z_i) depends on the other samples
through the batch statistics, so ∇_z also holds those O(1/batch) cross terms; they enter identically on
1 and N replicas under synchronised batch norm.
"""
from __future__ import annotations

import tensorflow as tf

from tfvidgan.errors import ConfigError
from tfvidgan.training.adversarial import all_reduce_sum
from tfvidgan.training.noise import replica_normal

# The running mean's update rate (StyleGAN2's `pl_decay`).
PATH_LENGTH_DECAY = 0.01


def check_weight(weight: float) -> None:
    """Raises `ConfigError` naming `--path_length_weight` unless it is a finite number >= 0 (0 = off)."""
    if not weight >= 0 or weight == float("inf"):
        raise ConfigError(f"--path_length_weight must be a finite number >= 0 (0 = off), got {weight}")


def path_lengths(render, z: tf.Tensor, directions: tf.Tensor) -> tuple:
    """`(images, lengths)`: `render(z)` and a_i = ||J_{z_i}ᵀ y_i||₂ for each sample.

    Args:
      render: `[b, Z] → [b, H, W, C]`, the generator call (e.g. `lambda z: generator(z, training=True)`).
        It may render more rows in the same call and return the b rows of `z` (the frames task renders the
        straightness triples and the update's frames at once, so batch norm updates its statistics once);
        the lengths are then those of the returned rows.
      z: `[b, Z]` float32 latents.
      directions: `[b, H, W, C]` float32, the y_i (already scaled, e.g. N(0, 1) / √(H·W)).
    Returns:
      images `[b, H, W, C]` (the generator's dtype; differentiable w.r.t. its weights) and lengths `[b]`
      float32, differentiable w.r.t. the generator's weights (double backpropagation).
    """
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(z)
        images = render(z)
        projection = tf.reduce_sum(tf.cast(images, tf.float32) * directions)
    gradient = tape.gradient(projection, z)
    return images, tf.sqrt(tf.reduce_sum(tf.square(gradient), axis=1) + 1e-12)


class PathLengthRegularizer:
    """The regulariser and its running mean ā (a checkpointed, non-trainable float32 scalar).

    Create it inside the strategy scope (the running mean is a mirrored variable); call it in the replica
    context of the generator update, once per training step.
    """

    def __init__(self, weight: float, decay: float = PATH_LENGTH_DECAY):
        check_weight(weight)
        if not 0.0 < decay <= 1.0:
            raise ConfigError(f"path-length decay must be in (0, 1], got {decay}")
        self.weight, self.decay = float(weight), float(decay)
        self.mean = tf.Variable(0.0, trainable=False, dtype=tf.float32, name="path_length_mean",
                                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    def directions(self, batch: int, image_shape, seed: int, step, stream: int) -> tf.Tensor:
        """`[batch, H, W, C]` float32 ~ N(0, 1) / √(H·W): this replica's slice of the step's global draw."""
        h, w = int(image_shape[0]), int(image_shape[1])
        return replica_normal(batch, list(image_shape), seed, step, stream) / tf.sqrt(float(h * w))

    def __call__(self, lengths: tf.Tensor, global_batch: int) -> tuple:
        """`(term, penalty)` for this replica's `lengths` `[b]`: `term` = weight · penalty, the generator's
        objective term; `penalty` = Σ_i (a_i − ā)² / global batch (this replica's share: the sum over
        replicas is the global mean). Updates ā with the global batch mean of the lengths first (ā is
        then held constant in the penalty's gradient)."""
        total = all_reduce_sum(tf.reduce_sum(tf.stop_gradient(lengths)))
        mean = self.mean + self.decay * (total / global_batch - self.mean)
        self.mean.assign(mean)
        penalty = tf.reduce_sum(tf.square(lengths - tf.stop_gradient(mean))) / global_batch
        return self.weight * penalty, penalty
