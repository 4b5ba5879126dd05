"""Test set-up: two logical CPU devices, so distribution tests can run two replicas on one CPU.

This must happen before TensorFlow initialises its devices, hence at import time of the conftest.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfvidgan.training.strategy import split_cpu  # noqa: E402

split_cpu(2)

import functools  # noqa: E402

import tensorflow as tf  # noqa: E402


@functools.lru_cache(maxsize=None)
def mirrored_strategy(devices: tuple[str, ...]) -> tf.distribute.MirroredStrategy:
    """The process's one MirroredStrategy over `devices` (a tuple such as ("/cpu:0", "/cpu:1")).

    Collective-op instance keys of two MirroredStrategy objects over the same devices collide inside one
    process ("Shape mismatch in the collective instance ..."), as in real use there is one strategy per
    process; every test module asks here instead of constructing its own.
    """
    return tf.distribute.MirroredStrategy(list(devices))


def tiny_frames_config(**overrides):
    """A 32×32 frames-GAN config small enough to train a few steps in a test (3 discriminators)."""
    from tfvidgan.training.frames_task import FramesGanConfig
    return FramesGanConfig(**{**dict(image_size=32, channels=1, latent_dim=6, generator_filters=8,
                                     num_discriminators=3, discriminator_filters=4, num_sample_images=4),
                              **overrides})


def random_frames_dataset(context, start_step):
    """A `dataset_fn` for `run_training`: 16 fixed uniform-noise 32×32 frames, repeated, batches of 4."""
    import numpy as np
    frames = np.random.default_rng(1).uniform(-1, 1, size=(16, 32, 32, 1)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices(frames).repeat().batch(4, drop_remainder=True)


def tiny_frames_export(tmp_path) -> str:
    """An untrained 32×32 frames-generator export (Z = 3, 2 discriminators, no EMA) under `tmp_path/frames`,
    for video-GAN tests; returns its base directory."""
    from tfvidgan.export import export_version
    from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask
    task = FramesGanTask(FramesGanConfig(image_size=32, channels=1, latent_dim=3, generator_filters=4,
                                         num_discriminators=2, discriminator_filters=2, ema_beta=0.0))
    task.build()
    export_version(str(tmp_path / "frames"), task.export)
    return str(tmp_path / "frames")


TINY_CLIP = 4


def tiny_video_config(frames: str, **overrides):
    """A video-GAN config on `frames` (a `tiny_frames_export`) small enough to train a few steps: clips of
    `TINY_CLIP` frames, samples of 5."""
    from tfvidgan.training.video_task import VideoGanConfig
    fields = dict(frames_generator=frames, clip_length=TINY_CLIP, sample_length=5, noise_dim=4, step_noise_dim=2,
                  hidden_units=8, num_layers=1, num_discriminators=2, discriminator_filters=2, num_sample_videos=1)
    return VideoGanConfig(**{**fields, **overrides})


def random_clips_dataset(context, start_step):
    """A `dataset_fn` for `run_training`: 4 fixed uniform-noise clips `[TINY_CLIP, 32, 32, 1]`, repeated,
    batches of 2."""
    import numpy as np
    clips = np.random.default_rng(3).uniform(-1, 1, size=(4, TINY_CLIP, 32, 32, 1)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices(clips).repeat().batch(2, drop_remainder=True)


def train_tiny_video(config, model_dir, steps: int, **loop_overrides):
    """(task, `LoopResult`) of `steps` steps of `VideoGanTask(config)` on `random_clips_dataset`, no strategy,
    checkpointing every step."""
    from tfvidgan.training import loop
    from tfvidgan.training.video_task import VideoGanTask
    task = VideoGanTask(config)
    result = loop.run_training(task, random_clips_dataset, None, loop.LoopConfig(
        model_dir=str(model_dir), train_steps=steps, log_every=1, sample_every=steps, checkpoint_every=1,
        **loop_overrides))
    return task, result


def step_both(plain, regularised, real):
    """Runs one `train_step` (step 0) of two frames tasks built with the same initial weights, one with a
    generator regulariser: asserts the discriminators took the same step (the term is the generator's alone)
    and returns `(out_plain, out_regularised, moved)`, `moved` the largest generator-weight difference."""
    import numpy as np
    step = tf.constant(0, tf.int64)
    out_plain, out_reg = plain.train_step(real, step), regularised.train_step(real, step)
    for a, b in zip(plain.discriminators.weights, regularised.discriminators.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    moved = max(float(np.max(np.abs(a.numpy() - b.numpy())))
                for a, b in zip(plain.generator.weights, regularised.generator.weights, strict=True))
    return out_plain, out_reg, moved


def video_step_on_one_and_two_replicas(tmp_path, steps: int = 1, **overrides):
    """`(one, two)`: the logged metrics of the last of `steps` video-GAN steps (tiny causal config on
    `tiny_frames_export` plus `overrides`, 4 fixed clips of 4 frames as the global batch, same initial weights) on
    1 and on 2 replicas. Every step's metrics are in the TensorBoard summaries of `tmp_path/run1` and `run2`
    (`logged_scalars`)."""
    import keras
    import numpy as np

    from tfvidgan.training import loop
    from tfvidgan.training.video_task import VideoGanConfig, VideoGanTask
    config = VideoGanConfig(**{**dict(frames_generator=tiny_frames_export(tmp_path), clip_length=4, sample_length=5,
                                      noise_dim=4, step_noise_dim=2, hidden_units=8, num_layers=1, bidirectional=False,
                                      num_discriminators=2, discriminator_filters=2, num_sample_videos=1),
                               **overrides})
    clips = np.random.default_rng(3).uniform(-1, 1, size=(4, 4, 32, 32, 1)).astype(np.float32)
    metrics = []
    for devices in (("/cpu:0",), ("/cpu:0", "/cpu:1")):
        keras.utils.set_random_seed(123)
        per_replica = 4 // len(devices)
        result = loop.run_training(
            VideoGanTask(config),
            lambda context, start, b=per_replica: tf.data.Dataset.from_tensor_slices(clips).batch(
                b, drop_remainder=True).repeat(),
            mirrored_strategy(devices),
            loop.LoopConfig(model_dir=str(tmp_path / f"run{len(devices)}"), train_steps=steps, log_every=1,
                            export=False))
        metrics.append(result.last_metrics)
    return tuple(metrics)


def logged_scalars(model_dir, tag: str) -> dict:
    """`{step: value}` of the scalar `tag` in the TensorBoard summaries of the run in `model_dir`."""
    values = {}
    for event_file in tf.io.gfile.glob(str(model_dir) + "/summaries/events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(event_file):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return values
