"""`python -m tfvidgan.evaluate frames`: how ball-like are a frames generator's samples?

Rows: the trained generator, the same architecture UNTRAINED (fresh initialisation: the ceiling),
and held-out real frames (the floor). Each row: fraction of frames with exactly the expected number of
balls, blob area mean/spread, and the Fréchet distance to real frames in the feature space of a small
encoder trained on real frames (`tfvidgan.metrics.frechet`).
"""
from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tfvidgan.data.metadata import read_metadata
from tfvidgan.metrics.balls import frame_statistics
from tfvidgan.metrics.frechet import (ENCODER_SEED, encoder_frechet_distance, load_or_train_encoder,
                                      train_frame_encoder)
from tfvidgan.metrics.real_data import real_frames
from tfvidgan.training.frames_task import load_frames_generator


@dataclasses.dataclass(frozen=True)
class FramesEvalConfig:
    export_dir: str
    data: str
    num_samples: int = 1000
    encoder_samples: int = 1000
    encoder_steps: int = 300
    encoder_cache: str = "eval_cache"
    seed: int = 0


def _generate(generator: keras.Model, z: np.ndarray, batch: int = 256) -> np.ndarray:
    return np.concatenate([generator(z[i:i + batch], training=False).numpy() for i in range(0, len(z), batch)])


def evaluate_frames(config: FramesEvalConfig) -> dict:
    """Returns `{"generated": {...}, "untrained_generator": {...}, "real": {...}, "settings": {...}}`."""
    metadata = read_metadata(config.data)
    n = config.num_samples
    # Disjoint scenes: encoder training | real reference | held-out real row.
    # The encoder depends only on the data and its settings (fixed seed), so its cache name determines it.
    train_frames, train_positions = real_frames(config.data, config.encoder_samples, ENCODER_SEED)
    reference, _ = real_frames(config.data, n, config.seed + 1, first_scene=config.encoder_samples)
    held_out, _ = real_frames(config.data, n, config.seed + 2, first_scene=config.encoder_samples + n)
    name = (f"frame_encoder_s{metadata.size}_b{metadata.num_balls}_seed{metadata.seed}_"
            f"n{config.encoder_samples}_steps{config.encoder_steps}")
    encoder = load_or_train_encoder(config.encoder_cache, name, lambda: train_frame_encoder(
        train_frames, train_positions, steps=config.encoder_steps, seed=ENCODER_SEED))

    generator, description = load_frames_generator(config.export_dir)
    z = tf.random.stateless_normal([n, description["latent_dim"]], seed=[config.seed, 77]).numpy()
    keras.utils.set_random_seed(config.seed)
    untrained = keras.models.clone_model(generator)  # same architecture, fresh initial weights
    rows = {"generated": _generate(generator, z), "untrained_generator": _generate(untrained, z),
            "real": held_out}
    report = {}
    for row, frames in rows.items():
        stats = frame_statistics(frames, metadata.num_balls)
        stats["frechet_distance"] = encoder_frechet_distance(encoder, reference, frames)
        report[row] = stats
    report["settings"] = {**dataclasses.asdict(config), "expected_balls": metadata.num_balls,
                          "encoder": name}
    return report
