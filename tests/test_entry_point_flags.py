"""Flags that contradict the data or each other fail before training, naming the flag."""
import types

import keras
import pytest

from tfvidgan import common_flags
from tfvidgan.data.bouncing_balls import BouncingBallsConfig, generate_dataset
from tfvidgan.data.metadata import read_metadata
from tfvidgan.errors import ConfigError
from tfvidgan.export import export_frames_generator
from tfvidgan.models.frames_generator import build_frames_generator
from tfvidgan.train_frames import frames_config
from tfvidgan.train_video import video_config
from tfvidgan.training.frames_task import FramesGanConfig, describe


def _values(**overrides):
    """A stand-in for parsed FLAGS with the trainers' defaults."""
    base = dict(frames_generator=None, clip_length=16, sample_length=30, noise_dim=8, step_noise_dim=2,
                hidden_units=8, num_layers=1, cell="lstm", bidirectional=True, latent_constraint="standardize",
                num_discriminators=2, discriminator_filters=2, discriminator_normalization="batch",
                projection_seed=0, noise_seed=0, finetune_frames_generator=False, frames_generator_lr=2e-5,
                smoothness_weight=0.0, smoothness_on="latents", num_sample_videos=1, loss="non_saturating",
                combiner="mean", gman_alpha=0.8, hypervolume_delta=1.5, hypervolume_normalize=False,
                discriminator_steps=1, sequence_optimizer="rmsprop", sequence_lr=2e-4, sequence_beta1=0.5,
                discriminator_optimizer="rmsprop", discriminator_lr=2e-4, discriminator_beta1=0.5,
                generator_optimizer="rmsprop", generator_lr=2e-4, generator_beta1=0.5, image_size=0,
                latent_dim=8, generator_filters=8, generator_normalization="batch", num_sample_images=4,
                ema_beta=0.999, trajectory="absolute", max_step=1.0, discriminator_joint_batch=False)
    base.update(overrides)
    return _Flags(base)


class _Flags(types.SimpleNamespace):
    def __init__(self, values):
        super().__init__(**values)

    def __getitem__(self, name):
        return types.SimpleNamespace(value=getattr(self, name))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("flags")
    generate_dataset(BouncingBallsConfig(num_scenes=8, num_frames=12, size=32, shards=1, seed=0),
                     str(root / "bb32"), workers=1, show_progress=False)
    keras.utils.set_random_seed(0)
    export_frames_generator(build_frames_generator(64, 1, 8, base_filters=4),
                            describe(FramesGanConfig(image_size=64, latent_dim=8)), str(root / "fg64" / "1"))
    return root, read_metadata(str(root / "bb32"))


def test_frames_image_size_must_match_the_dataset(world):
    _, metadata = world
    with pytest.raises(ConfigError, match=r"--image_size=64 does not match the dataset's frames \(32×32\)"):
        frames_config(_values(image_size=64), metadata.size, metadata.channels)
    assert frames_config(_values(image_size=32), metadata.size, metadata.channels).image_size == 32


def test_video_flags_checked_against_data_and_frames_generator(world):
    root, metadata = world
    with pytest.raises(ConfigError, match="--frames_generator is required"):
        video_config(_values(), metadata)
    with pytest.raises(ConfigError, match=r"--frames_generator=.*makes 64×64×1 frames but --data has 32×32×1"):
        video_config(_values(frames_generator=str(root / "fg64")), metadata)
    with pytest.raises(ConfigError, match=r"--frames_generator=.*is not a frames-generator export"):
        video_config(_values(frames_generator=str(root / "bb32")), metadata)


def test_clip_length_longer_than_scenes_and_bad_batch_are_named(world, tmp_path):
    root, metadata = world
    keras.utils.set_random_seed(0)
    export_frames_generator(build_frames_generator(32, 1, 8, base_filters=4),
                            describe(FramesGanConfig(image_size=32, latent_dim=8)), str(tmp_path / "fg" / "1"))
    with pytest.raises(ConfigError, match=r"--clip_length=16 is longer than the dataset's scenes \(12 frames\)"):
        video_config(_values(frames_generator=str(tmp_path / "fg"), clip_length=16), metadata)
    assert video_config(_values(frames_generator=str(tmp_path / "fg"), clip_length=12), metadata).clip_length == 12
    with pytest.raises(ConfigError, match=r"--batch_size=15 must be a positive multiple of the number of "
                                          r"replicas \(2\)"):
        common_flags.check_global_batch(15, 2)
    with pytest.raises(ConfigError, match="--hypervolume_delta must be > 1"):
        common_flags.adversarial_config(_values(combiner="hypervolume", hypervolume_delta=1.0))
