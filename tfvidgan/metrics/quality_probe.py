"""Quality measured DURING training (`--eval_every`): cheap, fixed-seed versions of the evaluate reports
(frames and video GANs), and PSNR/SSIM on held-out pairs (CUP reconstructor).

A probe is built by the entry point and handed to the task (the training code never imports metrics);
the loop calls `task.evaluate(step)`, which calls the probe with the current sampling generator and
writes the returned `{name: float}` to TensorBoard (`eval/<name>`) and `<model_dir>/metrics.jsonl`.

Both probes use the same ruler at every step: a fixed-seed generated sample (same latents / noise every
time), a fixed real reference set, and a Fréchet encoder trained once on real data and cached under
`cache_dir` with the same name the `evaluate` reports use (so in-training numbers and reports agree).
Real data are read from three disjoint scene ranges, as in the reports: encoder training, Fréchet
reference, and (video) the real clips that define the speed band.

Cost (measured on 2 shared CPU cores, 32×32): 0.3–9 s per evaluation at 500 samples (README,
"Step 1: frames generator"; the first one trains or loads the encoder).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import tensorflow as tf

from tfvidgan.data.cup_pairs import read_cup_metadata
from tfvidgan.data.metadata import read_metadata
from tfvidgan.errors import ConfigError
from tfvidgan.metrics import targets
from tfvidgan.metrics.balls import frame_statistics
from tfvidgan.metrics.frames_report import frame_encoder_name
from tfvidgan.metrics.frechet import (
    ENCODER_SEED,
    frechet_distance,
    load_or_train_encoder,
    train_clip_encoder,
    train_frame_encoder,
)
from tfvidgan.metrics.real_data import real_clips, real_frames
from tfvidgan.metrics.reconstruction_report import data_directory, method_scores, read_pairs
from tfvidgan.metrics.targets import PHYSICS_COLUMNS
from tfvidgan.metrics.video_report import DIAGNOSTIC_COLUMNS, clip_encoder_name, clip_row


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    """data: real dataset; num_samples: generated and real samples per evaluation (>= 2);
    encoder_samples/encoder_steps: the Fréchet encoder's training; cache_dir: where it is cached;
    seed: the fixed sample's seed; long_frames (video only, 0 = off): also roll out `num_samples` videos
    this long and measure the drift between their first and last windows. The dataset needs
    `encoder_samples + 2 · num_samples` scenes."""
    data: str
    num_samples: int = 500
    encoder_samples: int = 1000
    encoder_steps: int = 300
    cache_dir: str = "eval_cache"
    seed: int = 0
    long_frames: int = 0
    rejection_acceptance: float = 0.0

    def __post_init__(self):
        if self.num_samples < 2 or self.encoder_samples < 2 or self.encoder_steps < 1:
            raise ConfigError(f"--eval_samples must be >= 2 (got {self.num_samples}); encoder settings "
                              f"must be positive")
        if self.long_frames < 0:
            raise ConfigError(f"--eval_long_frames must be >= 0 (0 = off), got {self.long_frames}")
        if not 0.0 <= self.rejection_acceptance <= 1.0:
            raise ConfigError(f"--eval_rejection_acceptance must be in [0, 1] (0 = off), got "
                              f"{self.rejection_acceptance}")

    def sample_settings(self) -> dict:
        """What identifies the fixed sample every evaluation scores (recorded with a best export, so that an
        evaluation draw of the same seed is flagged: `tfvidgan.export.selection_bias`)."""
        return {"seed": self.seed, "num_samples": self.num_samples, "long_frames": self.long_frames,
                "rejection_acceptance": self.rejection_acceptance, "data": self.data}

    def check_no_long_videos(self, trainer: str) -> None:
        if self.long_frames:
            raise ConfigError(f"--eval_long_frames={self.long_frames}: long videos are a video-trainer setting; "
                              f"the {trainer} trainer takes --eval_long_frames=0")

    def check_no_rejection(self, trainer: str) -> None:
        if self.rejection_acceptance:
            raise ConfigError(f"--eval_rejection_acceptance={self.rejection_acceptance}: rejection-sampled "
                              f"evaluation is a frames-trainer setting; the {trainer} trainer takes 0")

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

    Returned keys (`names()`): `fraction_expected_count`, `count_mean`, `blob_area_std`,
    `area_spread_ratio` (generated over real spread), `frechet_distance`, `frechet_floor` (real vs real
    at the same N), `frechet_ratio` (distance / floor), and the frames targets of
    `tfvidgan.metrics.targets`: `targets/<name>` (each target's ratio, <= 1 when it holds),
    `targets_met` (how many hold) and `worst_target_ratio` (<= 1 when all hold).
    """

    def __init__(self, config: ProbeConfig, latent_dim: int):
        config.check_no_long_videos("frames")
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
        """Scores the fixed-seed sample of `generator` (`[N, Z]` → `[N, H, W, C]` in [-1, 1])."""
        if not self._ready:
            self._prepare()
        return self._score(np.concatenate([np.asarray(generator(self.z[i:i + 250], training=False), np.float32)
                                           for i in range(0, self.config.num_samples, 250)]))

    def rejection(self, generator: Callable, discriminators: Callable) -> dict:
        """Scores the `num_samples` frames that discriminator rejection sampling (`tfvidgan.rejection`, seeded
        by `config.seed`, acceptance `config.rejection_acceptance` > 0) keeps from `generator` with
        `discriminators` (`[N, H, W, C]` → logits `[N, K]`). Same keys as a call."""
        if not self.config.rejection_acceptance:
            raise ConfigError("scoring rejection samples needs --eval_rejection_acceptance > 0")
        if not self._ready:
            self._prepare()
        from tfvidgan.rejection import DiscriminatorRejectionSampler, RejectionConfig
        sampler = DiscriminatorRejectionSampler(generator, discriminators, self.latent_dim,
                                                RejectionConfig(acceptance=self.config.rejection_acceptance),
                                                seed=self.config.seed)
        return self._score(sampler.sample(self.config.num_samples, seed=self.config.seed).samples)

    def _score(self, frames: np.ndarray) -> dict:
        stats = frame_statistics(frames, self.expected_balls)
        stats["frechet_distance"] = frechet_distance(self.reference_features, self.encoder.features(frames))
        out = {"fraction_expected_count": stats["fraction_expected_count"], "count_mean": stats["count_mean"],
               "blob_area_std": stats["blob_area_std"],
               "area_spread_ratio": stats["blob_area_std"] / self.real_stats["blob_area_std"],
               "frechet_distance": stats["frechet_distance"], "frechet_floor": self.floor,
               "frechet_ratio": stats["frechet_distance"] / max(self.floor, 1e-12)}
        out.update(_target_keys(targets.FRAMES_TARGETS,
                                targets.frames_values(stats, self.real_stats, max(self.floor, 1e-12))))
        return out

    def names(self) -> tuple:
        """The keys every call returns."""
        return ("fraction_expected_count", "count_mean", "blob_area_std", "area_spread_ratio", "frechet_distance",
                "frechet_floor", "frechet_ratio") + _target_names(targets.FRAMES_TARGETS)


