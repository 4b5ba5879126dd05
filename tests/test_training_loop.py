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
from conftest import mirrored_strategy

from tfvidgan.errors import ConfigError, TrainingDivergedError
from tfvidgan.training import loop
from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask
from tfvidgan.training.video_task import VideoGanConfig, VideoGanTask, temporal_smoothness

CONFIG = FramesGanConfig(image_size=32, channels=1, latent_dim=6, generator_filters=8, num_discriminators=3,
                         discriminator_filters=4, num_sample_images=4)
STRATEGY = mirrored_strategy(("/cpu:0",))


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
    loop_kwargs = {"log_every": 2, "sample_every": 2, "checkpoint_every": 2, **loop_kwargs}
    result = loop.run_training(task, frames_dataset_fn(nan), STRATEGY, loop.LoopConfig(
        model_dir=str(model_dir), train_steps=steps, **loop_kwargs))
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


def test_second_order_smoothness_is_zero_on_constant_velocity_and_known_for_a_parabola():
    ramp = tf.reshape(tf.range(10, dtype=tf.float32) * 3.0, [1, 10, 1])
    np.testing.assert_allclose(temporal_smoothness(ramp, order=2).numpy(), [0.0])
    parabola = tf.reshape(tf.square(tf.range(6, dtype=tf.float32)), [1, 6, 1])  # second difference 2
    np.testing.assert_allclose(temporal_smoothness(parabola, order=2).numpy(), [4.0])
    with pytest.raises(ConfigError, match="--smoothness_order"):
        VideoGanConfig(frames_generator="x", smoothness_order=3)


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


# --- Run-directory lock, run config, divergence after the update, SIGTERM (issue 14) -------------------

def _hold_lock_in_subprocess(model_dir):
    """A separate process that takes the run lock and waits; returns it once the lock is held."""
    code = ("import sys; from tfvidgan.training.run_lock import lock_run_dir; "
            f"lock_run_dir({str(model_dir)!r}); print('locked', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_run_in_the_same_model_dir_fails_at_once_naming_the_holder(tmp_path):
    import signal
    import socket

    from tfvidgan.errors import RunLockedError
    holder = _hold_lock_in_subprocess(tmp_path)
    try:
        with pytest.raises(RunLockedError, match=rf"--model_dir=.* is in use by another run \(pid {holder.pid} "
                                                 rf"on host {socket.gethostname()}, started "):
            _train(tmp_path, 2, export=False)
        assert not (tmp_path / "checkpoints").exists()  # refused before anything was written
    finally:
        holder.send_signal(signal.SIGKILL)  # a killed holder leaves a stale lock file behind ...
        holder.wait()
    _, result = _train(tmp_path, 1, export=False)  # ... which the next run takes over
    assert result.final_step == 1
    # The lock is re-entrant within a process and released at the end of run_training.
    from tfvidgan.training.run_lock import lock_run_dir
    with lock_run_dir(str(tmp_path)), lock_run_dir(str(tmp_path)):
        pass
    lock_run_dir(str(tmp_path)).release()


def test_model_dir_that_is_a_file_or_read_only_is_named(tmp_path, monkeypatch):
    from tfvidgan.errors import ConfigError
    from tfvidgan.training import run_lock
    from tfvidgan.training.run_lock import check_model_dir
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match=r"--model_dir='.*file' is a file, not a directory"):
        check_model_dir(str(a_file))
    with pytest.raises(ConfigError, match=r"--model_dir='.*file/run'.*is a file"):
        check_model_dir(str(a_file / "run"))
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        if os.access(read_only, os.W_OK):
            # Root bypasses permission bits (CI runs as root): answer as the kernel does for other users,
            # from the mode bits of the 0o555 directory, so the check's messages are still exercised.
            real_access = os.access

            def access_by_mode(path, mode):
                if os.path.realpath(path) == os.path.realpath(read_only) and mode & os.W_OK:
                    return False
                return real_access(path, mode)
            monkeypatch.setattr(run_lock.os, "access", access_by_mode)
        with pytest.raises(ConfigError, match=r"--model_dir='.*ro/run' cannot be created \(.*ro' is not writable"):
            check_model_dir(str(read_only / "run"))
        with pytest.raises(ConfigError, match=r"--model_dir='.*ro' is not writable"):
            check_model_dir(str(read_only))
    finally:
        read_only.chmod(0o755)


