"""The motion-energy regulariser: steady motion is free, changes of speed cost, contrast does not matter."""
import numpy as np
import pytest
import tensorflow as tf

from tfvidgan.data.bouncing_balls import render
from tfvidgan.errors import ConfigError
from tfvidgan.training.video_task import MOTION_ENERGY_EPSILON, VideoGanConfig, motion_energy_variation


def _ball_clip(positions, size=24, radius=3.0):
    """`[1, T, size, size, 1]` clip in [-1, 1] of one ball (the dataset's renderer) whose centre follows
    `positions` (x, y)."""
    centres = np.asarray(positions, np.float64)[None, :, None, ::-1]  # [1, T, 1, (row, col)]
    frames = render(centres, np.full((1, 1), radius), size=size)
    return tf.constant(frames.astype(np.float32) / 127.5 - 1.0)


def test_matches_the_formula_on_uniform_frames():
    levels = np.array([[0.0, 0.1, 0.1, 0.3], [0.0, 0.1, 0.2, 0.3]], np.float32)  # every pixel alike
    clips = tf.constant(np.broadcast_to(levels[:, :, None, None, None], (2, 4, 3, 5, 2)).copy())
    energy = np.diff(levels.astype(np.float64), axis=1) ** 2  # [0.01, 0, 0.04] and [0.01, 0.01, 0.01]
    expected = energy.var(axis=1) / (energy.mean(axis=1) ** 2 + MOTION_ENERGY_EPSILON**2)
    np.testing.assert_allclose(motion_energy_variation(clips).numpy(), expected, rtol=1e-4, atol=1e-6)
    assert expected[0] > 0.5 and expected[1] < 1e-9


def test_steady_motion_and_bounces_are_free_stalls_and_jitter_are_not():
    steady = _ball_clip([(5.0 + t, 12.0) for t in range(10)])
    bounce = _ball_clip([(14.0 + t if t < 5 else 22.0 - t, 12.0) for t in range(10)])  # turns at x = 18
    stall = _ball_clip([(5.0 + t if t < 5 else 9.0 + 0.2 * (t - 4), 12.0) for t in range(10)])
    jitter = _ball_clip([(5.0 + t, 12.0 + (0.5 if t % 3 == 1 else 0.0)) for t in range(10)])  # uneven steps
    zigzag = _ball_clip([(5.0 + t, 12.0 + (0.5 if t % 2 else 0.0)) for t in range(10)])  # even steps
    values = {name: float(motion_energy_variation(c).numpy()[0])
              for name, c in dict(steady=steady, bounce=bounce, stall=stall, jitter=jitter).items()}
    assert values["steady"] < 1e-4 and values["bounce"] < 1e-4
    assert values["stall"] > 0.5 and values["jitter"] > 2e-3  # a stall costs far more than a jitter
    # What it cannot see: a zigzag whose steps all have the same length.
    assert float(motion_energy_variation(zigzag).numpy()[0]) < 1e-3
    # Scale-free: the same motion at half the contrast costs the same; a frozen clip costs nothing.
    half = motion_energy_variation(0.5 * _ball_clip([(5.0, 12.0), (6.0, 12.0), (6.2, 12.0), (8.0, 12.0)]))
    full = motion_energy_variation(_ball_clip([(5.0, 12.0), (6.0, 12.0), (6.2, 12.0), (8.0, 12.0)]))
    np.testing.assert_allclose(half.numpy(), full.numpy(), rtol=1e-3)
    frozen = _ball_clip([(5.0, 12.0)] * 6)
    np.testing.assert_array_equal(motion_energy_variation(frozen).numpy(), [0.0])


