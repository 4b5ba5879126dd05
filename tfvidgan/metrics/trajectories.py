"""Analysis of latent trajectories `[B, T, Z]` emitted by the sequence generator.

A good sequence generator should walk the frames generator's latent space *smoothly* (small, even
steps), not hop between distant latents. These functions quantify that and embed the trajectories in
2-D (Isomap) for plotting next to the straight-line interpolation between each trajectory's ends.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.manifold import Isomap

from tfvidgan.errors import ConfigError, DatasetError

__all__ = [
    "isomap_embedding",
    "joint_isomap_embedding",
    "linear_interpolation",
    "trajectory_statistics",
]


def _check_trajectories(trajectories, name: str = "trajectories", min_steps: int = 2) -> np.ndarray:
    x = np.asarray(trajectories, dtype=np.float64)
    if x.ndim != 3 or x.shape[0] < 1 or x.shape[1] < min_steps or x.shape[2] < 1:
        raise DatasetError(f"{name} must have shape [B>=1, T>={min_steps}, Z>=1], got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DatasetError(f"{name} contains NaN or infinite values")
    return x


def joint_isomap_embedding(
    trajectory_sets: Sequence, n_neighbors: int = 10, n_components: int = 2
) -> list[np.ndarray]:
    """Embeds several trajectory sets with ONE Isomap fit so that they share coordinates.

    Args:
      trajectory_sets: arrays `[B_i, T_i, Z]` (same Z), e.g. generated trajectories and their linear
        interpolations.
      n_neighbors: Isomap neighbourhood size; must be < the total number of points.
      n_components: embedding dimension.

    Returns:
      One `[B_i, T_i, n_components] float64` array per input set.
    """
    named = [(f"trajectory_sets[{i}]", s) for i, s in enumerate(trajectory_sets)]
    return _embed(named, n_neighbors, n_components)


def _embed(named_sets, n_neighbors: int, n_components: int) -> list[np.ndarray]:
    sets = [_check_trajectories(s, name, 1) for name, s in named_sets]
    if not sets:
        raise DatasetError("trajectory_sets is empty")
    if len({s.shape[2] for s in sets}) != 1:
        raise DatasetError(f"trajectory_sets differ in latent size Z: {[s.shape[2] for s in sets]}")
    points = np.concatenate([s.reshape(-1, s.shape[2]) for s in sets], axis=0)
    if n_components < 1:
        raise ConfigError(f"n_components must be >= 1, got {n_components!r}")
    if not 1 <= n_neighbors < points.shape[0]:
        raise ConfigError(
            f"n_neighbors must be in [1, number of points = {points.shape[0]}), got {n_neighbors!r}"
        )
    embedded = Isomap(n_neighbors=n_neighbors, n_components=n_components).fit_transform(points)
    out, start = [], 0
    for s in sets:
        count = s.shape[0] * s.shape[1]
        out.append(embedded[start : start + count].reshape(s.shape[0], s.shape[1], n_components))
        start += count
    return out


def isomap_embedding(trajectories, n_neighbors: int = 10, n_components: int = 2) -> np.ndarray:
    """Isomap embedding fitted on all points of all trajectories.

    Args:
      trajectories: `[B, T, Z]` float latents.
      n_neighbors: Isomap neighbourhood size; must be < B * T.
      n_components: embedding dimension.

    Returns:
      `[B, T, n_components] float64`. To compare two sets in the same coordinates use
      `joint_isomap_embedding`.
    """
    return _embed([("trajectories", trajectories)], n_neighbors, n_components)[0]


def linear_interpolation(trajectories) -> np.ndarray:
    """Straight lines between each trajectory's first and last latent, with the same number of steps.

    `out[b, t] = (1 - a_t) * z[b, 0] + a_t * z[b, T-1]` with `a_t = t / (T - 1)` (for T = 1, a copy).

    Args:
      trajectories: `[B, T, Z]` float latents.

    Returns:
      `[B, T, Z] float64`, evenly spaced points: the smooth baseline a generator's trajectory is
      compared with.
    """
    x = _check_trajectories(trajectories, min_steps=1)
    t = x.shape[1]
    if t == 1:
        return x.copy()
    alpha = (np.arange(t, dtype=np.float64) / (t - 1))[None, :, None]
    return (1.0 - alpha) * x[:, :1] + alpha * x[:, -1:]


def trajectory_statistics(trajectories) -> dict:
    """Numbers that tell a smooth walk from a jumpy one.

    With steps `s_t = |z_{t+1} - z_t|` (Euclidean, t = 0..T-2) of each trajectory:
      * "path_length_ratio": path length `sum_t s_t` / end-to-end distance `|z_{T-1} - z_0|`.
        1 for a straight line; larger for detours (inf if the ends coincide but the path moves).
      * "max_to_median_step": `max_t s_t / median_t s_t`. 1 for even steps; a single jump makes it large.
      * "step_cv": coefficient of variation `std_t s_t / mean_t s_t`. 0 for even steps.
      * "mean_step", "max_step": mean and largest step length (latent units).
      * "mean_turn_degrees": mean angle between consecutive steps (0 for a straight line; 90 on average
        for a random walk in high dimension). Needs T >= 3, otherwise NaN.
    Each ratio is computed per trajectory and then averaged over the batch (mean); a trajectory with all
    steps zero contributes NaN to the ratios.

    Args:
      trajectories: `[B, T, Z]` float latents, T >= 2.

    Returns:
      A dict of Python floats.
    """
    x = _check_trajectories(trajectories)
    diffs = np.diff(x, axis=1)  # [B, T-1, Z]
    steps = np.linalg.norm(diffs, axis=-1)  # [B, T-1]
    path = steps.sum(axis=1)
    end_to_end = np.linalg.norm(x[:, -1] - x[:, 0], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        path_ratio = np.where(path > 0, path / end_to_end, np.nan)
        mean_step = steps.mean(axis=1)
        max_to_median = steps.max(axis=1) / np.median(steps, axis=1)
        max_to_median = np.where(mean_step > 0, max_to_median, np.nan)
        step_cv = np.where(mean_step > 0, steps.std(axis=1) / mean_step, np.nan)
        if x.shape[1] >= 3:
            a, b = diffs[:, :-1], diffs[:, 1:]
            cos = np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
            turn = float(np.nanmean(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))) if np.any(
                np.isfinite(cos)
            ) else float("nan")
        else:
            turn = float("nan")
    return {
        "path_length_ratio": float(np.mean(path_ratio)),
        "max_to_median_step": float(np.mean(max_to_median)),
        "step_cv": float(np.mean(step_cv)),
        "mean_step": float(steps.mean()),
        "max_step": float(steps.max()),
        "mean_turn_degrees": turn,
    }
