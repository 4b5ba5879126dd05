"""Calling a model on a large array a batch at a time (the host-side helper every report and sampler uses)."""

from __future__ import annotations

from typing import Callable

import numpy as np


def map_batches(fn: Callable, x: np.ndarray, batch: int) -> np.ndarray:
    """`fn` applied to consecutive slices of `x` (along axis 0, at most `batch` rows each), results
    concatenated along axis 0 as numpy: `[N, ...] → [N, ...']`. `fn` may return a tensor or an array;
    the last slice may be shorter. `x` must have at least one row."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if len(x) == 0:
        raise ValueError("map_batches needs at least one row")
    return np.concatenate([np.asarray(fn(x[i:i + batch])) for i in range(0, len(x), batch)])
