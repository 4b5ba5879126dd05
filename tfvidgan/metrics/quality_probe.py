"""Quality measured DURING training (`--eval_every`): cheap, fixed-seed versions of the evaluate reports.

A probe is built by the entry point and handed to the task (the training code never imports metrics);
the loop calls `task.evaluate(step)`, which calls the probe with the current sampling generator and
writes the returned `{name: float}` to TensorBoard (`eval/<name>`) and `<model_dir>/metrics.jsonl`.

Both probes use the same ruler at every step: a fixed-seed generated sample (same latents / noise every
time), a fixed real reference set, and a Fréchet encoder trained once on real data and cached under
`cache_dir` with the same name the `evaluate` reports use (so in-training numbers and reports agree).
Real data are read from three disjoint scene ranges, as in the reports: encoder training, Fréchet
reference, and (video) the real clips that define the speed band.

Cost (measured on 2 shared CPU cores, 32×32, 500 samples): see README "Quality during training".
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import tensorflow as tf

from tfvidgan.data.metadata import read_metadata
from tfvidgan.errors import ConfigError
from tfvidgan.metrics.balls import clip_physics, consecutive_binarized_mse, frame_statistics
from tfvidgan.metrics.frames_report import frame_encoder_name
from tfvidgan.metrics.frechet import (
    ENCODER_SEED,
    frechet_distance,
    load_or_train_encoder,
    train_clip_encoder,
    train_frame_encoder,
)
from tfvidgan.metrics.real_data import real_clips, real_frames
from tfvidgan.metrics.video_report import clip_encoder_name


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    """data: real dataset; num_samples: generated and real samples per evaluation (>= 2);
    encoder_samples/encoder_steps: the Fréchet encoder's training; cache_dir: where it is cached;
    seed: the fixed sample's seed. The dataset needs `encoder_samples + 2 · num_samples` scenes."""
    data: str
    num_samples: int = 500
    encoder_samples: int = 1000
    encoder_steps: int = 300
    cache_dir: str = "eval_cache"
    seed: int = 0

    def __post_init__(self):
        if self.num_samples < 2 or self.encoder_samples < 2 or self.encoder_steps < 1:
            raise ConfigError(f"--eval_samples must be >= 2 (got {self.num_samples}); encoder settings "
                              f"must be positive")

    def check_balls(self, num_balls: int) -> None:
        if num_balls == 0:
            raise ConfigError(f"--eval_every: the quality probe counts balls, but --data={self.data!r} has no balls "
                              "(num_balls = 0: scenes made from videos); train with --eval_every=0 and use "
                              "`python -m tfvidgan.evaluate` for the Fréchet distance")

    def check_scenes(self, num_scenes: int) -> None:
        needed = self.encoder_samples + 2 * self.num_samples
        if num_scenes < needed:
            raise ConfigError(f"--eval_every needs {needed} scenes in --data={self.data!r} (encoder "
                              f"{self.encoder_samples} + 2 × --eval_samples {self.num_samples}), it has "
                              f"{num_scenes}; lower --eval_samples or use a larger dataset")