def test_resuming_with_other_architecture_flags_lists_them(tmp_path):
    import dataclasses

    from tfvidgan.errors import ConfigError
    from tfvidgan.training.optimizers import OptimizerConfig
    _train(tmp_path, 1, export=False)
    stored = json.loads((tmp_path / "run_config.json").read_text())
    assert stored["config"]["num_discriminators"] == 3 and stored["task"] == "FramesGanConfig"
    other = dataclasses.replace(CONFIG, num_discriminators=4, generator_filters=16)
    task = FramesGanTask(other)
    with pytest.raises(ConfigError) as error:
        loop.run_training(task, frames_dataset_fn(), STRATEGY, loop.LoopConfig(
            model_dir=str(tmp_path), train_steps=2, export=False, flags={"num_discriminators": 4}))
    message = str(error.value)
    assert "--num_discriminators: checkpoint 3, now 4" in message
    assert "generator_filters: checkpoint 8, now 16" in message        # no such flag given: the field name
    assert "latent_dim" not in message and "Keras" not in message
    # Learning rates (and loss, combiner, sampling) may change on resume.
    lower = dataclasses.replace(CONFIG, generator_optimizer=OptimizerConfig(learning_rate=1e-5))
    _, result = _train(tmp_path, 2, config=lower, export=False)
    assert (result.start_step, result.final_step) == (1, 2)


def test_a_checkpoint_that_does_not_fit_the_model_is_a_config_error_not_a_shape_error(tmp_path):
    import dataclasses

    from tfvidgan.errors import ConfigError
    _train(tmp_path, 1, export=False)
    (tmp_path / "run_config.json").unlink()  # e.g. a run from before run_config.json existed
    with pytest.raises(ConfigError, match=r"the latest checkpoint .*ckpt-1 does not match the model built from "
                                          r"the flags"):
        _train(tmp_path, 2, config=dataclasses.replace(CONFIG, latent_dim=7), export=False)


def _huge_lr(config=CONFIG, lr=1e30):
    import dataclasses

    from tfvidgan.training.optimizers import OptimizerConfig
    return dataclasses.replace(config, generator_optimizer=OptimizerConfig(learning_rate=lr))


def test_exploding_weights_are_caught_after_the_update_and_never_checkpointed(tmp_path):
    _train(tmp_path, 2, export=False)
    good = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    # RMSprop at 1e30: the step's losses are still fine (computed before the update), the weights are not.
    with pytest.raises(TrainingDivergedError, match=r"weight '.*' reached \|w\| = .* after the update of step 3, "
                                                    r"beyond --divergence_threshold=1e\+06.*kept: .*ckpt-2"):
        _train(tmp_path, 6, config=_huge_lr())
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")) == good
    assert not (tmp_path / "export").exists()
    reader = tf.train.load_checkpoint(good)
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if np.issubdtype(np.asarray(value).dtype, np.floating) and "optimizer" not in name:
            assert np.all(np.abs(value) < 1e3), name


def test_finite_runaway_loss_beyond_the_threshold_stops_without_checkpoint_or_export(tmp_path):
    with pytest.raises(TrainingDivergedError, match=r"loss '\w+' reached .* at step 1, beyond "
                                                    r"--divergence_threshold=0\.01; stopping"):
        _train(tmp_path, 4, divergence_threshold=0.01)
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")) is None
    assert not (tmp_path / "export").exists()


