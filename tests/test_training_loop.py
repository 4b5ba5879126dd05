"""The shared training loop with the frames task on synthetic frames: export, resume, NaN handling,
and the video task on top of the exported frames generator."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tfvidgan.errors import TrainingDivergedError
from tfvidgan.training import loop
from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask
from tfvidgan.training.video_task import VideoGanConfig, VideoGanTask, temporal_smoothness

CONFIG = FramesGanConfig(image_size=32, channels=1, latent_dim=6, generator_filters=8, num_discriminators=3,
                         discriminator_filters=4, num_sample_images=4)
STRATEGY = tf.distribute.MirroredStrategy(["/cpu:0"])


def frames_dataset_fn(nan=False):
    rng = np.random.default_rng(1)
    frames = rng.uniform(-1, 1, size=(16, 32, 32, 1)).astype(np.float32)
    if nan:
        frames[:] = np.nan

    def dataset_fn(context, start_step):
        return tf.data.Dataset.from_tensor_slices(frames).repeat().batch(4, drop_remainder=True)
    return dataset_fn


def _train(model_dir, steps, config=CONFIG, nan=False, **loop_kwargs):
    task = FramesGanTask(config)
    result = loop.run_training(task, frames_dataset_fn(nan), STRATEGY, loop.LoopConfig(
        model_dir=str(model_dir), train_steps=steps, log_every=2, sample_every=2, checkpoint_every=2,
        **loop_kwargs))
    return task, result


@pytest.fixture(scope="module")
def frames_run(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("frames")
    task, result = _train(model_dir, 4)
    return model_dir, task, result


def test_run_writes_checkpoints_summaries_and_versioned_export(frames_run):
    model_dir, task, result = frames_run
    assert (result.start_step, result.final_step) == (0, 4)
    assert tf.train.latest_checkpoint(str(model_dir / "checkpoints")).endswith("ckpt-4")
    assert result.export_path == str(model_dir / "export" / "4")
    assert os.listdir(model_dir / "export") == ["4"]  # no scratch directory left behind
    events = tf.io.gfile.glob(str(model_dir / "summaries" / "events.out.tfevents.*"))
    tags = set()
    for event_file in events:
        for event in tf.compat.v1.train.summary_iterator(event_file):
            tags.update(v.tag for v in event.summary.value)
    assert {"d_loss", "g_loss", "samples/frames", "per_discriminator/d_loss/002"} <= tags
    assert np.isfinite(result.last_metrics["d_loss"])


def test_export_is_usable_without_tfvidgan(frames_run):
    """The SavedModel runs in a process where importing tfvidgan is impossible."""
    model_dir, task, _ = frames_run
    code = textwrap.dedent(f"""
        import sys, json
        sys.modules["tfvidgan"] = None  # any import of tfvidgan now fails
        import numpy as np, tensorflow as tf
        m = tf.saved_model.load({str(model_dir / 'export' / '4')!r})
        a = m.signatures["sample"](num_samples=tf.constant(5), seed=tf.constant(3))
        b = m.signatures["sample"](num_samples=tf.constant(5), seed=tf.constant(3))
        g = m.signatures["serving_default"](z=a["z"])
        print(json.dumps({{"shape": a["frames"].shape.as_list(), "min": float(tf.reduce_min(a["frames"])),
                          "max": float(tf.reduce_max(a["frames"])),
                          "same_seed_same": bool(np.array_equal(a["frames"], b["frames"])),
                          "generate_matches": float(np.abs(g["frames"] - a["frames"]).max()),
                          "inputs": sorted(m.signatures["generate"].structured_input_signature[1])}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["shape"] == [5, 32, 32, 1]
    assert -1.0 <= info["min"] < info["max"] <= 1.0
    assert info["same_seed_same"]
    assert info["generate_matches"] < 1e-5
    assert info["inputs"] == ["z"]
    # And it is the trained generator's EMA (what users sample): same outputs as the in-memory shadow.
    loaded = tf.saved_model.load(str(model_dir / "export" / "4"))
    z = task.sample_latents()
    np.testing.assert_allclose(loaded.signatures["generate"](z=z)["frames"].numpy(),
                               task.sampling_generator(z, training=False).numpy(), atol=1e-5)
    assert task.sampling_generator is task.ema.shadow


def test_resume_continues_from_the_last_checkpoint(tmp_path):
    first, _ = _train(tmp_path, 2, export=False)
    saved = [v.numpy() for v in first.generator.weights + first.discriminators.weights]
    saved_iterations = int(first.g_optimizer.iterations.numpy())
    second = FramesGanTask(CONFIG)
    # A fresh process would build different random weights: prove they are replaced by the checkpoint.
    result = loop.run_training(second, frames_dataset_fn(), STRATEGY, loop.LoopConfig(
        model_dir=str(tmp_path), train_steps=2, export=False))
    assert (result.start_step, result.final_step) == (2, 2)  # already done: nothing to train
    for v, value in zip(second.generator.weights + second.discriminators.weights, saved, strict=True):
        np.testing.assert_array_equal(v.numpy(), value)
    assert int(second.g_optimizer.iterations.numpy()) == saved_iterations == 2
    projection = second.discriminators.get_layer("projection").weights[0]
    index = [id(v) for v in second.generator.weights + second.discriminators.weights].index(id(projection))
    np.testing.assert_array_equal(projection.numpy(), saved[index])
    assert not np.array_equal(projection.numpy(), np.zeros_like(saved[index]))
    third, result = _train(tmp_path, 4, export=False)
    assert (result.start_step, result.final_step) == (2, 4)
    assert int(third.g_optimizer.iterations.numpy()) == 4


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(tmp_path):
    _train(tmp_path, 2, export=False)
    before = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    with pytest.raises(TrainingDivergedError, match=r"became nan at step 3.*ckpt-2"):
        _train(tmp_path, 6, nan=True, export=False)
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")) == before


def test_video_task_trains_on_the_exported_frames_generator(frames_run, tmp_path):
    model_dir, frames_task, _ = frames_run
    config = VideoGanConfig(frames_generator=str(model_dir / "export"), clip_length=8, sample_length=12,
                            noise_dim=4, step_noise_dim=2, hidden_units=8, num_layers=1,
                            num_discriminators=2, discriminator_filters=2, smoothness_weight=0.5,
                            num_sample_videos=2)
    rng = np.random.default_rng(2)
    clips = rng.uniform(-1, 1, size=(4, 8, 32, 32, 1)).astype(np.float32)
    task = VideoGanTask(config)
    result = loop.run_training(
        task, lambda c, s: tf.data.Dataset.from_tensor_slices(clips).repeat().batch(2, drop_remainder=True), STRATEGY,
        loop.LoopConfig(model_dir=str(tmp_path), train_steps=2, log_every=1, sample_every=2, checkpoint_every=2))
    assert result.final_step == 2 and result.last_metrics["g_regularizer"] > 0
    tags = {}
    for event_file in tf.io.gfile.glob(str(tmp_path / "summaries" / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(event_file):
            for v in event.summary.value:
                tags[v.tag] = v
    # Animated GIFs in the image plugin's format ([width, height, gif bytes]) and frame strips.
    gif = tags["samples/video_0"]
    assert gif.metadata.plugin_data.plugin_name == "images"
    width, height, data = tf.make_ndarray(gif.tensor)
    assert (int(width), int(height)) == (32, 32) and data[:6] in (b"GIF87a", b"GIF89a")
    assert "samples/strips" in tags and "per_discriminator/d_loss/001" in tags
    # The frames generator stayed frozen and equals the exported one (the EMA weights).
    for a, b in zip(task.frames_generator.weights, frames_task.sampling_generator.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    loaded = tf.saved_model.load(result.export_path)
    out = loaded.signatures["sample"](num_samples=tf.constant(3), num_frames=tf.constant(12),
                                      seed=tf.constant(0))
    assert out["videos"].shape == (3, 12, 32, 32, 1) and out["latents"].shape == (3, 12, 6)
    latents = out["latents"].numpy()
    np.testing.assert_allclose(latents.mean(-1), 0, atol=1e-4)  # standardised: in the prior's typical set
    np.testing.assert_allclose(latents.std(-1), 1, atol=1e-3)
    # Rendering is per sample: frame (b, t) is the FG applied to latents[b, t].
    direct = frames_task.sampling_generator(latents[1, 5][None], training=False).numpy()[0]
    np.testing.assert_allclose(out["videos"].numpy()[1, 5], direct, atol=1e-5)


def test_temporal_smoothness_is_zero_for_constant_and_known_for_a_ramp():
    constant = tf.ones([2, 5, 3])
    np.testing.assert_allclose(temporal_smoothness(constant).numpy(), [0, 0])
    ramp = tf.reshape(tf.range(2 * 5 * 3, dtype=tf.float32), [2, 5, 3])  # step of 3 in every entry
    np.testing.assert_allclose(temporal_smoothness(ramp).numpy(), [9.0, 9.0])


def test_finetuning_trains_the_frames_generator_at_its_own_rate(frames_run, tmp_path):
    from tfvidgan.training.optimizers import OptimizerConfig
    model_dir, frames_task, _ = frames_run
    config = VideoGanConfig(frames_generator=str(model_dir / "export"), clip_length=4, sample_length=4,
                            noise_dim=4, step_noise_dim=2, hidden_units=8, num_layers=1, num_discriminators=2,
                            discriminator_filters=2, num_sample_videos=1, finetune_frames_generator=True,
                            frames_generator_optimizer=OptimizerConfig(learning_rate=1e-3))
    clips = np.random.default_rng(3).uniform(-1, 1, size=(4, 4, 32, 32, 1)).astype(np.float32)
    task = VideoGanTask(config)
    loop.run_training(task, lambda c, s: tf.data.Dataset.from_tensor_slices(clips).repeat().batch(
        2, drop_remainder=True), STRATEGY, loop.LoopConfig(model_dir=str(tmp_path), train_steps=2, export=False))
    changed = [not np.array_equal(a.numpy(), b.numpy())
               for a, b in zip(task.frames_generator.trainable_variables, frames_task.generator.trainable_variables)]
    assert all(changed)
    assert float(task.f_optimizer.learning_rate.numpy()) == pytest.approx(1e-3)
    assert float(task.s_optimizer.learning_rate.numpy()) == pytest.approx(2e-4)
    assert "frames_generator" in task.checkpoint_objects()
