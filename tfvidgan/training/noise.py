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
    replicas, replica = _replicas()
    # Philox explicitly: the same numbers with and without XLA (the default algorithm differs under XLA).
    everyone = tf.random.stateless_normal([per_replica_batch * replicas, *dims], seed=step_seed(seed, step, stream),
                                          alg="philox")
    start = tf.cast(replica, tf.int32) * per_replica_batch
    return everyone[start:start + per_replica_batch]


def replica_uniform_int(per_replica_batch: int, maxval, seed: int, step, stream: int) -> tf.Tensor:
    """`[per_replica_batch] int32`, uniform on {0, …, maxval − 1}: this replica's slice of a global draw.

    Same seeding and slicing as `replica_normal` (so N replicas draw what one replica with N times the
    batch draws); `maxval` (>= 1) may be a scalar int32 tensor.
    """
    replicas, replica = _replicas()
    everyone = tf.random.stateless_uniform([per_replica_batch * replicas], seed=step_seed(seed, step, stream),
                                           minval=0, maxval=tf.cast(maxval, tf.int32), dtype=tf.int32,
                                           alg="philox")
    start = tf.cast(replica, tf.int32) * per_replica_batch
    return everyone[start:start + per_replica_batch]


def step_seed(seed: int, step, stream: int) -> tf.Tensor:
    """The stateless seed `[seed, step · 1024 + stream]` (int64 `[2]`) of one stream of one step."""
    return tf.stack([tf.constant(seed, tf.int64), tf.cast(step, tf.int64) * 1024 + stream])


def _replicas() -> tuple:
    context = tf.distribute.get_replica_context()
    if context is None:
        return 1, 0
    return context.num_replicas_in_sync, context.replica_id_in_sync_group