def test_divergence_threshold_zero_only_stops_on_non_finite_values(tmp_path):
    _, result = _train(tmp_path, 2, divergence_threshold=0.0, export=False)  # losses ~1 > 0: not a stop
    assert result.final_step == 2


def test_sigterm_saves_a_checkpoint_at_the_step_reached_and_stops(tmp_path):
    import signal
    import threading

    from tfvidgan.errors import TrainingPreempted
    before = signal.getsignal(signal.SIGTERM)
    stop = threading.Event()

    def terminate_once_training():
        # SIGTERM once the loop's handler is installed (on a loaded machine building the task can take longer
        # than any fixed delay, and an earlier SIGTERM would kill the test process itself), a second later.
        while signal.getsignal(signal.SIGTERM) == before and not stop.wait(0.05):
            pass
        if not stop.wait(1.0):
            os.kill(os.getpid(), signal.SIGTERM)
    timer = threading.Thread(target=terminate_once_training, daemon=True)
    timer.start()
    try:
        with pytest.raises(TrainingPreempted, match=r"SIGTERM: stopped at step (\d+) and saved .*ckpt-\1; run the "
                                                    r"same command to resume") as error:
            _train(tmp_path, 100_000, export=False, log_every=100_000, sample_every=100_000,
                   checkpoint_every=100_000)
    finally:
        stop.set()
    step = error.value.step
    assert step >= 1 and error.value.checkpoint.endswith(f"ckpt-{step}")
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith(f"ckpt-{step}")
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is only installed while training
    _, result = _train(tmp_path, step + 1, export=False)
    assert (result.start_step, result.final_step) == (step, step + 1)


def test_resuming_a_run_from_before_a_config_field_existed_accepts_its_default(tmp_path):
    """A field added to the config after a checkpoint was written is absent from run_config.json: resuming with
    its default (the old behaviour) is allowed; with another value it is a different model and is refused."""
    import dataclasses

    from tfvidgan.errors import ConfigError
    from tfvidgan.training.run_lock import RUN_CONFIG_FILE, check_run_config

    config = FramesGanConfig(latent_dim=8)
    check_run_config(str(tmp_path), config, {}, has_checkpoint=False)
    path = tmp_path / RUN_CONFIG_FILE
    record = json.loads(path.read_text())
    del record["config"]["projection_seed"]  # pretend the checkpoint predates this field
    path.write_text(json.dumps(record))
    check_run_config(str(tmp_path), config, {}, has_checkpoint=True)  # its default: the same model
    assert json.loads(path.read_text())["config"]["projection_seed"] == FramesGanConfig().projection_seed
    path.write_text(json.dumps(record))
    changed = dataclasses.replace(config, projection_seed=FramesGanConfig().projection_seed + 1)
    with pytest.raises(ConfigError, match="--projection_seed: checkpoint '<absent>'"):
        check_run_config(str(tmp_path), changed, {"projection_seed": 1}, has_checkpoint=True)


def test_a_run_recorded_with_renamed_fields_resumes_under_the_new_names(tmp_path):
    """The reconstructor's `critic_filters`/`critic_optimizer.*` are now `discriminator_*`: a run recorded
    with the old names still resumes with the same values, and a real change is still refused."""
    import dataclasses

    from tfvidgan.errors import ConfigError
    from tfvidgan.training.optimizers import OptimizerConfig
    from tfvidgan.training.reconstruction_task import ReconstructionConfig
    from tfvidgan.training.run_lock import RUN_CONFIG_FILE, check_run_config

    config = ReconstructionConfig(num_frames=4, height=8, width=8, mask=np.ones((8, 8), np.float32),
                                  adversarial_weight=0.1, discriminator_filters=3,
                                  discriminator_optimizer=OptimizerConfig(name="adam", learning_rate=1e-4))
    check_run_config(str(tmp_path), config, {}, has_checkpoint=False)
    path = tmp_path / RUN_CONFIG_FILE
    record = json.loads(path.read_text())
    record["config"] = {("critic_" + k[len("discriminator_"):] if k.startswith("discriminator_") else k): v
                        for k, v in record["config"].items()}
    assert "critic_filters" in record["config"] and "critic_optimizer.name" in record["config"]
    path.write_text(json.dumps(record))
    check_run_config(str(tmp_path), config, {}, has_checkpoint=True)  # same model under the new names
    path.write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="--discriminator_filters: checkpoint 3, now 5"):
        check_run_config(str(tmp_path), dataclasses.replace(config, discriminator_filters=5),
                         {"discriminator_filters": 5}, has_checkpoint=True)


