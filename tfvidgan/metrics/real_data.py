"""Real frames and clips (with ground-truth ball positions) drawn reproducibly for evaluation."""
from __future__ import annotations

import hashlib
import json
from typing import Mapping

import numpy as np

from tfvidgan.data import readers
from tfvidgan.data.metadata import read_metadata
from tfvidgan.errors import ConfigError, DatasetError


def expected_balls(data: str) -> int:
    """How many balls every scene of the dataset `data` (directory or glob, `--data`) holds, from its metadata.

    Raises:
      ConfigError naming `--data` when it has none (num_balls = 0: scenes made from videos): the physics
      columns count and track balls. DatasetError naming the file when the metadata is missing or invalid.
    """
    balls = read_metadata(data).num_balls
    if balls < 1:
        raise ConfigError(f"--data={data!r} has no balls (num_balls = 0: scenes made from videos): the physics "
                          "columns count and track them")
    return balls


def _scenes(pattern: str, count: int):
    for i, scene in enumerate(readers.scenes_dataset(pattern).as_numpy_iterator()):
        if i >= count:
            return
        yield scene


def real_frames(pattern: str, count: int, seed: int, first_scene: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` frames, one random frame from each of the scenes `first_scene, first_scene + 1, …`.

    Returns `(frames [count, H, W, C] float32 in [-1, 1], positions [count, balls, 2] float32)`.
    Raises DatasetError if the dataset has fewer than `first_scene + count` scenes.
    """
    rng = np.random.default_rng(seed)
    frames, positions = [], []
    for i, scene in enumerate(_scenes(pattern, first_scene + count)):
        if i < first_scene:
            continue
        t = rng.integers(scene["frames"].shape[0])
        frames.append(scene["frames"][t])
        positions.append(scene["positions"][t])
    if len(frames) < count:
        raise DatasetError(f"{pattern}: needs {first_scene + count} scenes for this evaluation, "
                           f"found {first_scene + len(frames)}; lower --num_samples")
    return np.stack(frames), np.stack(positions)


def real_clips(pattern: str, count: int, clip_length: int, seed: int,
               first_scene: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` clips of `clip_length` frames at random offsets, one per scene from `first_scene` on.

    Returns `(clips [count, T, H, W, C] float32 in [-1, 1], positions [count, T, balls, 2])`.
    """
    rng = np.random.default_rng(seed)
    clips, positions = [], []
    for i, scene in enumerate(_scenes(pattern, first_scene + count)):
        if i < first_scene:
            continue
        length = scene["frames"].shape[0]
        if clip_length > length:
            raise DatasetError(f"{pattern}: clips of {clip_length} frames requested, scenes have {length}")
        start = rng.integers(length - clip_length + 1)
        clips.append(scene["frames"][start:start + clip_length])
        positions.append(scene["positions"][start:start + clip_length])
    if len(clips) < count:
        raise DatasetError(f"{pattern}: needs {first_scene + count} scenes for this evaluation, "
                           f"found {first_scene + len(clips)}; lower --num_samples")
    return np.stack(clips), np.stack(positions)


# Generator settings that do not change any scene's content (scene i depends only on the rest).
_SCENE_INDEPENDENT_FIELDS = ("num_scenes", "shards", "workers", "overwrite", "output_dir")


def dataset_fingerprint(metadata) -> str:
    """8 hex digits identifying the CONTENT of a dataset's scenes (for Fréchet-encoder cache names).

    Hashes every generator setting recorded in `metadata.generator["config"]` (radius, speeds, scene
    length, channels, ...) except those that do not change any scene, plus the metadata's size, channels,
    balls, radius, seed and frames per scene. Two datasets share a fingerprint iff their scenes agree.
    """
    generator = metadata.generator if isinstance(metadata.generator, Mapping) else {}
    settings = dict(generator.get("config", {}) or {})
    for key in _SCENE_INDEPENDENT_FIELDS:
        settings.pop(key, None)
    settings.update(size=metadata.size, channels=metadata.channels, num_balls=metadata.num_balls,
                    radius=metadata.radius, seed=metadata.seed, scene_frames=metadata.num_frames)
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]
