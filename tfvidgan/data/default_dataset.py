"""The embedded default dataset: a small bouncing-balls set generated on first use.

Trainers run with no `--data` flag generate it under `<model_dir>/data` (once; a resumed run reuses it),
so the quickstart needs nothing but the package.
"""
from __future__ import annotations

import os

from absl import logging

from data_tools.make_bouncing_balls import BouncingBallsConfig, generate_dataset
from tfvidgan.data.metadata import read_metadata

# Small enough to generate in seconds on a laptop CPU, large enough not to be memorised quickly.
DEFAULT_SCENES = 2000
DEFAULT_FRAMES = 40


def ensure_dataset(data: str, model_dir: str, *, size: int = 32, num_balls: int = 3,
                   num_scenes: int = DEFAULT_SCENES, num_frames: int = DEFAULT_FRAMES, seed: int = 0) -> str:
    """Returns the dataset to train on: `data` if given, else `<model_dir>/data`, generated if absent."""
    if data:
        return data
    directory = os.path.join(model_dir, "data")
    if os.path.exists(os.path.join(directory, "metadata.json")):
        read_metadata(directory)  # validates
        return directory
    logging.info("No --data given: generating %d bouncing-balls scenes in %s", num_scenes, directory)
    generate_dataset(BouncingBallsConfig(num_scenes=num_scenes, num_frames=num_frames, num_balls=num_balls,
                                         size=size, shards=4, seed=seed), directory, show_progress=False)
    return directory
