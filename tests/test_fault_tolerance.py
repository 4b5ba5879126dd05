"""Crash and divergence handling of `python -m tfvidgan.train_frames`, end to end in subprocesses.

* A run SIGKILLed after its second checkpoint, restarted with the same flags, resumes from the last
  saved step (log line and TensorBoard steps), and a run SIGKILLed while exporting leaves no partial
  `export/<version>/`; the final checkpoint is step 40 and the export is complete.
* A diverging run (huge generator learning rate) stops with one line and exit code 1; the exploded weights
  are caught after the update, so no checkpoint or export holds them.
* (slow) A second run on a busy --model_dir is refused naming the holder; SIGTERM saves a checkpoint at the
  step reached and exits 143; a resume with another --latent_dim lists the flag; the same command resumes.

The trainers are real processes (about 5–8 s each just to import TensorFlow); the divergence run
overlaps the first training run to save wall time.
"""
import glob
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 300  # seconds, per process
STEPS, SAVE_EVERY = 40, 5
# Tiny but not instant: about 20-30 ms per step on 2 cores, so steps 10..40 take long enough to kill in.
MODEL_FLAGS = ["--num_discriminators=4", "--discriminator_filters=8", "--generator_filters=16", "--latent_dim=8",
               "--batch_size=32", "--num_sample_images=4", "--log_every=1", "--sample_every=1000"]


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO}


def _start(args, log_path):
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "tfvidgan.train_frames", *args], cwd=REPO, env=_env(),
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()  # the child holds its own descriptor
    return proc


def _finish(proc, log_path):
    try:
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with open(log_path) as f:
        return proc.returncode, f.read()


