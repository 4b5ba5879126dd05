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
