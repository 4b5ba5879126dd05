"""Discriminator rejection sampling (DRS; Azadi et al. 2019, "Discriminator Rejection Sampling", ICLR).

A trained GAN's discriminators know more than its generator can express: on bouncing balls the
discriminators with an "mlp" head score generated 3-ball frames clearly above 2- and 4-ball ones
(`benchmarks/count_probe.py --runs`), yet the generator keeps drawing 2 or 4 balls in more than half its
frames, because gradient steps cannot move probability mass from one ball count to another without
passing through frames with a faint ball. DRS uses the discriminators at sampling time instead: a
candidate x = G(z) is kept with probability

    p(x) = σ(F(x) − γ),   F(x) = D(x) − D* − log(1 − exp(D(x) − D* − ε)),

where D(x) is the mean logit of the K discriminators (an estimate of log p_data(x) / p_G(x) for the
non-saturating loss), D* the largest D over a calibration draw and γ a shift chosen so that a given
fraction of candidates is kept (`RejectionConfig.acceptance`). Fewer acceptances = closer to the data
but more generator calls per sample (1 / acceptance on average).

`RejectionSampler` is the method over any seeded sampler and score; `DiscriminatorRejectionSampler` draws
frames from a frames generator, `ClipRejectionSampler` clips from a video generator (scored by the frame
discriminators, see there). Used by `python -m tfvidgan.evaluate frames|video` (the "generated_rejection"
rows) and `python -m tfvidgan.sample frames|video --rejection_acceptance=...`, with the discriminators a
frames export carries (`tfvidgan.export.load_frame_discriminators`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import keras
import numpy as np
import tensorflow as tf
from scipy.special import expit

from tfvidgan.batching import map_batches
from tfvidgan.errors import ConfigError

_EPSILON = 1e-6
_STREAM_STRIDE = 1_000_003  # ClipRejectionSampler: int32 seed = (stride · stream + seed) mod 2³¹ − 1
_INT32_LIMIT = 2**31 - 1
CLIP_CALIBRATION_SAMPLES = 500  # clips drawn once to calibrate clip rejection sampling (× T frames scored)


@dataclasses.dataclass(frozen=True)
class RejectionConfig:
    """acceptance: target fraction of candidates kept, in (0, 1]; calibration_samples: candidates drawn
    once to fix D* and γ; batch: generator/discriminator batch; max_candidates_factor: give up (error)
    after drawing this many times `num_samples / acceptance` candidates."""
    acceptance: float = 0.25
    calibration_samples: int = 2000
    batch: int = 500
    max_candidates_factor: float = 20.0

    def __post_init__(self):
        if not (0.0 < self.acceptance <= 1.0):
            raise ConfigError(f"--rejection_acceptance must be in (0, 1], got {self.acceptance}")
        if self.calibration_samples < 10:
            raise ConfigError(f"rejection calibration_samples must be >= 10, got {self.calibration_samples}")
        if self.batch < 1 or not self.max_candidates_factor >= 1.0:
            raise ConfigError(f"rejection batch must be >= 1 and max_candidates_factor >= 1, got {self.batch}, "
                              f"{self.max_candidates_factor}")


@dataclasses.dataclass(frozen=True)
class RejectionResult:
    """samples: the N kept samples (frames `[N, H, W, C]` or clips `[N, T, H, W, C]`, float32 in [-1, 1]);
    latents: their latents (`[N, Z]` or `[N, T, Z]`); candidates: how many were drawn; acceptance:
    kept / candidates (before truncation to N); d_star, gamma: the calibration."""
    samples: np.ndarray
    latents: np.ndarray
    candidates: int
    acceptance: float
    d_star: float
    gamma: float


def _log_ratio(scores: np.ndarray, d_star: float) -> np.ndarray:
    """F = D − D* − log(1 − exp(D − D* − ε)): the DRS logit before the γ shift (D > D* is clipped)."""
    delta = np.minimum(scores - d_star, 0.0) - _EPSILON
    return delta - np.log(-np.expm1(delta))


def _gamma_for(f: np.ndarray, acceptance: float) -> float:
    """γ with mean σ(F − γ) = acceptance over the calibration values F (bisection; monotone in γ)."""
    if acceptance >= 1.0:
        return -math.inf
    low, high = float(f.min()) - 50.0, float(f.max()) + 50.0
    for _ in range(100):
        mid = 0.5 * (low + high)
        if expit(f - mid).mean() > acceptance:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


class RejectionSampler:
    """Discriminator rejection sampling over any seeded sampler (module docstring).

    Args:
      draw: `(n, seed, stream) → (samples [n, ...], latents [n, ...])`, deterministic in `(seed, stream)`.
      score: `samples [n, ...] → [n]` float64, the discriminators' logit (≈ log p_data / p_G).
      config: `RejectionConfig`.
      seed: seed of the calibration draw (stream 1; `sample` draws streams 10, 11, ...).
    """

    def __init__(self, draw: Callable, score: Callable, config: RejectionConfig = RejectionConfig(),
                 seed: int = 0):
        self._draw, self._score, self.config = draw, score, config
        samples, _ = draw(config.calibration_samples, seed, 1)
        scores = np.asarray(score(samples), np.float64)
        self.d_star = float(scores.max())
        self.gamma = _gamma_for(_log_ratio(scores, self.d_star), config.acceptance)

    def acceptance_probability(self, samples: np.ndarray) -> np.ndarray:
        """`[N]` in [0, 1]: p(x) = σ(F(x) − γ)."""
        return expit(_log_ratio(np.asarray(self._score(samples), np.float64), self.d_star) - self.gamma)

    def sample(self, num_samples: int, seed: int = 0) -> RejectionResult:
        """`num_samples` accepted samples (deterministic for a seed). Raises `ConfigError` if fewer than
        `num_samples` are accepted within `max_candidates_factor × num_samples / acceptance` candidates."""
        if num_samples < 1:
            raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
        rng = np.random.default_rng([seed, 4242])
        chunk = max(min(self.config.batch, num_samples), int(math.ceil(1.2 * num_samples / self.config.acceptance)))
        limit = int(self.config.max_candidates_factor * num_samples / self.config.acceptance)
        samples, latents, drawn, round_index = [], [], 0, 0
        while sum(len(x) for x in samples) < num_samples:
            if drawn >= limit:
                raise ConfigError(
                    f"discriminator rejection sampling accepted only {sum(len(x) for x in samples)} of "
                    f"{drawn} candidates (target acceptance {self.config.acceptance}); raise "
                    f"--rejection_acceptance")
            x, z = self._draw(chunk, seed, 10 + round_index)
            keep = rng.uniform(size=chunk) < self.acceptance_probability(x)
            samples.append(x[keep])
            latents.append(z[keep])
            drawn += chunk
            round_index += 1
        accepted = sum(len(x) for x in samples)
        return RejectionResult(samples=np.concatenate(samples)[:num_samples],
                               latents=np.concatenate(latents)[:num_samples], candidates=drawn,
                               acceptance=accepted / drawn, d_star=self.d_star, gamma=self.gamma)


class DiscriminatorRejectionSampler(RejectionSampler):
    """Frames from G refined by its own frame discriminators.

    Args:
      generator: `[N, Z]` → `[N, H, W, C]` in [-1, 1] (Keras model, called with training=False).
      discriminators: `[N, H, W, C]` → logits `[N, K]` (the run's projected discriminators).
      latent_dim: Z; latents are z ~ N(0, I).
      config: `RejectionConfig`.
      seed: seed of the calibration draw (candidates and acceptance draws use `sample`'s seed).
    """

    def __init__(self, generator: keras.Model, discriminators: keras.Model, latent_dim: int,
                 config: RejectionConfig = RejectionConfig(), seed: int = 0):
        self.generator, self.discriminators, self.latent_dim = generator, discriminators, latent_dim

        def draw(n, seed, stream):
            z = tf.random.stateless_normal([n, latent_dim], seed=[seed, 1_000 + stream]).numpy()
            return map_batches(lambda b: generator(b, training=False), z, config.batch).astype(np.float32), z

        super().__init__(draw, self.scores, config, seed)

    def scores(self, frames: np.ndarray) -> np.ndarray:
        """`[N]` float64: the mean logit over the K discriminators."""
        logits = map_batches(lambda b: self.discriminators(b, training=False), frames, self.config.batch)
        return logits.astype(np.float64).mean(axis=1)


class ClipRejectionSampler(RejectionSampler):
    """Clips of a video generator kept by how real their FRAMES look to step 1's frame discriminators.

    A clip's score is the mean over its T frames of the frame discriminators' mean logit: the video
    analogue of DRS with the frames export's discriminators (the same ones `--frame_critic_weight` trains
    against). It is a heuristic, not the clip density ratio: it prefers clips whose every frame looks real
    (e.g. holds the right number of balls throughout) and knows nothing about motion.

    Args:
      draw_latents: `(n, seed) → [n, T, Z]` latent trajectories (e.g. the export's `sample_latents`).
      render: `[n, T, Z] → [n, T, H, W, C]` clips in [-1, 1].
      frame_discriminators: `[M, H, W, C]` → logits `[M, K]`.
      config, seed: as `RejectionSampler` (`config.batch` counts frames when scoring).
    """

    def __init__(self, draw_latents: Callable, render: Callable, frame_discriminators: keras.Model,
                 config: RejectionConfig = RejectionConfig(calibration_samples=CLIP_CALIBRATION_SAMPLES),
                 seed: int = 0):
        self.frame_discriminators = frame_discriminators

        def draw(n, seed, stream):
            # One int32 seed per (seed, stream) for the export's seeded signatures; streams >= 1 never
            # reproduce the plain `sample_latents(seed)` draw of the same seed.
            latents = np.asarray(draw_latents(n, (_STREAM_STRIDE * stream + seed) % _INT32_LIMIT))
            return np.asarray(render(latents), np.float32), latents

        super().__init__(draw, self.scores, config, seed)

    def scores(self, clips: np.ndarray) -> np.ndarray:
        """`[N]` float64: the mean over frames and the K discriminators of the frame logits."""
        n, t = clips.shape[:2]
        logits = map_batches(lambda b: self.frame_discriminators(b, training=False),
                             clips.reshape(n * t, *clips.shape[2:]), self.config.batch)
        return logits.astype(np.float64).reshape(n, t, -1).mean(axis=(1, 2))
