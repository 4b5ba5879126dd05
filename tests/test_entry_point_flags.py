"""Flags that contradict the data or each other fail before training, naming the flag."""
import types

import keras
import pytest
from absl import flags

from tfvidgan import common_flags, train_frames, train_video
from tfvidgan.data.bouncing_balls import BouncingBallsConfig, generate_dataset
from tfvidgan.data.metadata import read_metadata
from tfvidgan.errors import ConfigError
from tfvidgan.export import export_frames_generator
from tfvidgan.models.frames_generator import build_frames_generator
from tfvidgan.train_frames import frames_config
from tfvidgan.train_video import video_config
from tfvidgan.training.frames_task import FramesGanConfig, describe


def _values(**overrides):
    """Parsed flags of the frames and the video trainer (their real definitions and defaults), overridden."""
    values = {}
    for module in (train_frames, train_video):
        parsed = flags.FlagValues()
        module.define_flags(parsed)
        parsed(["prog"])
        values.update({name: parsed[name].value for name in parsed})
    values.update(overrides)
    return types.SimpleNamespace(**values)


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
        common_flags.check_adversarial_flags(_values(combiner="hypervolume", hypervolume_delta=1.0))
