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

Used by `python -m tfvidgan.evaluate frames` (the "generated_rejection" row) and `python -m
tfvidgan.sample frames --rejection_acceptance=...`, with the discriminators a frames export carries
(`tfvidgan.export.load_frame_discriminators`).
"""
from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf
from scipy.special import expit

from tfvidgan.batching import map_batches
from tfvidgan.errors import ConfigError

_EPSILON = 1e-6


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
    """frames: `[N, H, W, C]` float32 in [-1, 1]; z: `[N, Z]` float32, their latents; candidates: how many
    were drawn; acceptance: N / candidates (before truncation to N); d_star, gamma: the calibration."""
    frames: np.ndarray
    z: np.ndarray
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


class DiscriminatorRejectionSampler:
    """Draws frames from G refined by its discriminators (module docstring).

    Args:
      generator: `[N, Z]` → `[N, H, W, C]` in [-1, 1] (Keras model, called with training=False).
      discriminators: `[N, H, W, C]` → logits `[N, K]` (the run's projected discriminators).
      latent_dim: Z; latents are z ~ N(0, I).
      config: `RejectionConfig`.
      seed: seed of the calibration draw (candidates and acceptance draws use `sample`'s seed).
    """

    def __init__(self, generator: keras.Model, discriminators: keras.Model, latent_dim: int,
                 config: RejectionConfig = RejectionConfig(), seed: int = 0):
        self.generator, self.discriminators, self.latent_dim, self.config = generator, discriminators, latent_dim, config
        z = self._latents(config.calibration_samples, seed, stream=1)
        scores = self.scores(self._render(z))
        self.d_star = float(scores.max())
        self.gamma = _gamma_for(_log_ratio(scores, self.d_star), config.acceptance)

    def _latents(self, n: int, seed: int, stream: int) -> np.ndarray:
        return tf.random.stateless_normal([n, self.latent_dim], seed=[seed, 1_000 + stream]).numpy()

    def _render(self, z: np.ndarray) -> np.ndarray:
        return map_batches(lambda b: self.generator(b, training=False), z, self.config.batch).astype(np.float32)

    def scores(self, frames: np.ndarray) -> np.ndarray:
        """`[N]` float64: the mean logit over the K discriminators."""
        logits = map_batches(lambda b: self.discriminators(b, training=False), frames, self.config.batch)
        return logits.astype(np.float64).mean(axis=1)

    def acceptance_probability(self, frames: np.ndarray) -> np.ndarray:
        """`[N]` in [0, 1]: p(x) = σ(F(x) − γ)."""
        return expit(_log_ratio(self.scores(frames), self.d_star) - self.gamma)

    def sample(self, num_samples: int, seed: int = 0) -> RejectionResult:
        """`num_samples` accepted frames (deterministic for a seed). Raises `ConfigError` if fewer than
        `num_samples` are accepted within `max_candidates_factor × num_samples / acceptance` candidates."""
        if num_samples < 1:
            raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
        rng = np.random.default_rng([seed, 4242])
        chunk = max(self.config.batch, int(math.ceil(1.2 * num_samples / self.config.acceptance)))
        limit = int(self.config.max_candidates_factor * num_samples / self.config.acceptance)
        frames, latents, drawn, round_index = [], [], 0, 0
        while sum(len(f) for f in frames) < num_samples:
            if drawn >= limit:
                raise ConfigError(
                    f"discriminator rejection sampling accepted only {sum(len(f) for f in frames)} of "
                    f"{drawn} candidates (target acceptance {self.config.acceptance}); raise "
                    f"--rejection_acceptance")
            z = self._latents(chunk, seed, stream=10 + round_index)
            x = self._render(z)
            keep = rng.uniform(size=chunk) < self.acceptance_probability(x)
            frames.append(x[keep])
            latents.append(z[keep])
            drawn += chunk
            round_index += 1
        accepted = sum(len(f) for f in frames)
        return RejectionResult(frames=np.concatenate(frames)[:num_samples], z=np.concatenate(latents)[:num_samples],
                               candidates=drawn, acceptance=accepted / drawn, d_star=self.d_star, gamma=self.gamma)
