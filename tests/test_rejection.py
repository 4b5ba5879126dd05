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
    assert result.frames.shape == (3000, 1, 1, 1) and result.z.shape == (3000, 2)
    np.testing.assert_allclose(result.frames[:, 0, 0, 0], result.z[:, 0])  # frames are the kept latents' renders
    assert abs(result.frames.mean() - 1.0) < 0.08 and abs(result.frames.std() - 1.0) < 0.08


def test_acceptance_target_is_met_and_sampling_is_deterministic():
    sampler = DiscriminatorRejectionSampler(_toy_generator, _toy_discriminator, 2,
                                            RejectionConfig(acceptance=0.3, calibration_samples=5000), seed=0)
    a = sampler.sample(2000, seed=5)
    b = sampler.sample(2000, seed=5)
    np.testing.assert_array_equal(a.frames, b.frames)
    assert abs(a.acceptance - 0.3) < 0.04
    assert a.frames.mean() > 0.3  # pushed towards the data (mean 1) from the generator (mean 0)
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
