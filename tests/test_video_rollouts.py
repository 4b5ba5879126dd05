"""Long-rollout training of the video task (`--rollout_length`): each step rolls out R latent steps, R uniform
on {clip_length, …, rollout_length}, and renders one clip_length window of each sample's rollout.

Checked: windows are contiguous slices of their own rollouts; R and the offsets cover their whole ranges
and change with the step; the draw is the same computation on 1 or 2 replicas (the replicas' windows
tile the single-replica windows); off means the plain clip; bad values and XLA are refused by name."""
import numpy as np
import pytest
import tensorflow as tf
from conftest import mirrored_strategy, tiny_frames_export

from tfvidgan.errors import ConfigError
from tfvidgan.keras_models import VideoGAN
from tfvidgan.models.sequence_generator import build_sequence_generator
from tfvidgan.training import loop
from tfvidgan.training.video_task import VideoGanConfig, VideoGanTask

CLIP, ROLLOUT = 4, 9


def _task(rollout_length=ROLLOUT, clip_length=CLIP):
    task = VideoGanTask(VideoGanConfig(frames_generator="unused", clip_length=clip_length, noise_dim=4,
                                       step_noise_dim=2, rollout_length=rollout_length, noise_seed=5))
    task.sequence_generator = build_sequence_generator(3, noise_dim=4, step_noise_dim=2, hidden_units=8,
                                                       num_layers=1)
    return task


def _is_window(window, rollout):
    return [o for o in range(rollout.shape[0] - window.shape[0] + 1)
            if np.allclose(rollout[o:o + window.shape[0]], window, atol=0)]


def test_windows_are_slices_of_their_rollouts_and_cover_every_length_and_offset():
    task = _task()
    lengths, offsets = set(), set()
    for step in range(40):
        rollout, windows = (t.numpy() for t in task.rollout(3, CLIP, tf.constant(step, tf.int64), stream=0))
        assert CLIP <= rollout.shape[1] <= ROLLOUT and windows.shape == (3, CLIP, 3)
        lengths.add(rollout.shape[1])
        for b in range(3):
            found = _is_window(windows[b], rollout[b])
            assert found, f"step {step} sample {b}: window is not a slice of its rollout"
            offsets.add(found[0])
    assert lengths == set(range(CLIP, ROLLOUT + 1))
    assert offsets == set(range(ROLLOUT - CLIP + 1))
    # The same step and stream draw the same rollout; another stream another.
    a = task.rollout(3, CLIP, tf.constant(7, tf.int64), stream=0)[1].numpy()
    b = task.rollout(3, CLIP, tf.constant(7, tf.int64), stream=0)[1].numpy()
    c = task.rollout(3, CLIP, tf.constant(7, tf.int64), stream=2)[1].numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_off_renders_the_plain_clip():
    for rollout_length in (0, CLIP):
        task = _task(rollout_length)
        assert not task.config.uses_rollouts and task.xla_compatible
        rollout, windows = task.rollout(2, CLIP, tf.constant(1, tf.int64), stream=0)
        assert rollout is windows and windows.shape == (2, CLIP, 3)


def test_two_replicas_draw_what_one_replica_draws():
    task = _task()
    strategy = mirrored_strategy(("/cpu:0", "/cpu:1"))

    @tf.function
    def both(step):
        return strategy.run(lambda: task.rollout(2, CLIP, step, stream=0)[1])

    for step in (0, 3, 11):
        step_t = tf.constant(step, tf.int64)
        first, second = (v.numpy() for v in strategy.experimental_local_results(both(step_t)))
        single = task.rollout(4, CLIP, step_t, stream=0)[1].numpy()
        # Batch 2 and batch 4 take different matmul paths: float32 rounding (up to 3e-6 seen), not a draw.
        np.testing.assert_allclose(np.concatenate([first, second]), single, atol=2e-5)


def test_a_rollout_run_trains_and_refuses_xla_by_name(tmp_path):
    with pytest.raises(ConfigError, match="--rollout_length=3 must be 0 .* >= --clip_length=4"):
        VideoGanConfig(frames_generator="x", clip_length=4, rollout_length=3)
    config = VideoGanConfig(frames_generator=tiny_frames_export(tmp_path), clip_length=CLIP, sample_length=6,
                            noise_dim=4, step_noise_dim=2, hidden_units=8, num_layers=1, num_discriminators=2,
                            discriminator_filters=2, smoothness_weight=0.5, smoothness_order=2,
                            num_sample_videos=1, rollout_length=ROLLOUT)
    clips = np.random.default_rng(3).uniform(-1, 1, size=(4, CLIP, 32, 32, 1)).astype(np.float32)

    def data(context, start):
        return tf.data.Dataset.from_tensor_slices(clips).repeat().batch(2, drop_remainder=True)

    task = VideoGanTask(config)
    with pytest.raises(ConfigError, match="--jit_compile.*--rollout_length"):
        loop.run_training(task, data, None, loop.LoopConfig(model_dir=str(tmp_path / "xla"), train_steps=1,
                                                            jit_compile=True))
    result = loop.run_training(task, data, None, loop.LoopConfig(model_dir=str(tmp_path / "run"), train_steps=3,
                                                                 log_every=1, export=False))
    assert result.final_step == 3 and result.last_metrics["g_regularizer"] > 0
    assert all(np.all(np.isfinite(v)) for v in result.last_metrics.values())
    with pytest.raises(ConfigError, match="jit_compile.*rollout_length"):
        VideoGAN(config).compile(jit_compile=True)