def _kill_when(proc, condition, what):
    """Polls `condition()` every 5 ms and SIGKILLs `proc` as soon as it holds; fails if proc ends first."""
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            if condition():
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=60)
                return
            if proc.poll() is not None:
                pytest.fail(f"the trainer exited (code {proc.returncode}) before {what}; cannot test the kill")
            time.sleep(0.005)
        pytest.fail(f"timed out waiting for {what}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _checkpoint_step(checkpoint_dir):
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def _logged_steps(event_file, tag="d_loss"):
    steps = []
    try:
        for event in tf.compat.v1.train.summary_iterator(event_file):
            if any(v.tag == tag for v in event.summary.value):
                steps.append(event.step)
    except tf.errors.DataLossError:  # a record cut by the SIGKILL ends the file
        pass
    return steps


def _event_files(summary_dir):
    # events.out.tfevents.<unix time>.<host>.<pid>.<n>.v2: order of creation = order of the runs.
    return sorted(glob.glob(os.path.join(summary_dir, "events.out.tfevents.*")),
                  key=lambda p: int(os.path.basename(p).split(".")[3]))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from tfvidgan.data.bouncing_balls import BouncingBallsConfig, generate_dataset
    directory = str(tmp_path_factory.mktemp("ft_data") / "data")
    generate_dataset(BouncingBallsConfig(num_scenes=16, num_frames=8, size=32, shards=2, seed=3), directory,
                     workers=1, show_progress=False)
    return directory


@pytest.fixture(scope="module")
def crashed_runs(dataset, tmp_path_factory):
    """Run 1 killed after a checkpoint beyond step 5; run 2 (same flags) killed while exporting; run 3
    (same flags) completes. A diverging run goes on alongside run 1."""
    root = tmp_path_factory.mktemp("ft")
    model_dir = str(root / "run")
    checkpoints, export_dir = os.path.join(model_dir, "checkpoints"), os.path.join(model_dir, "export")
    flags = [f"--data={dataset}", f"--model_dir={model_dir}", f"--train_steps={STEPS}",
             f"--checkpoint_every={SAVE_EVERY}", *MODEL_FLAGS]
    nan_dir = str(root / "nan")
    nan_proc = _start([f"--data={dataset}", f"--model_dir={nan_dir}", "--train_steps=20", "--checkpoint_every=1",
                       "--generator_lr=1e30", *MODEL_FLAGS], root / "nan.log")
    info = {"model_dir": model_dir, "checkpoints": checkpoints, "export_dir": export_dir, "nan_dir": nan_dir}
    try:
        first = _start(flags, root / "run1.log")
        _kill_when(first, lambda: _checkpoint_step(checkpoints) > SAVE_EVERY, "a checkpoint beyond step 5")
        info["killed_at_checkpoint"] = _checkpoint_step(checkpoints)
        info["export_after_first_kill"] = sorted(os.listdir(export_dir)) if os.path.isdir(export_dir) else []

        second = _start(flags, root / "run2.log")
        _kill_when(second, lambda: os.path.isdir(export_dir) and any(
            n.startswith(".tmp") for n in os.listdir(export_dir)), "the export's scratch directory")
        info["run2_log"] = open(root / "run2.log").read()
        info["checkpoint_after_second_kill"] = _checkpoint_step(checkpoints)
        info["export_after_second_kill"] = sorted(os.listdir(export_dir))

        info["run3_code"], info["run3_log"] = _finish(_start(flags, root / "run3.log"), root / "run3.log")
    finally:
        info["nan_code"], info["nan_log"] = _finish(nan_proc, root / "nan.log")
    return info


def test_sigkilled_run_resumes_from_its_last_checkpoint(crashed_runs):
    n = crashed_runs["killed_at_checkpoint"]
    assert SAVE_EVERY < n < STEPS, f"killed at checkpoint {n}: the kill must land mid-run"
    assert n % SAVE_EVERY == 0
    assert crashed_runs["export_after_first_kill"] == []
    log = crashed_runs["run2_log"]
    assert f"Resumed from {os.path.join(crashed_runs['checkpoints'], f'ckpt-{n}')} at step {n}" in log
    first_logged = re.findall(r"step (\d+)/40", log)
    assert int(first_logged[0]) == n + 1

    run1_events, run2_events, *rest = _event_files(os.path.join(crashed_runs["model_dir"], "summaries"))
    # Run 2 logged exactly the steps after the checkpoint: nothing before it is redone.
    assert _logged_steps(run2_events) == list(range(n + 1, STEPS + 1))
    # Run 1 logged (and flushed) at most up to the step it was killed at; the steps it did after its last
    # checkpoint are the only ones repeated, fewer than one save interval... plus the save in flight.
    run1 = _logged_steps(run1_events)
    assert run1 == list(range(1, len(run1) + 1))
    assert len(run1) <= n + SAVE_EVERY
    # Run 3 had nothing left to train.
    assert all(_logged_steps(f) == [] for f in rest)


def test_final_checkpoint_is_step_40_with_40_optimizer_updates(crashed_runs):
    assert crashed_runs["checkpoint_after_second_kill"] == STEPS  # saved before the export started
    latest = tf.train.latest_checkpoint(crashed_runs["checkpoints"])
    assert latest.endswith(f"ckpt-{STEPS}")
    reader = tf.train.load_checkpoint(latest)
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == STEPS
    assert reader.get_tensor("g_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == STEPS
    assert reader.get_tensor("d_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == STEPS
    kept = sorted(int(p.rsplit("-", 1)[1].split(".")[0])
                  for p in glob.glob(os.path.join(crashed_runs["checkpoints"], "ckpt-*.index")))
    assert kept == [30, 35, 40]  # --max_checkpoints=3 (default)


def test_kill_during_export_leaves_no_partial_version(crashed_runs):
    # Killed with the scratch directory in place: no numbered version appeared.
    after_kill = crashed_runs["export_after_second_kill"]
    assert [n for n in after_kill if not n.startswith(".")] == []
    assert crashed_runs["run3_code"] == 0, crashed_runs["run3_log"][-3000:]
    assert f"at step {STEPS}" in crashed_runs["run3_log"]  # resumed at the end: exported, nothing trained
    export_dir = crashed_runs["export_dir"]
    version = os.path.join(export_dir, str(STEPS))
    assert os.path.exists(os.path.join(version, "saved_model.pb"))
    loaded = tf.saved_model.load(version)
    frames = loaded.signatures["generate"](z=tf.zeros([2, 8]))["frames"].numpy()
    assert frames.shape == (2, 32, 32, 1) and np.all(np.abs(frames) <= 1)


def test_kill_during_export_leaves_no_scratch_directory(crashed_runs):
    assert os.listdir(crashed_runs["export_dir"]) == [str(STEPS)]


def test_diverging_run_stops_with_one_line_and_never_saves_the_exploded_weights(crashed_runs):
    code, log = crashed_runs["nan_code"], crashed_runs["nan_log"]
    assert code == 1
    assert "Traceback" not in log
    last = log.strip().splitlines()[-1]
    # RMSprop at 1e30: step 1's losses are fine (computed before the update) but the weights after it are
    # not; the check after the update stops the run before checkpoint 1 (which used to hold them) is written.
    match = re.fullmatch(r"tfvidgan\.errors\.TrainingDivergedError: weight '(\S+)' reached \|w\| = (\S+) after "
                         r"the update of step 1, beyond --divergence_threshold=1e\+06; stopping\. The last good "
                         r"checkpoint is kept: none yet\. Lower the learning rate, check the data, or raise "
                         r"--divergence_threshold \(0 = off\)\.", last)
    assert match, log[-3000:]
    assert float(match.group(2)) > 1e6
    checkpoints = os.path.join(crashed_runs["nan_dir"], "checkpoints")
    assert tf.train.latest_checkpoint(checkpoints) is None
    assert not os.path.exists(os.path.join(crashed_runs["nan_dir"], "export"))


def test_resuming_with_a_lower_learning_rate_uses_it(tmp_path):
    """Recovering from a divergence: resume from the kept checkpoint with a smaller learning rate."""
    import dataclasses

    from tfvidgan.training import loop
    from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask
    from tfvidgan.training.optimizers import OptimizerConfig

    frames = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 1)).astype(np.float32)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    config = FramesGanConfig(image_size=32, channels=1, latent_dim=4, generator_filters=4, num_discriminators=1,
                             discriminator_filters=2, num_sample_images=1,
                             generator_optimizer=OptimizerConfig(learning_rate=1e-3),
                             discriminator_optimizer=OptimizerConfig(learning_rate=1e-3))

    def train(config, steps):
        task = FramesGanTask(config)
        loop.run_training(task, lambda context, start: tf.data.Dataset.from_tensors(frames[:4]).repeat(), strategy,
                          loop.LoopConfig(model_dir=str(tmp_path), train_steps=steps, export=False))
        return task

    train(config, 1)
    lower = dataclasses.replace(config, generator_optimizer=OptimizerConfig(learning_rate=1e-5),
                                discriminator_optimizer=OptimizerConfig(learning_rate=1e-5))
    resumed = train(lower, 2)
    assert float(resumed.g_optimizer.learning_rate) == pytest.approx(1e-5)
    assert float(resumed.d_optimizer.learning_rate) == pytest.approx(1e-5)


@pytest.fixture(scope="module")
def preempted_run(dataset, tmp_path_factory):
    """A long run; a second run started on its --model_dir meanwhile; SIGTERM to the first; a resume with
    another --latent_dim; then a resume with the same flags."""
    root = tmp_path_factory.mktemp("sigterm")
    model_dir = str(root / "run")
    flags = [f"--data={dataset}", f"--model_dir={model_dir}", "--checkpoint_every=1000", *MODEL_FLAGS]
    first = _start([*flags, "--train_steps=100000"], root / "first.log")
    info = {"model_dir": model_dir, "first_pid": first.pid}
    try:
        deadline = time.monotonic() + TIMEOUT
        while not re.search(r"step 5/100000", open(root / "first.log").read()):
            assert first.poll() is None and time.monotonic() < deadline, open(root / "first.log").read()[-3000:]
            time.sleep(0.05)
        info["second_code"], info["second_log"] = _finish(_start([*flags, "--train_steps=100000"], root / "second.log"),
                                                          root / "second.log")
        assert first.poll() is None, "the first run must still be training while the second one is refused"
        first.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        info["first_code"], info["first_log"] = _finish(first, root / "first.log")
        info["sigterm_seconds"] = time.monotonic() - t0
        info["checkpoint_after_sigterm"] = _checkpoint_step(os.path.join(model_dir, "checkpoints"))
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    step = int(re.search(r"stopped at step (\d+)", info["first_log"]).group(1))
    info["step"] = step
    info["other_model_code"], info["other_model_log"] = _finish(_start(
        [*[f for f in flags if not f.startswith("--latent_dim")], "--latent_dim=16", f"--train_steps={step + 2}"],
        root / "other.log"), root / "other.log")
    info["resume_code"], info["resume_log"] = _finish(_start([*flags, f"--train_steps={step + 2}"], root / "resume.log"),
                                                      root / "resume.log")
    return info


@pytest.mark.slow
def test_a_second_run_on_a_busy_model_dir_is_refused_naming_the_holder(preempted_run):
    assert preempted_run["second_code"] == 1
    last = preempted_run["second_log"].strip().splitlines()[-1]
    assert last.startswith(f"tfvidgan.errors.RunLockedError: --model_dir={preempted_run['model_dir']!r} is in use by "
                           f"another run (pid {preempted_run['first_pid']} on host "), preempted_run["second_log"][-3000:]
    assert "Traceback" not in preempted_run["second_log"]


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_143(preempted_run):
    code, log, step = preempted_run["first_code"], preempted_run["first_log"], preempted_run["step"]
    assert code == 143, log[-3000:]
    assert preempted_run["sigterm_seconds"] < 30
    checkpoints = os.path.join(preempted_run["model_dir"], "checkpoints")
    last = log.strip().splitlines()[-1]
    assert last == (f"tfvidgan.errors.TrainingPreempted: SIGTERM: stopped at step {step} and saved "
                    f"{os.path.join(checkpoints, f'ckpt-{step}')}; run the same command to resume from it")
    assert step >= 5 and preempted_run["checkpoint_after_sigterm"] == step  # not a multiple of --checkpoint_every


@pytest.mark.slow
def test_resuming_with_another_architecture_lists_the_flag(preempted_run):
    assert preempted_run["other_model_code"] == 1
    last = preempted_run["other_model_log"].strip().splitlines()[-1]
    assert last.startswith("tfvidgan.errors.ConfigError: --model_dir=") and "holds checkpoints of another model" in last
    assert "--latent_dim: checkpoint 8, now 16" in last, preempted_run["other_model_log"][-3000:]


@pytest.mark.slow
def test_the_preempted_run_resumes_at_the_saved_step(preempted_run):
    step, log = preempted_run["step"], preempted_run["resume_log"]
    assert preempted_run["resume_code"] == 0, log[-3000:]
    checkpoints = os.path.join(preempted_run["model_dir"], "checkpoints")
    assert f"Resumed from {os.path.join(checkpoints, f'ckpt-{step}')} at step {step}" in log
    assert re.findall(r"step (\d+)/", log)[0] == str(step + 1)
