"""Test set-up: two logical CPU devices, so distribution tests can run two replicas on one CPU.

This must happen before TensorFlow initialises its devices, hence at import time of the conftest.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfvidgan.training.strategy import split_cpu  # noqa: E402

split_cpu(2)