def test_read_run_config_rebuilds_the_recorded_config(tmp_path):
    """`read_run_config` inverts the record `check_run_config` writes, nested dataclasses included."""
    import dataclasses

    from tfvidgan.errors import ConfigError
    from tfvidgan.training.optimizers import OptimizerConfig
    from tfvidgan.training.run_lock import check_run_config, read_run_config

    config = FramesGanConfig(latent_dim=7, num_discriminators=5,
                             generator_optimizer=OptimizerConfig(name="adam", learning_rate=1e-3, beta_1=0.25),
                             adversarial=dataclasses.replace(FramesGanConfig().adversarial, loss="hinge"))
    check_run_config(str(tmp_path), config, {}, has_checkpoint=False)
    assert read_run_config(str(tmp_path), FramesGanConfig) == config
    with pytest.raises(ConfigError, match="records a FramesGanConfig, not a VideoGanConfig"):
        read_run_config(str(tmp_path), VideoGanConfig)
    with pytest.raises(ConfigError, match="run_config.json: cannot read"):
        read_run_config(str(tmp_path / "missing"), FramesGanConfig)


def test_frame_critic_term_scales_with_its_weight_and_needs_exported_discriminators(frames_run, tmp_path):
    """The frames export's frozen discriminators judge every rendered frame: the generator's extra term is
    weight × mean over frames of softplus(−mean_k D_k) — positive and linear in the weight (same seeds, same
    first step) — and the frames discriminators stay frozen. An export without discriminators is named."""
    import keras

    from tfvidgan.errors import ConfigError
    from tfvidgan.export import export_frames_generator
    from tfvidgan.training.frames_task import describe

    model_dir, frames_task, _ = frames_run
    rng = np.random.default_rng(2)
    clips = rng.uniform(-1, 1, size=(4, 8, 32, 32, 1)).astype(np.float32)
    terms = {}
    for weight in (1.0, 3.0):
        keras.utils.set_random_seed(0)
        config = VideoGanConfig(frames_generator=str(model_dir / "export"), clip_length=8, sample_length=8,
                                noise_dim=4, step_noise_dim=2, hidden_units=8, num_layers=1, num_discriminators=2,
                                discriminator_filters=2, num_sample_videos=2, frame_critic_weight=weight)
        task = VideoGanTask(config)
        result = loop.run_training(
            task, lambda c, s: tf.data.Dataset.from_tensor_slices(clips).repeat().batch(2, drop_remainder=True),
            STRATEGY, loop.LoopConfig(model_dir=str(tmp_path / str(weight)), train_steps=1, log_every=1,
                                      sample_every=100, checkpoint_every=100, export=False))
        terms[weight] = float(result.last_metrics["g_regularizer"])
        assert not task.frame_critic.trainable_variables
        for a, b in zip(task.frame_critic.weights, frames_task.discriminators.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert terms[1.0] > 0
    np.testing.assert_allclose(terms[3.0], 3 * terms[1.0], rtol=1e-4)
    export_frames_generator(frames_task.sampling_generator, describe(frames_task.config), str(tmp_path / "old"))
    with pytest.raises(ConfigError, match="--frames_generator=.*has no discriminators"):
        VideoGanTask(VideoGanConfig(frames_generator=str(tmp_path / "old"), frame_critic_weight=1.0)).build()