class ReconstructionQualityProbe:
    """`probe(predict) -> dict` for a CUP reconstructor, where `predict(sensed [b, H+T−1, W, 1] float32,
    mask [H, W] float32) -> scenes [b, T, H, W, 1]` in [0, 1].

    Scores the first `num_samples` pairs of `config.data` (held-out CUP pairs, read once, in file order)
    reconstructed with the data's own mask, with the metrics of `evaluate reconstruction` (per-frame PSNR
    and SSIM averaged over frames and pairs). Returned keys (`names()`): `psnr_db`, `ssim`, `mse`. The
    data's metadata is checked at construction (before training): its scene size must be the model's.
    """

    def __init__(self, config: ProbeConfig, scene_shape: tuple):
        config.check_no_long_videos("reconstructor")
        config.check_no_rejection("reconstructor")
        self.config = config
        metadata = read_cup_metadata(data_directory(config.data, "--eval_data"))
        if tuple(metadata.scene_shape) != tuple(scene_shape):
            raise ConfigError(f"--eval_data={config.data!r} has scenes {list(metadata.scene_shape)} (T, H, W, C), "
                              f"but the model reconstructs {list(scene_shape)}: evaluate on pairs of the training "
                              f"size")
        if metadata.num_examples < config.num_samples:
            raise ConfigError(f"--eval_samples={config.num_samples} exceeds the {metadata.num_examples} pairs of "
                              f"--eval_data={config.data!r}; lower --eval_samples")
        self.mask = np.asarray(metadata.mask, np.float32)
        self._pairs = None

    def __call__(self, predict: Callable) -> dict:
        if self._pairs is None:
            sensed, scenes, _ = read_pairs(self.config.data, self.config.num_samples)
            self._pairs = sensed, scenes
        sensed, scenes = self._pairs
        out = np.concatenate([np.asarray(predict(sensed[i:i + 64], self.mask), np.float32)
                              for i in range(0, len(sensed), 64)])
        scores = method_scores(out, scenes)
        return {"psnr_db": scores["psnr_db"], "ssim": scores["ssim"], "mse": float(np.mean((out - scenes) ** 2))}

    def names(self) -> tuple:
        """The keys every call returns."""
        return ("psnr_db", "ssim", "mse")