def test_gradient_evens_out_the_steps():
    """One gradient step on the frames lowers the variation (the term is differentiable where it is used)."""
    clips = tf.Variable(_ball_clip([(5.0, 12.0), (6.0, 12.0), (6.2, 12.0), (8.0, 12.0), (9.0, 12.0)]))
    with tf.GradientTape() as tape:
        before = tf.reduce_sum(motion_energy_variation(clips))
    clips.assign_sub(0.02 * tape.gradient(before, clips))
    assert float(tf.reduce_sum(motion_energy_variation(clips))) < float(before)


def test_negative_weight_is_refused_by_name():
    with pytest.raises(ConfigError, match="--motion_energy_weight must be >= 0"):
        VideoGanConfig(frames_generator="x", motion_energy_weight=-1.0)


def test_the_report_metric_is_the_square_root_of_the_regulariser_and_fails_frozen_sets():
    from tfvidgan.errors import DatasetError
    from tfvidgan.metrics.balls import motion_energy_cv, motion_energy_cv_per_clip
    moving = np.concatenate([_ball_clip([(5.0, 12.0), (6.0, 12.0), (6.2, 12.0), (8.0, 12.0), (9.0, 12.0)]),
                             _ball_clip([(5.0 + t, 9.0) for t in range(5)])]).astype(np.float64)
    frozen = np.repeat(moving[:, :1], 5, axis=1)
    per_clip = motion_energy_cv_per_clip(np.concatenate([moving, frozen]))
    np.testing.assert_allclose(per_clip[:2] ** 2, motion_energy_variation(moving).numpy(), rtol=1e-3, atol=1e-6)
    assert per_clip[0] > 0.5 and per_clip[1] < 1e-6 and np.isnan(per_clip[2:]).all()
    assert motion_energy_cv(np.concatenate([moving, frozen])) == pytest.approx(per_clip[:2].mean())
    assert np.isnan(motion_energy_cv(frozen))
    with pytest.raises(DatasetError, match="T>=3"):
        motion_energy_cv(moving[:, :2])


# The motion-energy matching term (`--motion_energy_match_weight`).

def test_motion_energy_is_the_mean_squared_frame_difference():
    from tfvidgan.training.video_task import motion_energy
    levels = np.array([[0.0, 0.1, 0.1, 0.3], [0.0, 0.0, 0.0, 0.0]], np.float32)  # every pixel alike
    clips = tf.constant(np.broadcast_to(levels[:, :, None, None, None], (2, 4, 3, 5, 2)).copy())
    np.testing.assert_allclose(motion_energy(clips).numpy(), [(0.01 + 0 + 0.04) / 3, 0.0], rtol=1e-5)
    # Faster balls change more pixels per frame.
    slow = motion_energy(_ball_clip([(5.0 + 0.5 * t, 12.0) for t in range(6)]))
    fast = motion_energy(_ball_clip([(5.0 + 1.5 * t, 12.0) for t in range(6)]))
    assert float(fast[0]) > 2.0 * float(slow[0]) > 0.0


def _match_value_and_gradient(scale, base, real, weight=0.7):
    """Penalty and d penalty / d scale for fake = scale · base on one replica (no strategy)."""
    from tfvidgan.training.video_task import motion_energy_match
    scale = tf.Variable(scale)
    with tf.GradientTape() as tape:
        match = motion_energy_match(scale * base, real, base.shape[0], weight)
    return float(match.objective_term), float(tape.gradient(match.objective_term, scale)), float(match.log_ratio)