class FramesQualityProbe:
    """`probe(generator) -> dict` for a frames generator `[N, Z] → [N, H, W, C]` in [-1, 1].

    Returned keys: `fraction_expected_count`, `count_mean`, `blob_area_std`, `area_spread_ratio`
    (generated over real spread), `frechet_distance`, `frechet_floor` (real vs real at the same N),
    `frechet_ratio` (distance / floor).
    """

    def __init__(self, config: ProbeConfig, latent_dim: int):
        self.config = config
        self.latent_dim = latent_dim
        self._ready = False

    def _prepare(self):
        c = self.config
        metadata = read_metadata(c.data)
        c.check_balls(metadata.num_balls)
        c.check_scenes(metadata.num_scenes)
        self.expected_balls = metadata.num_balls
        train, positions = real_frames(c.data, c.encoder_samples, ENCODER_SEED)
        self.encoder = load_or_train_encoder(
            c.cache_dir, frame_encoder_name(metadata, c.encoder_samples, c.encoder_steps),
            lambda: train_frame_encoder(train, positions, steps=c.encoder_steps, seed=ENCODER_SEED))
        reference, _ = real_frames(c.data, c.num_samples, c.seed + 1, first_scene=c.encoder_samples)
        held_out, _ = real_frames(c.data, c.num_samples, c.seed + 2, first_scene=c.encoder_samples + c.num_samples)
        self.reference_features = self.encoder.features(reference)
        self.real_stats = frame_statistics(held_out, self.expected_balls)
        self.floor = frechet_distance(self.reference_features, self.encoder.features(held_out))
        self.z = tf.random.stateless_normal([c.num_samples, self.latent_dim], seed=[c.seed, 77])
        self._ready = True

    def __call__(self, generator: Callable) -> dict:
        if not self._ready:
            self._prepare()
        frames = np.concatenate([np.asarray(generator(self.z[i:i + 250], training=False), np.float32)
                                 for i in range(0, self.config.num_samples, 250)])
        stats = frame_statistics(frames, self.expected_balls)
        distance = frechet_distance(self.reference_features, self.encoder.features(frames))
        return {"fraction_expected_count": stats["fraction_expected_count"], "count_mean": stats["count_mean"],
                "blob_area_std": stats["blob_area_std"],
                "area_spread_ratio": stats["blob_area_std"] / self.real_stats["blob_area_std"],
                "frechet_distance": distance, "frechet_floor": self.floor,
                "frechet_ratio": distance / max(self.floor, 1e-12)}


class VideoQualityProbe:
    """`probe(sample_clips) -> dict` where `sample_clips(n, t, seed) -> [n, t, H, W, C]` in [-1, 1].

    Returned keys: the physics columns of the video report for the fixed generated sample
    (`fraction_expected_count_frames`, `mean_count_changes`, `free_flight_second_difference`,
    `mean_speed`, `fraction_steps_in_speed_band` with the real clips' band,
    `consecutive_binarized_mse`), their real values as `real/<name>`, and `frechet_distance`.
    """

    COLUMNS = ("fraction_expected_count_frames", "mean_count_changes", "free_flight_second_difference",
               "mean_speed", "fraction_steps_in_speed_band")

    def __init__(self, config: ProbeConfig, num_frames: int):
        self.config = config
        self.num_frames = num_frames
        self._ready = False

    def _prepare(self):
        c, t = self.config, self.num_frames
        metadata = read_metadata(c.data)
        c.check_balls(metadata.num_balls)
        c.check_scenes(metadata.num_scenes)
        self.expected_balls = metadata.num_balls
        name = clip_encoder_name(metadata, t, c.encoder_samples, c.encoder_steps)

        def train():
            clips, positions = real_clips(c.data, c.encoder_samples, t, ENCODER_SEED)
            return train_clip_encoder(clips, positions, steps=c.encoder_steps, seed=ENCODER_SEED)

        self.encoder = load_or_train_encoder(c.cache_dir, name, train)
        reference, _ = real_clips(c.data, c.num_samples, t, c.seed + 1, first_scene=c.encoder_samples)
        held_out, _ = real_clips(c.data, c.num_samples, t, c.seed + 2, first_scene=c.encoder_samples + c.num_samples)
        self.reference_features = self.encoder.features(reference)
        self.real = clip_physics(held_out, self.expected_balls)
        self.real["consecutive_binarized_mse"] = consecutive_binarized_mse(held_out)
        self._ready = True

    def __call__(self, sample_clips: Callable) -> dict:
        if not self._ready:
            self._prepare()
        clips = np.asarray(sample_clips(self.config.num_samples, self.num_frames, self.config.seed), np.float32)
        stats = clip_physics(clips, self.expected_balls, speed_band=self.real["speed_band"])
        out = {k: stats[k] for k in self.COLUMNS}
        out["consecutive_binarized_mse"] = consecutive_binarized_mse(clips)
        out["frechet_distance"] = frechet_distance(self.reference_features, self.encoder.features(clips))
        out.update({f"real/{k}": self.real[k] for k in self.COLUMNS + ("consecutive_binarized_mse",)})
        return out
