r"""Peak resident memory of a few frames-trainer steps at the small and the reference config.

    python -m benchmarks.memory                 # small + reference config, 5 steps each
    python -m benchmarks.memory --quick         # 2 steps each
    python -m benchmarks.memory --configs=configs/frames_bb3.cfg --train_steps=20

Each config runs as a child process, `python -m tfvidgan.train_frames --flagfile=<config>
--data=<generated dataset> --model_dir=<temp> --train_steps=N` (everything else from the config:
K, batch, filters, ...), so the number includes the TensorFlow runtime, graph tracing, the input
pipeline, the final checkpoint and the SavedModel export. Peak memory is the child's `ru_maxrss`
from `os.wait4` (Linux: KiB, the child's own high-water mark, = VmHWM). A child that only imports
TensorFlow gives the floor. The dataset (`--num_scenes` scenes × 40 frames, 32×32, 4 shards) is
generated once in a temp dir; its size does not matter for a few steps. Prints one JSON object.
"""
from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from absl import flags

from tfvidgan import cli
from tfvidgan.json_report import emit, machine

FLAGS = flags.FLAGS
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
flags.DEFINE_list("configs", ["configs/frames_bb3_small.cfg", "configs/frames_bb3.cfg"],
                  "Frames flagfiles to measure (relative to the repository or absolute).")
flags.DEFINE_integer("train_steps", 5, "Training steps per child (2 with --quick).")
flags.DEFINE_integer("num_scenes", 500, "Scenes in the generated dataset.")
flags.DEFINE_bool("quick", False, "2 steps per config.")
flags.DEFINE_integer("timeout", 1800, "Seconds before a child is killed.")
flags.DEFINE_string("output", None, "Also write the JSON report here.")


def run_child(argv: list[str], timeout: float, env: dict) -> dict:
    """Runs `argv`; returns exit code, wall seconds, peak RSS (MiB) and the output's last lines."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen
        log.seek(0)
        output = log.read()
    rates = re.findall(r"\(([\d.]+) steps/s\)", output)
    return {"exit_code": proc.returncode, "wall_seconds": round(time.perf_counter() - start, 1),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "median_steps_per_s_after_first": (statistics.median(float(r) for r in rates[1:])
                                               if len(rates) > 1 else None),
            "tail": output.strip().splitlines()[-3:] if proc.returncode else None}


def _config_summary(path: str) -> dict:
    keep = ("num_discriminators", "discriminator_filters", "generator_filters", "latent_dim", "batch_size")
    values = {}
    with open(path) as f:
        for line in f:
            name, _, value = line.strip().lstrip("-").partition("=")
            if name in keep:
                values[name] = int(value)
    return values


def run(configs: list[str], train_steps: int, num_scenes: int, timeout: float) -> dict:
    from tfvidgan.data.bouncing_balls import BouncingBallsConfig, generate_dataset

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO}
    temp = tempfile.mkdtemp(prefix="bench_memory_")
    report = {"benchmark": "memory", "train_steps": train_steps, "cpus": os.cpu_count(), "runs": {}}
    try:
        data = os.path.join(temp, "data")
        generate_dataset(BouncingBallsConfig(num_scenes=num_scenes, num_frames=40, num_balls=3, size=32, shards=4,
                                             seed=0), data, show_progress=False)
        report["data"] = f"generated: {num_scenes} scenes x 40 frames, 32x32, 4 shards"
        report["import_tensorflow_only"] = run_child(
            [sys.executable, "-c", "import tensorflow as tf; print(tf.__version__)"], timeout, env)
        for i, config in enumerate(configs):
            path = config if os.path.isabs(config) else os.path.join(REPO, config)
            argv = [sys.executable, "-m", "tfvidgan.train_frames", f"--flagfile={path}", f"--data={data}",
                    f"--model_dir={os.path.join(temp, f'run{i}')}", f"--train_steps={train_steps}",
                    "--log_every=1"]
            report["runs"][config] = {**_config_summary(path), **run_child(argv, timeout, env)}
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    report["machine"] = machine()
    return report


def main(argv) -> None:
    del argv
    report = run(FLAGS.configs, 2 if FLAGS.quick else FLAGS.train_steps, FLAGS.num_scenes, FLAGS.timeout)
    emit(report, FLAGS.output)


if __name__ == "__main__":
    cli.run(main)
