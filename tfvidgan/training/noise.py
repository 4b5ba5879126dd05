"""Per-replica latent noise that is reproducible and different on every replica.

Each step draws the noise of the WHOLE global batch from a stateless generator seeded by
(seed, step, stream) and every replica keeps only its own slice. Hence:
  * replicas never train on copies of each other's noise (a shared `keras.random.SeedGenerator` would);
  * N replicas with per-replica batch b see exactly the noise one replica with batch N·b would see, so a
    step is the same computation whatever the number of replicas;
  * a resumed run draws the same noise as an uninterrupted one (the step is checkpointed).
"""
from __future__ import annotations

import tensorflow as tf


def replica_normal(per_replica_batch: int, dims, seed: int, step, stream: int) -> tf.Tensor:
    """`[per_replica_batch, *dims] float32` ~ N(0, 1), this replica's slice of the global batch's noise.

    Args:
      per_replica_batch: b, the batch of one replica (static).
      dims: shape of one example's noise, e.g. `[Z]` or `[T, Z]`.
      seed: the run's noise seed.
      step: the global step (int tensor); changes the draw every step.
      stream: which independent stream within the step, 0 <= stream < 1024 (the seed's second word is
        `step * 1024 + stream`). `adversarial.train_step` asks its `generate(stream)` for stream 0 in the
        generator update and 2 + i in discriminator step i (1 is unused); the video task draws its two
        noises of `generate(s)` from streams 2·s and 2·s + 1, its rollout length from 512 + s and its
        rollout windows' offsets from 768 + s (`replica_uniform_int`).
    """
    # Philox explicitly: the same numbers with and without XLA (the default algorithm differs under XLA).
    return _this_replicas_slice(
        lambda global_batch: tf.random.stateless_normal([global_batch, *dims], seed=step_seed(seed, step, stream),
                                                        alg="philox"),
        per_replica_batch)


def replica_uniform_int(per_replica_batch: int, maxval, seed: int, step, stream: int) -> tf.Tensor:
    """`[per_replica_batch] int32`, uniform on {0, …, maxval − 1}: this replica's slice of a global draw.

    Same seeding and slicing as `replica_normal` (so N replicas draw what one replica with N times the
    batch draws); `maxval` (>= 1) may be a scalar int32 tensor.
    """
    return _this_replicas_slice(
        lambda global_batch: tf.random.stateless_uniform([global_batch], seed=step_seed(seed, step, stream), minval=0,
                                                         maxval=tf.cast(maxval, tf.int32), dtype=tf.int32,
                                                         alg="philox"),
        per_replica_batch)


def step_seed(seed: int, step, stream) -> tf.Tensor:
    """The stateless seed `[seed, step · 1024 + stream]` (int64 `[2]`) of one stream of one step; `stream`
    (0 <= stream < 1024) may be an int or an integer tensor (e.g. the replica id)."""
    return tf.stack([tf.constant(seed, tf.int64), tf.cast(step, tf.int64) * 1024 + tf.cast(stream, tf.int64)])


def _this_replicas_slice(draw, per_replica_batch: int) -> tf.Tensor:
    """Rows `[r·b, (r+1)·b)` of `draw(b · replicas)`, r this replica's id and b `per_replica_batch`."""
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    replica = context.replica_id_in_sync_group if context is not None else 0
    start = tf.cast(replica, tf.int32) * per_replica_batch
    return draw(per_replica_batch * replicas)[start:start + per_replica_batch]