class VideoQualityProbe:
    """`probe(sample_clips) -> dict` where `sample_clips(n, t, seed) -> [n, t, H, W, C]` in [-1, 1].

    Returned keys (`names()`): the physics columns of the video report for the fixed generated sample
    (`fraction_expected_count_frames`, `mean_count_changes`, `free_flight_second_difference`,
    `mean_speed`, `fraction_steps_in_speed_band` with the real clips' band,
    `consecutive_binarized_mse`), the diagnostics `motion_energy_cv` and `fraction_expected_count_first_frame`,
    their real values as `real/<name>`,
    `frechet_distance`; with
    `long_frames`, `long/<column>` (the relative change of each physics column between the first and last
    `num_frames` of fixed-seed `long_frames`-frame videos) and `long_video_drift` (the worst one); and the
    video targets of `tfvidgan.metrics.targets`: `targets/<name>` (each target's ratio, <= 1 when it
    holds; the drift target only with `long_frames`), `targets_met` and `worst_target_ratio` (<= 1 when
    all hold: the number to pick a checkpoint by, `--best_metric=worst_target_ratio`).
    """

    def __init__(self, config: ProbeConfig, num_frames: int):
        config.check_no_rejection("video")
        if config.long_frames and config.long_frames < 2 * num_frames:
            raise ConfigError(f"--eval_long_frames={config.long_frames} must be 0 (off) or >= 2 × the sampled "
                              f"length ({num_frames}, --sample_length), so its first and last windows differ")
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
        self.real = clip_row(held_out, self.expected_balls, None, None)
        self._ready = True

    def __call__(self, sample_clips: Callable) -> dict:
        if not self._ready:
            self._prepare()
        clips = np.asarray(sample_clips(self.config.num_samples, self.num_frames, self.config.seed), np.float32)
        stats = clip_row(clips, self.expected_balls, self.encoder, self.reference_features,
                         speed_band=self.real["speed_band"])
        out = {k: stats[k] for k in PHYSICS_COLUMNS + DIAGNOSTIC_COLUMNS + ("frechet_distance",)}
        out.update({f"real/{k}": self.real[k] for k in PHYSICS_COLUMNS + DIAGNOSTIC_COLUMNS})
        change = None
        if self.config.long_frames:
            change = self._long_video_change(sample_clips)
            out.update({f"long/{k}": v for k, v in change.items()})
            out["long_video_drift"] = targets.worst_change(change)
        out.update(_target_keys(targets.VIDEO_TARGETS, targets.video_values(out, self.real, change)))
        return out

    def _long_video_change(self, sample_clips: Callable) -> dict:
        """Relative change of every physics column between the first and last `num_frames` of
        `num_samples` fixed-seed long videos (the short sample's seed, as in the video report)."""
        c, t = self.config, self.num_frames
        clips = np.asarray(sample_clips(c.num_samples, c.long_frames, c.seed), np.float32)
        first, last = (clip_row(window, self.expected_balls, None, None, speed_band=self.real["speed_band"])
                       for window in (clips[:, :t], clips[:, -t:]))
        return targets.long_video_change(first, last)

    def names(self) -> tuple:
        """The keys every call returns."""
        video_targets = {k: v for k, v in targets.VIDEO_TARGETS.items()
                         if self.config.long_frames or k != "long_video_drift"}
        long = (tuple(f"long/{k}" for k in PHYSICS_COLUMNS) + ("long_video_drift",)
                if self.config.long_frames else ())
        columns = PHYSICS_COLUMNS + DIAGNOSTIC_COLUMNS
        return (columns + ("frechet_distance",) + tuple(f"real/{k}" for k in columns) + long
                + _target_names(video_targets))


def _target_keys(table: dict, values: dict) -> dict:
    """`targets/<name>` ratios, `targets_met` and `worst_target_ratio` of `values` checked against `table`."""
    checked = targets.check(table, values)
    return {**{f"targets/{k}": c["ratio"] for k, c in checked.items()},
            "targets_met": float(sum(c["pass"] for c in checked.values())),
            "worst_target_ratio": targets.worst_ratio(checked)}


def _target_names(table: dict) -> tuple:
    return tuple(f"targets/{k}" for k in table) + ("targets_met", "worst_target_ratio")
