"""The late-motion matching term of the video trainer (`--late_motion_match_weight`, `VideoGanTask.late_pairs`):
the pairs are consecutive frames of the rollout past the training clips, the term is `motion_energy_match` of
them, and N replicas compute what one does."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from conftest import logged_scalars, tiny_frames_export, video_step_on_one_and_two_replicas

from tfvidgan.errors import ConfigError
from tfvidgan.training import video_task
from tfvidgan.training.noise import replica_uniform_int
from tfvidgan.training.video_task import VideoGanConfig, VideoGanTask


def _time_coded_task(monkeypatch, clip_length=4, length=12):
    """A task whose sequence generator emits latents[b, t] = (t, b, 0) and whose rendering is the identity,
    so a late pair shows which rollout steps it came from."""
    task = VideoGanTask(VideoGanConfig(frames_generator="unused", clip_length=clip_length,
                                       late_motion_match_weight=1.0, late_motion_length=length))

    def sequence_generator(noise, training):
        batch, steps = tf.shape(noise["noise"])[0], tf.shape(noise["step_noise"])[1]
        t = tf.cast(tf.tile(tf.range(steps)[None, :, None], [batch, 1, 1]), tf.float32)
        b = tf.cast(tf.tile(tf.range(batch)[:, None, None], [1, steps, 1]), tf.float32)
        return tf.concat([t, b, tf.zeros_like(t)], axis=-1)
    task.sequence_generator, task.frames_generator = sequence_generator, None
    monkeypatch.setattr(video_task, "render", lambda generator, latents: latents)
    return task


def test_pairs_are_consecutive_steps_past_the_clip_and_cover_every_late_step(monkeypatch):
    task = _time_coded_task(monkeypatch, clip_length=4, length=12)
    seen = []
    for step in range(40):
        pairs = task.late_pairs(16, tf.constant(step, tf.int64)).numpy()      # [16, 2, 3]
        assert pairs.shape == (16, 2, 3)
        np.testing.assert_array_equal(pairs[:, 1, 0] - pairs[:, 0, 0], 1)       # frames t − 1 and t
        np.testing.assert_array_equal(pairs[:, :, 1], np.tile(np.arange(16)[:, None], [1, 2]))  # each sample's own rollout
        seen.extend(pairs[:, 1, 0].astype(int))
    counts = np.bincount(seen, minlength=12)
    assert counts[:4].sum() == 0 and counts[4:].min() > 0.6 * len(seen) / 8     # t uniform on {4, …, 11}
    # The draw is a function of the step: the same step gives the same pairs, another step others.
    same = [task.late_pairs(16, tf.constant(7, tf.int64)).numpy() for _ in range(2)]
    np.testing.assert_array_equal(*same)
    assert not np.array_equal(same[0], task.late_pairs(16, tf.constant(8, tf.int64)).numpy())


def test_late_pairs_render_the_rollout_the_task_would_sample(tmp_path):
    """Without the monkeypatch: the pairs are the frames generator's renderings of steps t − 1, t of the
    sequence generator's rollout from the term's noise stream (checked against a direct rollout)."""
    task = VideoGanTask(VideoGanConfig(frames_generator=tiny_frames_export(tmp_path), clip_length=4, noise_dim=4,
                                       step_noise_dim=2, hidden_units=8, num_layers=1, bidirectional=False,
                                       num_discriminators=2, discriminator_filters=2,
                                       late_motion_match_weight=1.0, late_motion_length=10))
    task.build()
    step = tf.constant(3, tf.int64)
    pairs = task.late_pairs(4, step).numpy()
    rollout = task.sequence_generator(task._noise(4, 10, step, video_task._LATE_MOTION_STREAM), training=True)
    frames = video_task.render(task.frames_generator, rollout).numpy()                        # [4, 10, H, W, C]
    times = 4 + replica_uniform_int(4, 6, 0, step, 768 + video_task._LATE_MOTION_STREAM).numpy()
    expected = np.stack([frames[b, t - 1:t + 1] for b, t in enumerate(times)])
    # The untrained generator's frames are tiny (about 1e-6), so compare relatively; one step earlier differs.
    np.testing.assert_allclose(pairs, expected, rtol=1e-4, atol=1e-12)
    earlier = np.stack([frames[b, t - 2:t] for b, t in enumerate(times)])
    assert not np.allclose(pairs, earlier, rtol=1e-2, atol=1e-12)


@pytest.mark.parametrize("overrides,flag", [(dict(late_motion_match_weight=-1.0), "--late_motion_match_weight"),
                                            (dict(late_motion_start_step=-1), "--late_motion_start_step"),
                                            (dict(late_motion_match_weight=1.0, late_motion_length=16),
                                             "--late_motion_length=16 must be > --clip_length=16")])
def test_bad_settings_are_refused_by_name(overrides, flag):
    with pytest.raises(ConfigError, match=flag):
        VideoGanConfig(frames_generator="x", clip_length=16, **overrides)


def test_the_term_counts_from_its_start_step_and_is_logged_before(tmp_path):
    task = VideoGanTask(VideoGanConfig(frames_generator=tiny_frames_export(tmp_path), clip_length=4, noise_dim=4,
                                       step_noise_dim=2, hidden_units=8, num_layers=1, bidirectional=False,
                                       num_discriminators=2, discriminator_filters=2, late_motion_match_weight=2.0,
                                       late_motion_length=10, late_motion_start_step=3))
    task.build()
    clips = tf.constant(np.random.default_rng(3).uniform(-1, 1, size=(4, 4, 32, 32, 1)), tf.float32)
    step = tf.function(task.train_step)   # as the loop runs it (one trace: the step is a tensor)
    before = step(clips, tf.constant(2, tf.int64))
    after = step(clips, tf.constant(3, tf.int64))
    for metrics in (before, after):
        assert np.isfinite(float(metrics["late_motion_log_ratio"])) and float(metrics["late_motion_log_ratio"]) != 0
    assert float(before["g_regularizer"]) == 0.0
    assert float(after["g_regularizer"]) == pytest.approx(2.0 * float(after["late_motion_log_ratio"]) ** 2, rel=1e-4)


@pytest.mark.parametrize("traced", [False, True])
def test_before_its_start_step_the_late_rollout_is_not_differentiated(tmp_path, traced):
    """Before the start step the term only logs: its rollout is gradient-free (no L-step backward pass through
    the sequence generator); from the start step every sequence-generator weight gets a gradient. The pairs
    are the same frames either way."""
    task = VideoGanTask(VideoGanConfig(frames_generator=tiny_frames_export(tmp_path), clip_length=4, noise_dim=4,
                                       step_noise_dim=2, hidden_units=8, num_layers=1, bidirectional=False,
                                       num_discriminators=2, discriminator_filters=2, late_motion_match_weight=2.0,
                                       late_motion_length=10, late_motion_start_step=5))
    task.build()
    weights = task.sequence_generator.trainable_weights

    def pairs_and_gradients(step):
        with tf.GradientTape() as tape:
            pairs = task.late_pairs(3, step)
            total = tf.reduce_sum(pairs)
        grads = tape.gradient(total, weights)   # None: not connected (eager); zeros: the untaken branch (traced)
        return pairs, [tf.zeros(w.shape) if g is None else g for w, g in zip(weights, grads)]
    run = tf.function(pairs_and_gradients) if traced else pairs_and_gradients
    for step, started in ((4, False), (5, True), (6, True)):
        pairs, grads = run(tf.constant(step, tf.int64))
        norms = [float(tf.reduce_max(tf.abs(g))) for g in grads]
        if started:
            assert min(norms) > 0, step
        else:
            assert max(norms) == 0.0, step
        # The same frames whether or not they are differentiated: the ungated task's pairs of that step (eager;
        # the untrained generator's frames are about 1e-6, traced and eager differ by ~1e-11).
        ungated = dataclasses.replace(task.config, late_motion_start_step=0)
        plain = VideoGanTask(ungated)
        plain.sequence_generator, plain.frames_generator = task.sequence_generator, task.frames_generator
        np.testing.assert_allclose(pairs.numpy(), plain.late_pairs(3, tf.constant(step, tf.int64)).numpy(),
                                   rtol=1e-5, atol=1e-10)


def test_under_the_loop_the_term_is_gated_then_energy_matching_on_one_and_two_replicas(tmp_path):
    """Two steps of a run whose term starts at step 1, under `MirroredStrategy` and the training loop. Step 0
    (the gradient-free branch): both log the same log-ratio and the term adds nothing to the objective. Step 1: the same log-ratio
    again, and the objective is w × log-ratio² (`motion_energy_match` of that step's `late_pairs`)."""
    one, two = video_step_on_one_and_two_replicas(tmp_path, steps=2, late_motion_match_weight=2.0,
                                                  late_motion_length=10, late_motion_start_step=1)
    ratio = [logged_scalars(tmp_path / run, "late_motion_log_ratio") for run in ("run1", "run2")]
    regularizer = [logged_scalars(tmp_path / run, "g_regularizer") for run in ("run1", "run2")]
    assert sorted(ratio[0]) == sorted(ratio[1]) == [1, 2]  # logged after steps 0 and 1
    for step in (1, 2):
        assert np.isfinite(ratio[0][step]) and ratio[0][step] != 0
        np.testing.assert_allclose(ratio[1][step], ratio[0][step], rtol=1e-4)
    assert regularizer[0][1] == 0.0 and regularizer[1][1] == 0.0
    assert one["late_motion_log_ratio"] == pytest.approx(ratio[0][2], rel=1e-6)
    np.testing.assert_allclose(two["g_regularizer"], one["g_regularizer"], rtol=1e-4)
    assert one["g_regularizer"] == pytest.approx(2.0 * one["late_motion_log_ratio"] ** 2, rel=1e-4)
