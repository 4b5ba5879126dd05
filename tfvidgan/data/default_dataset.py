"""The embedded default dataset: a small bouncing-balls set generated on first use.

Trainers run with no `--data` flag generate it under `<model_dir>/data` (once; a resumed run reuses it),
so the quickstart needs nothing but the package. The CUP reconstructor's default is made the same way:
bouncing-balls scenes turned into (sensed, scene) pairs, with a held-out split from other scenes.
"""
from __future__ import annotations

import os

from absl import logging

from tfvidgan.data import swap
from tfvidgan.data.bouncing_balls import BouncingBallsConfig, generate_dataset
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
    if os.path.isdir(model_dir):
        swap.recover(directory)  # a run killed while swapping its data in: finish that swap
    if os.path.exists(os.path.join(directory, "metadata.json")):
        read_metadata(directory)  # validates
        return directory
    logging.info("No --data given: generating %d bouncing-balls scenes in %s", num_scenes, directory)
    generate_dataset(BouncingBallsConfig(num_scenes=num_scenes, num_frames=num_frames, num_balls=num_balls,
                                         size=size, shards=4, seed=seed), directory, show_progress=False)
    return directory


# The embedded CUP default: 8-frame clips of 32×32 scenes, mild shot and read noise.
DEFAULT_CUP_FRAMES = 8
DEFAULT_CUP_SCENES = {"train": 1500, "test": 500}  # test: enough for --eval_samples (500)


def ensure_cup_dataset(data: str, model_dir: str, split: str = "train") -> str:
    """Returns the CUP pairs to use: `data` if given, else `<model_dir>/data/cup_<split>`, generated if absent.

    The train and test splits come from bouncing-balls scenes of different seeds (no shared scene) and
    share the coding mask (seed 0), as one CUP camera would.
    """
    from tfvidgan.data.cup_pairs import read_cup_metadata
    from tfvidgan.data.cup_simulation import CupPairsConfig, generate_cup_pairs

    if data:
        return data
    directory = os.path.join(model_dir, "data", f"cup_{split}")
    if os.path.isdir(os.path.dirname(directory)):
        swap.recover(directory)
    if os.path.exists(os.path.join(directory, "metadata.json")):
        read_cup_metadata(directory)  # validates
        return directory
    seed = {"train": 0, "test": 1}[split]
    scenes = ensure_dataset("", os.path.join(model_dir, "data", f"balls_{split}"),
                            num_scenes=DEFAULT_CUP_SCENES[split], num_frames=DEFAULT_CUP_FRAMES, seed=seed)
    logging.info("No CUP --data given: simulating CUP pairs in %s", directory)
    generate_cup_pairs(CupPairsConfig(scenes=scenes, num_frames=DEFAULT_CUP_FRAMES, photons=2000.0,
                                      read_noise=0.01, noise_seed=seed, shards=2), directory)
    return directory
