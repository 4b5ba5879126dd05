"""`python -m tfvidgan.evaluate frames`: how ball-like are a frames generator's samples?

Rows:
* "generated": the trained generator as exported (the EMA weights when the run used EMA);
* "generated_raw_weights": the same run's non-averaged generator (only when the export has one);
* "generated_rejection": the generator refined by its own discriminators at sampling time (discriminator
  rejection sampling, `tfvidgan.rejection`; only when the export carries the discriminators and
  `rejection_acceptance` > 0); report["rejection"] says how many candidates it drew per kept sample;
* "untrained_generator": the same architecture with fresh weights (the ceiling);
* "real": held-out real frames (the floor);
* "collapsed": ONE real frame repeated for every sample — a mode-collapsed generator of perfect frames.
  It scores at least as well as real data on the ball counts and areas and must FAIL the Fréchet
  distance: read the count/area columns only beside the Fréchet distance.
Each row: fraction of frames with exactly the expected number of balls, blob area mean/spread, and the
Fréchet distance to real frames in the feature space of a small encoder trained on real frames
(`tfvidgan.metrics.frechet`); every row but "real" also has "vs_real" (|row − real| of `FRAME_COLUMNS`)
and "area_spread_ratio" (its blob-area spread over the real one).
"""
from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tfvidgan.batching import map_batches
from tfvidgan.data.metadata import read_metadata
from tfvidgan.export import load_frames_generator, selection_of_draw
from tfvidgan.metrics.balls import frame_statistics
from tfvidgan.metrics.frechet import ENCODER_SEED, encoder_frechet_distance, load_or_train_encoder, train_frame_encoder
from tfvidgan.metrics.real_data import dataset_fingerprint, real_frames
from tfvidgan.rejection import RejectionConfig

FRAME_COLUMNS = ("fraction_expected_count", "count_mean", "blob_area_mean", "blob_area_std")
NO_BALLS = ("ball statistics (counts, blob areas, vs_real) need ball positions, but this dataset has none "
            "(num_balls = 0: scenes made from videos); only the Fréchet distance is reported, its encoder "
            "trained on the frame layout alone")


def frame_encoder_name(metadata, encoder_samples: int, encoder_steps: int) -> str:
    """Cache file stem of the frame encoder: every dataset setting that changes the frames is in it."""
    return (f"frame_encoder_s{metadata.size}_c{metadata.channels}_b{metadata.num_balls}_seed{metadata.seed}_"
            f"{dataset_fingerprint(metadata)}_n{encoder_samples}_steps{encoder_steps}")


@dataclasses.dataclass(frozen=True)
class FramesEvalConfig:
    export_dir: str
    data: str
    num_samples: int = 1000
    encoder_samples: int = 1000
    encoder_steps: int = 300
    encoder_cache: str = "eval_cache"
    seed: int = 0
    # Row "generated_rejection": discriminator rejection sampling keeping this fraction of candidates
    # (`tfvidgan.rejection`), when the export carries its discriminators; 0 = off.
    rejection_acceptance: float = RejectionConfig.acceptance


def _generate(generator: keras.Model, z: np.ndarray, batch: int = 256) -> np.ndarray:
    return map_batches(lambda b: generator(b, training=False), z, batch)


def _rejection_row(config: FramesEvalConfig, generator, description: dict, n: int) -> dict:
    """{"frames": [n, H, W, C], acceptance, candidates, ...} by discriminator rejection sampling, or
    {"unavailable": why} (off, or an export without discriminators)."""
    if config.rejection_acceptance <= 0:
        return {"unavailable": "off (--rejection_acceptance=0)"}
    if not description.get("discriminators"):
        return {"unavailable": "the export has no discriminators (written before tfvidgan saved them)"}
    from tfvidgan.export import load_frame_discriminators
    from tfvidgan.rejection import DiscriminatorRejectionSampler

    sampler = DiscriminatorRejectionSampler(generator, load_frame_discriminators(config.export_dir),
                                            description["latent_dim"],
                                            RejectionConfig(acceptance=config.rejection_acceptance), seed=config.seed)
    result = sampler.sample(n, seed=config.seed)
    return {"frames": result.samples, "target_acceptance": config.rejection_acceptance,
            "acceptance": result.acceptance, "candidates": result.candidates,
            "generator_calls_per_sample": result.candidates / n, "d_star": result.d_star, "gamma": result.gamma}


def evaluate_frames(config: FramesEvalConfig) -> dict:
    """Returns `{"generated": {...}, "untrained_generator": {...}, "real": {...}, "settings": {...}}`;
    `settings["selection"]` is how a best export was picked (`export.read_selection`, or None), and
    `"selection_bias"` (only when it applies) warns that this draw's seed is the seed of the in-training
    probe sample that picked it (`export.selection_bias`)."""
    metadata = read_metadata(config.data)
    balls = metadata.num_balls > 0
    n = config.num_samples
    # Disjoint scenes: encoder training | real reference | held-out real row.
    # The encoder depends only on the data and its settings (fixed seed), so its cache name determines it.
    train_frames, train_positions = real_frames(config.data, config.encoder_samples, ENCODER_SEED)
    reference, _ = real_frames(config.data, n, config.seed + 1, first_scene=config.encoder_samples)
    held_out, _ = real_frames(config.data, n, config.seed + 2, first_scene=config.encoder_samples + n)
    name = frame_encoder_name(metadata, config.encoder_samples, config.encoder_steps)
    encoder = load_or_train_encoder(config.encoder_cache, name, lambda: train_frame_encoder(
        train_frames, train_positions if balls else None, steps=config.encoder_steps, seed=ENCODER_SEED))

    generator, description = load_frames_generator(config.export_dir, flag="export_dir")
    z = tf.random.stateless_normal([n, description["latent_dim"]], seed=[config.seed, 77]).numpy()
    keras.utils.set_random_seed(config.seed)
    untrained = keras.models.clone_model(generator)  # same architecture, fresh initial weights
    rows = {"generated": _generate(generator, z)}
    if description.get("weights") == "ema":
        raw, _ = load_frames_generator(config.export_dir, weights="raw", flag="export_dir")
        rows["generated_raw_weights"] = _generate(raw, z)
    rejection = _rejection_row(config, generator, description, n)
    if "frames" in rejection:
        rows["generated_rejection"] = rejection.pop("frames")
    rows.update(untrained_generator=_generate(untrained, z), real=held_out,
                collapsed=np.repeat(held_out[:1], n, axis=0))
    report = {}
    for row, frames in rows.items():
        stats = frame_statistics(frames, metadata.num_balls) if balls else {}
        stats["frechet_distance"] = encoder_frechet_distance(encoder, reference, frames)
        report[row] = stats
    for row, stats in report.items():
        if row != "real" and balls:
            stats["vs_real"] = {k: float(abs(stats[k] - report["real"][k])) for k in FRAME_COLUMNS}
            stats["area_spread_ratio"] = float(stats["blob_area_std"] / report["real"]["blob_area_std"])
    report["rejection"] = rejection
    report["generator_weights"] = description.get("weights", "raw")
    if not balls:
        report["unavailable"] = NO_BALLS
    selection, bias = selection_of_draw(config.export_dir, config.seed)
    if bias:
        report["selection_bias"] = bias
    report["settings"] = {**dataclasses.asdict(config), "selection": selection,
                          "expected_balls": metadata.num_balls, "encoder": name}
    return report
