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
        noises of `generate(s)` from streams 2·s and 2·s + 1.
    """
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    replica = context.replica_id_in_sync_group if context is not None else 0
    stateless_seed = tf.stack([tf.constant(seed, tf.int64),
                               tf.cast(step, tf.int64) * 1024 + stream])
    # Philox explicitly: the same numbers with and without XLA (the default algorithm differs under XLA).
    everyone = tf.random.stateless_normal([per_replica_batch * replicas, *dims], seed=stateless_seed, alg="philox")
    start = tf.cast(replica, tf.int32) * per_replica_batch
    return everyone[start:start + per_replica_batch]
