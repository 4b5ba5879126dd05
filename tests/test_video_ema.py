"""EMA of the video generator (`VideoGanConfig.ema_beta`): both generators averaged when the frames
generator is fine-tuned (only the sequence generator when it is frozen), the averages checkpointed and
restored on resume, and the export, `sample` and the Keras model rendering with the averaged weights."""
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_clips_dataset, tiny_frames_export, tiny_video_config, train_tiny_video

from tfvidgan.errors import ConfigError
from tfvidgan.export import VIDEO_GENERATOR, read_description
from tfvidgan.keras_models import VideoGAN
from tfvidgan.models.frames_generator import render
from tfvidgan.training.frames_task import FramesGanConfig
from tfvidgan.training.optimizers import OptimizerConfig
from tfvidgan.training.video_task import VideoGanConfig


def _differ(a, b):
    """Any weight not bit-identical. (Not `allclose`: through this fixture's untrained 4-filter frames generator
    the sequence generator's gradients are tiny, and after 3 steps its raw and averaged weights differ by
    1e-7 to 1e-6 depending on the initial weights, below allclose's tolerance; the test then failed or passed
    with the test order, which seeds the initial weights.)"""
    return any(not np.array_equal(x, y) for x, y in zip(a, b))


def test_both_generators_are_averaged_checkpointed_resumed_and_exported(tmp_path):
    config = tiny_video_config(tiny_frames_export(tmp_path), ema_beta=0.9, finetune_frames_generator=True,
                     frames_generator_optimizer=OptimizerConfig(learning_rate=1e-2))
    task, _ = train_tiny_video(config, tmp_path / "run", 3, export=False)
    seq_ema, fg_ema = task.sequence_ema.shadow.get_weights(), task.frames_ema.shadow.get_weights()
    assert _differ(task.sequence_generator.get_weights(), seq_ema)       # the averages lag the raw weights
    assert _differ(task.frames_generator.get_weights(), fg_ema)
    resumed, result = train_tiny_video(config, tmp_path / "run", 3)      # nothing to train: restore + export
    assert result.start_step == 3
    for got, want in zip(resumed.sequence_ema.shadow.get_weights() + resumed.frames_ema.shadow.get_weights(),
                         seq_ema + fg_ema):
        np.testing.assert_array_equal(got, want)
    clips, latents = resumed.sample(3, 5, seed=7)
    directory, description = read_description(str(tmp_path / "run" / "export"), VIDEO_GENERATOR)
    assert (description["weights"], description["ema_beta"]) == ("ema", 0.9)
    exported = tf.saved_model.load(directory)
    out = exported.signatures["sample"](num_samples=tf.constant(3), num_frames=tf.constant(5), seed=tf.constant(7))
    np.testing.assert_allclose(out["latents"], latents, atol=1e-5)
    np.testing.assert_allclose(out["videos"], clips, atol=1e-5)
    raw_latents = resumed.sequence_generator(
        {"noise": tf.zeros([1, 4]), "step_noise": tf.zeros([1, 5, 2])}, training=False)
    ema_latents = resumed.sampling_sequence_generator(
        {"noise": tf.zeros([1, 4]), "step_noise": tf.zeros([1, 5, 2])}, training=False)
    assert not np.array_equal(raw_latents, ema_latents)                 # the export is not the raw model


def test_a_frozen_frames_generator_is_not_averaged_and_off_means_raw(tmp_path):
    frames = tiny_frames_export(tmp_path)
    task, _ = train_tiny_video(tiny_video_config(frames, ema_beta=0.9), tmp_path / "frozen", 2, export=False)
    assert task.frames_ema is None and task.sampling_frames_generator is task.frames_generator
    assert "frames_generator_ema" not in task.checkpoint_objects()
    off, _ = train_tiny_video(tiny_video_config(frames), tmp_path / "off", 1, export=False)
    assert off.sequence_ema is None and off.sampling_sequence_generator is off.sequence_generator
    assert off.description()["weights"] == "raw"


def test_the_keras_model_calls_and_samples_with_the_averaged_weights(tmp_path):
    model = VideoGAN(tiny_video_config(tiny_frames_export(tmp_path), ema_beta=0.5))
    model.compile()
    model.fit(random_clips_dataset(None, 0), steps_per_epoch=2, epochs=1, verbose=0)
    t = model.task
    noise = {"noise": tf.ones([2, 4]), "step_noise": tf.ones([2, 5, 2])}
    np.testing.assert_allclose(model(noise), render(t.frames_generator, t.sampling_sequence_generator(noise)),
                               atol=1e-6)
    assert model.sequence_generator_ema is t.sequence_ema.shadow


@pytest.mark.parametrize("beta", [-0.1, 1.0, float("nan")])
def test_bad_beta_is_named_by_both_configs(beta):
    with pytest.raises(ConfigError, match="--ema_beta"):
        VideoGanConfig(frames_generator="x", ema_beta=beta)
    with pytest.raises(ConfigError, match="--ema_beta"):
        FramesGanConfig(ema_beta=beta)