def test_match_penalty_and_gradient_follow_the_closed_form():
    from tfvidgan.training.video_task import MOTION_ENERGY_MATCH_EPSILON as eps
    from tfvidgan.training.video_task import motion_energy
    rng = np.random.default_rng(0)
    base = tf.constant(rng.uniform(-1, 1, (3, 5, 4, 4, 1)).astype(np.float32))
    real = tf.constant(rng.uniform(-1, 1, (3, 5, 4, 4, 1)).astype(np.float32))
    weight, scale = 0.7, 0.5
    e_base = float(tf.reduce_mean(motion_energy(base)))
    e_real = float(tf.reduce_mean(motion_energy(real)))
    gap = np.log(scale**2 * e_base + eps) - np.log(e_real + eps)  # energy scales with scale²
    value, gradient, log_ratio = _match_value_and_gradient(scale, base, real, weight)
    assert log_ratio == pytest.approx(gap, rel=1e-5)
    assert value == pytest.approx(weight * gap**2, rel=1e-5)
    assert gradient == pytest.approx(weight * 2 * gap * 2 * scale * e_base / (scale**2 * e_base + eps), rel=1e-4)
    assert gradient < 0  # too little motion: descending the penalty scales the motion up
    # Matched energies cost nothing and pull nowhere; too much motion is pulled back down.
    value, gradient, _ = _match_value_and_gradient(float(np.sqrt((e_real + eps) / e_base - eps / e_base)),
                                                   base, real, weight)
    assert abs(value) < 1e-9 and abs(gradient) < 1e-4
    assert _match_value_and_gradient(2.0, base, real, weight)[1] > 0


def test_match_is_exact_on_two_replicas_where_per_replica_means_are_not():
    """Penalty and gradient summed over 2 replicas == 1 replica on the whole batch (replicas fed very
    different halves); the same penalty computed from each replica's own means differs by far."""
    from conftest import mirrored_strategy

    from tfvidgan.training.video_task import motion_energy, motion_energy_match
    rng = np.random.default_rng(1)
    base = rng.uniform(-1, 1, (4, 5, 4, 4, 1)).astype(np.float32)
    base[:2] *= 0.1  # replica 0: little motion; replica 1: a lot
    real = rng.uniform(-1, 1, (4, 5, 4, 4, 1)).astype(np.float32)
    weight = 0.7
    one_value, one_gradient, _ = _match_value_and_gradient(1.0, tf.constant(base), tf.constant(real), weight)

    strategy = mirrored_strategy(("/cpu:0", "/cpu:1"))
    with strategy.scope():
        scale = tf.Variable(1.0)
    fake_in, real_in = (strategy.experimental_distribute_values_from_function(
        lambda context, x=x: tf.constant(x[2 * context.replica_id_in_sync_group:][:2])) for x in (base, real))

    @tf.function
    def step(fake_half, real_half):
        def replica_fn(f, r):
            with tf.GradientTape() as tape:
                term = motion_energy_match(scale * f, r, 4, weight).objective_term
            # The mutant: this replica's own means, the penalty split between the replicas.
            gap = tf.math.log(tf.reduce_mean(motion_energy(scale * f)) + 1e-4) - tf.math.log(
                tf.reduce_mean(motion_energy(r)) + 1e-4)
            return term, tape.gradient(term, scale), weight * tf.square(gap) / 2
        return strategy.run(replica_fn, args=(fake_half, real_half))

    terms, gradients, mutants = step(fake_in, real_in)
    total = lambda x: float(strategy.reduce(tf.distribute.ReduceOp.SUM, x, axis=None))  # noqa: E731
    assert total(terms) == pytest.approx(one_value, rel=1e-5)
    assert total(gradients) == pytest.approx(one_gradient, rel=1e-5)
    assert abs(total(mutants) - one_value) > 0.5 * one_value


def test_negative_match_weight_is_refused_by_name():
    with pytest.raises(ConfigError, match="--motion_energy_match_weight must be >= 0"):
        VideoGanConfig(frames_generator="x", motion_energy_match_weight=-0.1)


def test_a_video_step_logs_the_same_log_ratio_on_one_and_two_replicas(tmp_path):
    """The loop sums per-replica metrics: the logged log-ratio and regulariser of one step are those of one
    replica (same initial weights, same global batch)."""
    from conftest import video_step_on_one_and_two_replicas
    one, two = video_step_on_one_and_two_replicas(tmp_path, motion_energy_match_weight=2.0)
    assert one["motion_energy_log_ratio"] < -1.0  # an untrained generator barely moves
    np.testing.assert_allclose(two["motion_energy_log_ratio"], one["motion_energy_log_ratio"], rtol=1e-4)
    np.testing.assert_allclose(two["g_regularizer"], one["g_regularizer"], rtol=1e-4)
    assert one["g_regularizer"] == pytest.approx(2.0 * one["motion_energy_log_ratio"] ** 2, rel=1e-4)


