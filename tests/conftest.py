"""Test set-up: two logical CPU devices, so distribution tests can run two replicas on one CPU.

This must happen before TensorFlow initialises its devices, hence at import time of the conftest.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfvidgan.training.strategy import split_cpu  # noqa: E402

split_cpu(2)

import functools  # noqa: E402

import tensorflow as tf  # noqa: E402


@functools.lru_cache(maxsize=None)
def mirrored_strategy(devices: tuple[str, ...]) -> tf.distribute.MirroredStrategy:
    """The process's one MirroredStrategy over `devices` (a tuple such as ("/cpu:0", "/cpu:1")).

    Collective-op instance keys of two MirroredStrategy objects over the same devices collide inside one
    process ("Shape mismatch in the collective instance ..."), as in real use there is one strategy per
    process; every test module asks here instead of constructing its own.
    """
    return tf.distribute.MirroredStrategy(list(devices))


def tiny_frames_config(**overrides):
    """A 32×32 frames-GAN config small enough to train a few steps in a test (3 discriminators)."""
    from tfvidgan.training.frames_task import FramesGanConfig
    return FramesGanConfig(**{**dict(image_size=32, channels=1, latent_dim=6, generator_filters=8,
                                     num_discriminators=3, discriminator_filters=4, num_sample_images=4),
                              **overrides})


def random_frames_dataset(context, start_step):
    """A `dataset_fn` for `run_training`: 16 fixed uniform-noise 32×32 frames, repeated, batches of 4."""
    import numpy as np
    frames = np.random.default_rng(1).uniform(-1, 1, size=(16, 32, 32, 1)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices(frames).repeat().batch(4, drop_remainder=True)
