"""Two-worker MultiWorkerMirroredStrategy training on localhost ends with identical weights on both workers.

Each worker is a separate process running the real frames entry point (`tfvidgan.train_frames.main`:
flags, strategy from TF_CONFIG, sharded input pipeline, loop, checkpoints, export) through a small driver
that additionally dumps the in-memory variables to an .npz after `run_training` returns. Both workers get
the same `--model_dir` (shared storage, as a user would run them): the chief (worker 0) writes the
checkpoints, summaries and export; worker 1 saves into a scratch directory that it deletes.

Batch-norm moving statistics may differ between workers (they are per replica with "batch" normalization;
the default, "sync_batch", makes them agree), so they are the only variables allowed to differ; everything trained (weights and optimizer
slots) must be bit-identical, and the chief's checkpoint must hold exactly the chief's variables.
"""
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 300
STEPS = 3
CONFIG = FramesGanConfig(image_size=32, channels=1, latent_dim=8, generator_filters=8, num_discriminators=2,
                         discriminator_filters=4, num_sample_images=4)
FLAGS = ["--num_discriminators=2", "--discriminator_filters=4", "--generator_filters=8", "--latent_dim=8",
         "--num_sample_images=4", "--batch_size=8", f"--train_steps={STEPS}", f"--checkpoint_every={STEPS}",
         "--log_every=1"]