def test_the_discriminator_steps_build_no_generator_terms(tmp_path, monkeypatch):
    """`adversarial.train_step` discards the generator's terms in its discriminator steps, so the video task
    builds them (the matching term's all-reduces, the frame critic's pass) for the generator pass only: one
    step with two discriminator steps traces `motion_energy_match` and the frame critic once each."""
    from conftest import tiny_frames_export

    from tfvidgan.training import adversarial, video_task
    calls = {"match": 0, "critic": 0}
    original = video_task.motion_energy_match

    def counted(*args, **kwargs):
        calls["match"] += 1
        return original(*args, **kwargs)
    monkeypatch.setattr(video_task, "motion_energy_match", counted)
    config = VideoGanConfig(frames_generator=tiny_frames_export(tmp_path), clip_length=4, sample_length=5,
                            noise_dim=4, step_noise_dim=2, hidden_units=8, num_layers=1, bidirectional=False,
                            num_discriminators=2, discriminator_filters=2, motion_energy_match_weight=2.0,
                            frame_critic_weight=1.0, num_sample_videos=1,
                            adversarial=adversarial.AdversarialConfig(joint_batch=True, discriminator_steps=2))
    task = video_task.VideoGanTask(config)
    task.build()
    critic = task.frame_critic
    assert critic is not None

    def counted_critic(*args, **kwargs):
        calls["critic"] += 1
        return critic(*args, **kwargs)
    task.frame_critic = counted_critic
    clips = np.random.default_rng(3).uniform(-1, 1, size=(4, 4, 32, 32, 1)).astype(np.float32)
    # Traced once (the eager Conv3D gradient needs a graph); Python-side counts are per trace.
    metrics = tf.function(task.train_step)(tf.constant(clips), tf.constant(0, tf.int64))
    assert calls == {"match": 1, "critic": 1}
    assert np.isfinite(float(metrics["motion_energy_log_ratio"])) and float(metrics["g_regularizer"]) > 0


# The centroid-acceleration matching term (`--centroid_acceleration_match_weight`).

def _flight(wobble: float, size=32, frames=8, start=(8.0, 14.0), velocity=(1.2, 0.4)):
    """One ball in steady flight, its x pushed by `wobble` px on every other frame (a zigzag)."""
    return _ball_clip([(start[0] + velocity[0] * t + wobble * (t % 2), start[1] + velocity[1] * t)
                       for t in range(frames)], size=size, radius=3.2)


def test_centroid_acceleration_energy_is_near_zero_in_steady_flight_and_grows_with_the_wobble():
    from tfvidgan.training.video_task import centroid_acceleration_energy
    means = []
    for wobble in (0.0, 0.1, 0.3):
        energy, shown = centroid_acceleration_energy(_flight(wobble))
        assert float(shown) > 10  # the ball is seen centred on some pixels of every frame
        means.append(float(energy) / float(shown))
    assert means[0] < 0.04 < 0.2 < means[1] < means[2]  # steady: 8-bit anti-aliasing only


def _centroid_match(scale, steady, wobbly, real, weight=0.7):
    """Penalty, d penalty / d scale and log-ratio for fake = steady + scale · (wobbly − steady), one replica."""
    from tfvidgan.training.video_task import centroid_acceleration_match
    scale = tf.Variable(scale)
    with tf.GradientTape() as tape:
        match = centroid_acceleration_match(steady + scale * (wobbly - steady), real, weight)
    return float(match.objective_term), float(tape.gradient(match.objective_term, scale)), float(match.log_ratio)


