"""The late-motion matching term of the video trainer (`--late_motion_match_weight`, `VideoGanTask.late_pairs`):
the pairs are consecutive frames of the rollout past the training clips, the term is `motion_energy_match` of
them, and N replicas compute what one does."""

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


def _gated_task(tmp_path, start):
    task = VideoGanTask(VideoGanConfig(frames_generator=tiny_frames_export(tmp_path), clip_length=4, noise_dim=4,
                                       step_noise_dim=2, hidden_units=8, num_layers=1, bidirectional=False,
                                       num_discriminators=2, discriminator_filters=2, late_motion_match_weight=2.0,
                                       late_motion_length=10, late_motion_start_step=start))
    task.build()
    return task


def test_the_term_counts_from_its_start_step_and_reads_0_before(tmp_path):
    task = _gated_task(tmp_path, start=3)
    clips = tf.constant(np.random.default_rng(3).uniform(-1, 1, size=(4, 4, 32, 32, 1)), tf.float32)
    step = tf.function(task.train_step)   # as the loop runs it (one trace: the step is a tensor)
    before = step(clips, tf.constant(2, tf.int64))
    after = step(clips, tf.constant(3, tf.int64))
    assert float(before["late_motion_log_ratio"]) == 0.0 and float(before["g_regularizer"]) == 0.0
    assert np.isfinite(float(after["late_motion_log_ratio"])) and float(after["late_motion_log_ratio"]) != 0
    assert float(after["g_regularizer"]) == pytest.approx(2.0 * float(after["late_motion_log_ratio"]) ** 2, rel=1e-4)


def test_before_its_start_step_the_late_rollout_is_not_run(tmp_path, monkeypatch):
    """In the traced step (as the loop runs it) a counter inside `late_pairs` moves only from the start step on:
    the late rollout runs in one branch of a `tf.cond`, never before (until a later session its forward pass
    ran there only to be logged). From the start step every sequence-generator weight gets a gradient from the
    term."""
    task = _gated_task(tmp_path, start=5)
    runs = tf.Variable(0, dtype=tf.int64)
    original = task.late_pairs

    def counted(batch, step):
        with tf.control_dependencies([runs.assign_add(1)]):
            return tf.identity(original(batch, step))
    monkeypatch.setattr(task, "late_pairs", counted)
    clips = tf.constant(np.random.default_rng(3).uniform(-1, 1, size=(4, 4, 32, 32, 1)), tf.float32)
    step = tf.function(task.train_step)
    seen = []
    for s in (4, 5, 6):
        step(clips, tf.constant(s, tf.int64))
        seen.append(int(runs.numpy()))
    assert seen == [0, 1, 2]
    weights = task.sequence_generator.trainable_weights
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(original(3, tf.constant(5, tf.int64)))
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in tape.gradient(total, weights))


def test_under_the_loop_the_term_is_gated_then_energy_matching_on_one_and_two_replicas(tmp_path):
    """Two steps of a run whose term starts at step 1, under `MirroredStrategy` and the training loop. Step 0
    (not computed): both log 0 and the term adds nothing to the objective. Step 1: the same log-ratio on one
    and two replicas, and the objective is w × log-ratio² (`motion_energy_match` of that step's `late_pairs`)."""
    one, two = video_step_on_one_and_two_replicas(tmp_path, steps=2, late_motion_match_weight=2.0,
                                                  late_motion_length=10, late_motion_start_step=1)
    ratio = [logged_scalars(tmp_path / run, "late_motion_log_ratio") for run in ("run1", "run2")]
    regularizer = [logged_scalars(tmp_path / run, "g_regularizer") for run in ("run1", "run2")]
    assert sorted(ratio[0]) == sorted(ratio[1]) == [1, 2]  # logged after steps 0 and 1
    assert ratio[0][1] == ratio[1][1] == 0.0
    assert np.isfinite(ratio[0][2]) and ratio[0][2] != 0
    np.testing.assert_allclose(ratio[1][2], ratio[0][2], rtol=1e-4)
    assert regularizer[0][1] == 0.0 and regularizer[1][1] == 0.0
    assert one["late_motion_log_ratio"] == pytest.approx(ratio[0][2], rel=1e-6)
    np.testing.assert_allclose(two["g_regularizer"], one["g_regularizer"], rtol=1e-4)
    assert one["g_regularizer"] == pytest.approx(2.0 * one["late_motion_log_ratio"] ** 2, rel=1e-4)