DRIVER = textwrap.dedent("""
    import os
    import numpy as np
    from absl import app
    from tfvidgan import train_frames

    _run_training = train_frames.run_training

    def run_and_dump(task, dataset_fn=None, strategy=None, config=None):
        result = _run_training(task, dataset_fn, strategy, config)
        variables = (task.generator.weights + task.discriminators.weights
                     + task.g_optimizer.variables + task.d_optimizer.variables)
        np.savez(os.environ["DUMP_WEIGHTS_TO"], final_step=result.final_step,
                 replicas=strategy.num_replicas_in_sync,
                 names=np.array([v.path for v in variables]),
                 **{f"v{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(variables)})
        return result

    train_frames.run_training = run_and_dump
    train_frames.define_flags()
    app.run(train_frames.main)
""")


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _variables(task):
    return (task.generator.weights + task.discriminators.weights
            + task.g_optimizer.variables + task.d_optimizer.variables)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    from tfvidgan.data.bouncing_balls import BouncingBallsConfig, generate_dataset
    root = tmp_path_factory.mktemp("multi_worker")
    data = str(root / "data")
    # Two shards: each worker's input pipeline reads its own shard.
    generate_dataset(BouncingBallsConfig(num_scenes=16, num_frames=8, size=32, shards=2, seed=1), data,
                     workers=1, show_progress=False)
    driver = root / "driver.py"
    driver.write_text(DRIVER)
    model_dir = str(root / "run")
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    procs = []
    try:
        for index in range(2):
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO,
                   "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
                   "DUMP_WEIGHTS_TO": str(root / f"worker{index}.npz")}
            procs.append(subprocess.Popen([sys.executable, str(driver), f"--data={data}", f"--model_dir={model_dir}",
                                           *FLAGS], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True))
        outputs = [p.communicate(timeout=TIMEOUT)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for index, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"worker {index} failed:\n{out[-4000:]}"
    dumps = [dict(np.load(root / f"worker{i}.npz")) for i in range(2)]
    return {"model_dir": model_dir, "outputs": outputs, "dumps": dumps}


def _is_moving_statistic(name):
    return name.endswith("/moving_mean") or name.endswith("/moving_variance")


def test_both_workers_trained_together(two_workers):
    for out, dump in zip(two_workers["outputs"], two_workers["dumps"]):
        assert int(dump["replicas"]) == 2
        assert int(dump["final_step"]) == STEPS
        assert "with 2 replica(s)" in out
    assert list(two_workers["dumps"][0]["names"]) == list(two_workers["dumps"][1]["names"])


def test_workers_end_with_identical_trained_weights_and_optimizer_state(two_workers):
    w0, w1 = two_workers["dumps"]
    differing = []
    for i, name in enumerate(w0["names"]):
        key = f"v{i:04d}"
        assert w0[key].shape == w1[key].shape
        assert np.all(np.isfinite(w0[key]))
        if not np.array_equal(w0[key], w1[key]):
            differing.append(str(name))
    assert all(_is_moving_statistic(n) for n in differing), differing
    synced = [n for n in w0["names"] if not _is_moving_statistic(str(n))]
    assert len(synced) > 30  # generator + discriminators + both optimizers' slots
    # The optimizers really stepped: 3 iterations, non-zero RMSprop slots.
    iterations = [i for i, n in enumerate(w0["names"]) if str(n).endswith("iteration")]
    assert len(iterations) == 2 and all(int(w0[f"v{i:04d}"]) == STEPS for i in iterations)
    slots = [i for i, n in enumerate(w0["names"]) if "velocity" in str(n)]
    assert slots and all(np.any(w0[f"v{i:04d}"] != 0) for i in slots)


def test_chief_checkpoint_holds_the_workers_weights(two_workers):
    checkpoints = os.path.join(two_workers["model_dir"], "checkpoints")
    latest = tf.train.latest_checkpoint(checkpoints)
    assert latest == os.path.join(checkpoints, f"ckpt-{STEPS}")
    task = FramesGanTask(CONFIG)
    task.build()
    step = tf.Variable(0, dtype=tf.int64)
    tf.train.Checkpoint(step=step, **task.checkpoint_objects()).restore(latest).assert_existing_objects_matched()
    assert int(step.numpy()) == STEPS
    w0, w1 = two_workers["dumps"]
    restored = _variables(task)
    assert len(restored) == len(w0["names"])
    for i, variable in enumerate(restored):
        key = f"v{i:04d}"
        np.testing.assert_array_equal(variable.numpy(), w0[key], err_msg=str(w0["names"][i]))
        if not _is_moving_statistic(str(w0["names"][i])):
            np.testing.assert_array_equal(variable.numpy(), w1[key], err_msg=str(w0["names"][i]))


def test_only_the_chief_leaves_files(two_workers):
    model_dir = two_workers["model_dir"]
    assert sorted(os.listdir(os.path.join(model_dir, "checkpoints"))) == [
        "checkpoint", f"ckpt-{STEPS}.data-00000-of-00001", f"ckpt-{STEPS}.index"]  # no worker scratch dir
    assert os.listdir(os.path.join(model_dir, "export")) == [str(STEPS)]
    assert len(os.listdir(os.path.join(model_dir, "summaries"))) == 1


# --- A peer that dies mid-run or never starts: the survivor fails (no hang), naming the missing task ----

LOST_FLAGS = ["--num_discriminators=2", "--discriminator_filters=4", "--generator_filters=8", "--latent_dim=8",
              "--num_sample_images=4", "--batch_size=8", "--train_steps=100000", "--checkpoint_every=5",
              "--log_every=1", "--sample_every=100000", "--collective_timeout=20"]


def _start_worker(cluster, index, data, model_dir, log_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO,
           "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
    with open(log_path, "w") as log:
        return subprocess.Popen([sys.executable, "-m", "tfvidgan.train_frames", f"--data={data}",
                                 f"--model_dir={model_dir}", *LOST_FLAGS], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def lost_peers(tmp_path_factory):
    """Two workers, worker 1 SIGKILLed after step 6; and, alongside, a worker whose peer never starts."""
    import time

    from tfvidgan.data.bouncing_balls import BouncingBallsConfig, generate_dataset
    root = tmp_path_factory.mktemp("lost_peer")
    data = str(root / "data")
    generate_dataset(BouncingBallsConfig(num_scenes=16, num_frames=8, size=32, shards=2, seed=1), data,
                     workers=1, show_progress=False)
    ports = _free_ports(4)
    pair = {"worker": [f"localhost:{p}" for p in ports[:2]]}
    alone = {"worker": [f"localhost:{p}" for p in ports[2:]]}
    logs = [root / "w0.log", root / "w1.log", root / "alone.log"]
    procs = [_start_worker(pair, 0, data, str(root / "run"), logs[0]),
             _start_worker(pair, 1, data, str(root / "run"), logs[1]),
             _start_worker(alone, 0, data, str(root / "alone"), logs[2])]
    info = {"root": root}
    try:
        deadline = time.monotonic() + TIMEOUT
        while "step 6/" not in logs[0].read_text():
            assert procs[0].poll() is None and procs[1].poll() is None, logs[0].read_text()[-3000:]
            assert time.monotonic() < deadline, "the workers never reached step 6"
            time.sleep(0.1)
        procs[1].kill()
        procs[1].wait()
        killed_at = time.monotonic()
        info["survivor_code"] = procs[0].wait(timeout=TIMEOUT)
        info["survivor_seconds"] = time.monotonic() - killed_at
        info["alone_code"] = procs[2].wait(timeout=TIMEOUT)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    info["survivor_log"], info["alone_log"] = logs[0].read_text(), logs[2].read_text()
    return info


@pytest.mark.slow
def test_a_worker_whose_peer_dies_fails_naming_it_instead_of_hanging(lost_peers):
    code, log = lost_peers["survivor_code"], lost_peers["survivor_log"]
    assert code == 1, log[-3000:]
    assert lost_peers["survivor_seconds"] < 120, lost_peers["survivor_seconds"]
    last = log.strip().splitlines()[-1]
    assert last.startswith("tfvidgan.errors.ClusterError: lost contact with /job:worker/task:1 "
                           "(this is /job:worker/task:0)"), log[-3000:]
    assert "Restart ALL workers with the same command" in last
    checkpoints = os.path.join(lost_peers["root"], "run", "checkpoints")
    assert int(tf.train.latest_checkpoint(checkpoints).rsplit("-", 1)[1]) >= 5  # what the restart resumes from


@pytest.mark.slow
def test_a_worker_whose_peer_never_starts_fails_after_the_timeout(lost_peers):
    code, log = lost_peers["alone_code"], lost_peers["alone_log"]
    assert code != 0, log[-3000:]  # killed by its watchdog (TF waits inside a call that holds the GIL)
    last = log.strip().splitlines()[-1]
    assert last.startswith("tfvidgan.errors.ClusterError: the cluster did not form within "
                           "--collective_timeout=20 s (this is /job:worker/task:0); not reachable: "
                           "/job:worker/task:1 (localhost:"), log[-3000:]
    assert not os.path.exists(os.path.join(lost_peers["root"], "alone", "checkpoints"))
