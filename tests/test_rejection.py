"""Discriminator rejection sampling (`tfvidgan.rejection`) and the discriminators a frames export carries."""
import numpy as np
import pytest
import tensorflow as tf

from tfvidgan.errors import ConfigError, ExportKindError
from tfvidgan.rejection import DiscriminatorRejectionSampler, RejectionConfig, _gamma_for, _log_ratio


def _toy_generator(z, training=False):
    """p_G: x = z_0 ~ N(0, 1), as a 1×1×1 'frame'."""
    return np.asarray(z)[:, :1].reshape(-1, 1, 1, 1)


def _toy_discriminator(frames, training=False):
    """The exact log density ratio of p_data = N(1, 1) to p_G = N(0, 1): D(x) = x − 1/2 (K = 1)."""
    return np.asarray(frames).reshape(-1, 1) - 0.5


def test_gamma_sets_the_mean_acceptance_of_the_calibration_draw():
    f = _log_ratio(np.random.default_rng(0).normal(size=5000), d_star=3.0)
    for target in (0.05, 0.25, 0.8):
        gamma = _gamma_for(f, target)
        np.testing.assert_allclose((1 / (1 + np.exp(-(f - gamma)))).mean(), target, rtol=1e-6)


def test_with_gamma_zero_drs_is_exact_rejection_sampling_and_recovers_the_data_distribution():
    """σ(F) with γ = 0 equals exp(D − D*): with the exact density ratio, accepted samples follow p_data."""
    sampler = DiscriminatorRejectionSampler(_toy_generator, _toy_discriminator, 2,
                                            RejectionConfig(acceptance=0.25, calibration_samples=20000), seed=0)
    sampler.gamma = 0.0
    x = np.linspace(-3, 2, 11).reshape(-1, 1, 1, 1)
    np.testing.assert_allclose(sampler.acceptance_probability(x),
                               np.exp(np.minimum(x.ravel() - 0.5 - sampler.d_star, 0) - 1e-6), rtol=1e-4)
    result = sampler.sample(3000, seed=1)
    assert result.samples.shape == (3000, 1, 1, 1) and result.latents.shape == (3000, 2)
    np.testing.assert_allclose(result.samples[:, 0, 0, 0], result.latents[:, 0])  # frames are the kept latents' renders
    assert abs(result.samples.mean() - 1.0) < 0.08 and abs(result.samples.std() - 1.0) < 0.08


def test_acceptance_target_is_met_and_sampling_is_deterministic():
    sampler = DiscriminatorRejectionSampler(_toy_generator, _toy_discriminator, 2,
                                            RejectionConfig(acceptance=0.3, calibration_samples=5000), seed=0)
    a = sampler.sample(2000, seed=5)
    b = sampler.sample(2000, seed=5)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert abs(a.acceptance - 0.3) < 0.04
    assert a.samples.mean() > 0.3  # pushed towards the data (mean 1) from the generator (mean 0)
    everything = DiscriminatorRejectionSampler(_toy_generator, _toy_discriminator, 2,
                                               RejectionConfig(acceptance=1.0)).sample(100, seed=5)
    assert everything.acceptance == 1.0


@pytest.mark.parametrize("kwargs,match", [(dict(acceptance=0.0), "rejection_acceptance"),
                                          (dict(acceptance=1.5), "rejection_acceptance"),
                                          (dict(calibration_samples=3), "calibration_samples")])
def test_bad_rejection_config_is_named(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        RejectionConfig(**kwargs)


def test_a_discriminator_that_rejects_everything_fails_with_a_clear_error():
    sampler = DiscriminatorRejectionSampler(_toy_generator, _toy_discriminator, 2,
                                            RejectionConfig(acceptance=0.5, max_candidates_factor=2.0))
    sampler.gamma = 1e6  # accepts (almost) nothing
    with pytest.raises(ConfigError, match="accepted only 0 of"):
        sampler.sample(50, seed=0)


def test_frames_export_carries_the_discriminators(tmp_path):
    from tfvidgan.export import export_frames_generator, load_frame_discriminators
    from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask, describe

    config = FramesGanConfig(image_size=32, latent_dim=4, generator_filters=4, num_discriminators=3,
                             discriminator_filters=2, ema_beta=0.0)
    task = FramesGanTask(config)
    task.build()
    task.export(str(tmp_path / "with"))
    loaded = load_frame_discriminators(str(tmp_path / "with"))
    x = tf.random.uniform([5, 32, 32, 1], -1, 1, seed=1)
    np.testing.assert_allclose(loaded(x, training=False).numpy(), task.discriminators(x, training=False).numpy(),
                               rtol=1e-5, atol=1e-6)
    export_frames_generator(task.generator, describe(config), str(tmp_path / "without"))  # an older export
    with pytest.raises(ExportKindError, match="--export_dir=.*has no discriminators"):
        load_frame_discriminators(str(tmp_path / "without"))


def _toy_trajectories(n, seed):
    """[n, T=5, Z=1] latents, seeded (the stand-in for a video export's `sample_latents`)."""
    return np.random.default_rng(seed).normal(size=(n, 5, 1))


def _toy_render(latents):
    """Each latent is a 1×1×1 frame: [n, T, 1] → clips [n, T, 1, 1, 1]."""
    return np.asarray(latents, np.float32).reshape(len(latents), -1, 1, 1, 1)


def test_clip_rejection_scores_clips_by_their_frames_and_keeps_the_better_ones():
    """A clip's score is the mean frame logit over its frames; kept clips score higher than the candidates
    on average, are rendered from their own kept latents, and the same seed gives the same clips."""
    from tfvidgan.rejection import ClipRejectionSampler

    config = RejectionConfig(acceptance=0.25, calibration_samples=2000, batch=64)
    sampler = ClipRejectionSampler(_toy_trajectories, _toy_render, _toy_discriminator, config, seed=0)
    clips = _toy_render(_toy_trajectories(7, 3))
    np.testing.assert_allclose(sampler.scores(clips), clips.reshape(7, 5).mean(axis=1) - 0.5, rtol=1e-6)
    a, b = sampler.sample(400, seed=2), sampler.sample(400, seed=2)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert a.samples.shape == (400, 5, 1, 1, 1) and a.latents.shape == (400, 5, 1)
    np.testing.assert_allclose(a.samples, _toy_render(a.latents))
    assert abs(a.acceptance - 0.25) < 0.05
    candidates = _toy_render(_toy_trajectories(4000, 99))
    assert sampler.scores(a.samples).mean() > sampler.scores(candidates).mean() + 0.2
    # Streams never reuse the plain draw of the same seed (the evaluate report's "generated" row).
    assert not np.isin(a.latents[:, 0, 0], _toy_trajectories(4000, 2)[:, 0, 0]).any()