def test_centroid_match_follows_the_closed_form_and_pulls_the_wobble_out():
    from tfvidgan.training.video_task import CENTROID_ACCELERATION_MATCH_EPSILON as eps
    from tfvidgan.training.video_task import centroid_acceleration_energy
    steady, wobbly = _flight(0.0), _flight(0.3)
    real = tf.concat([_flight(0.0, start=(9.0, 12.0)), _flight(0.0, velocity=(-0.8, 0.9), start=(20.0, 10.0))], 0)
    weight = 0.7
    (fe, fs), (re, rs) = centroid_acceleration_energy(wobbly), centroid_acceleration_energy(real)
    gap = np.log(float(fe) / float(fs) + eps) - np.log(float(re) / float(rs) + eps)
    value, gradient, log_ratio = _centroid_match(1.0, steady, wobbly, real, weight)
    assert gap > 1.0 and log_ratio == pytest.approx(gap, rel=1e-5)
    assert value == pytest.approx(weight * gap**2, rel=1e-5)
    assert gradient > 0  # descending the penalty moves the fake clip toward the steady one
    # A fake set equal to the real one costs nothing.
    from tfvidgan.training.video_task import centroid_acceleration_match
    same = centroid_acceleration_match(real, real, weight)
    assert abs(float(same.objective_term)) < 1e-9 and abs(float(same.log_ratio)) < 1e-9


def test_centroid_match_is_exact_on_two_replicas():
    """Penalty and gradient summed over 2 replicas == 1 replica on the whole batch, with a steady half and a
    wobbling half (per-replica means would differ)."""
    from conftest import mirrored_strategy

    from tfvidgan.training.video_task import centroid_acceleration_match
    steady = np.concatenate([_flight(0.0).numpy(), _flight(0.0, start=(20.0, 9.0)).numpy()] * 2)
    wobbly = np.concatenate([_flight(0.0).numpy(), _flight(0.0, start=(20.0, 9.0)).numpy(),
                             _flight(0.3).numpy(), _flight(0.2, start=(20.0, 9.0)).numpy()])
    real = np.concatenate([_flight(0.0, start=(9.0, 12.0)).numpy(), _flight(0.05).numpy()] * 2)
    weight = 0.7
    one_value, one_gradient, _ = _centroid_match(0.8, tf.constant(steady), tf.constant(wobbly), tf.constant(real),
                                                 weight)
    strategy = mirrored_strategy(("/cpu:0", "/cpu:1"))
    with strategy.scope():
        scale = tf.Variable(0.8)
    halves = [strategy.experimental_distribute_values_from_function(
        lambda context, x=x: tf.constant(x[2 * context.replica_id_in_sync_group:][:2])) for x in (steady, wobbly, real)]

    @tf.function
    def step(s, w, r):
        def replica_fn(s, w, r):
            with tf.GradientTape() as tape:
                term = centroid_acceleration_match(s + scale * (w - s), r, weight).objective_term
            return term, tape.gradient(term, scale)
        return strategy.run(replica_fn, args=(s, w, r))

    terms, gradients = step(*halves)
    total = lambda x: float(strategy.reduce(tf.distribute.ReduceOp.SUM, x, axis=None))  # noqa: E731
    assert one_value > 0.1
    assert total(terms) == pytest.approx(one_value, rel=1e-4)
    assert total(gradients) == pytest.approx(one_gradient, rel=1e-4)


def test_centroid_match_settings_are_checked_by_name():
    with pytest.raises(ConfigError, match="--centroid_acceleration_match_weight must be >= 0"):
        VideoGanConfig(frames_generator="x", centroid_acceleration_match_weight=-0.1)
    with pytest.raises(ConfigError, match="--centroid_acceleration_match_weight needs --clip_length >= 3"):
        VideoGanConfig(frames_generator="x", centroid_acceleration_match_weight=1.0, clip_length=2)
