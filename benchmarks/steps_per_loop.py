r"""Training-loop throughput for `--steps_per_loop` = 1, 8, 48: what running several steps per host round trip buys.

    python -m benchmarks.steps_per_loop            # ~2-3 minutes on 2 cores
    python -m benchmarks.steps_per_loop --quick    # ~1 minute

Runs the REAL loop (`tfvidgan.training.loop.run_training`: the `tf.function` that runs up to
`steps_per_loop` steps with on-device non-finiteness tracking, then the host-side actions) on the frames GAN
under a one-device strategy, with synthetic frames (uniform noise in [-1, 1], 32×32×1) from an in-memory
`tf.data` pipeline, for each `--steps_per_loop` value and each model size in `--discriminators` (K
projected discriminators; the other sizes are those of `configs/frames_bb3_small.cfg`: latent 100,
generator filters 32, 16 filters per discriminator).

Timing excludes tracing: the task records `time.perf_counter()` in its `write_samples` action, which the
loop runs every `--window` steps (a multiple of every steps_per_loop value), and the rate is measured between
the first and the last of those timestamps. Logging runs every `--window` steps too (as a run with
`--log_every` would), checkpoints and the export are off. The runs of one K alternate between the
steps_per_loop values over `--rounds` rounds so that load from other processes hits them alike; the
best round is reported, plus the median. Prints one JSON object: steps/s per (K, steps_per_loop) and the
speed-up of each steps_per_loop over 1.
"""
from __future__ import annotations

import statistics
import tempfile
import time

from absl import flags

from tfvidgan import cli
from tfvidgan.errors import ConfigError
from tfvidgan.json_report import emit, machine

FLAGS = flags.FLAGS
flags.DEFINE_bool("quick", False, "One round with fewer windows, for a fast smoke run.")
flags.DEFINE_list("steps_per_loop", ["1", "8", "48"], "Values of --steps_per_loop to compare.")
flags.DEFINE_list("discriminators", ["1", "8", "48"], "Ensemble sizes K (model sizes) to run them on.")
flags.DEFINE_integer("batch_size", 16, "Global batch (one device).")
flags.DEFINE_integer("window", 48, "Steps between timestamps; must be a multiple of every steps_per_loop.")
flags.DEFINE_integer("windows", 4, "Timed windows per run (after one untimed window that traces).")
flags.DEFINE_integer("rounds", 3, "Alternating rounds (1 with --quick).")
flags.DEFINE_string("output", None, "Also write the JSON report here.")

IMAGE_SIZE, LATENT_DIM, GENERATOR_FILTERS, DISCRIMINATOR_FILTERS = 32, 100, 32, 16


def timed_run(num_discriminators: int, steps_per_loop: int, batch_size: int, window: int, windows: int) -> float:
    """Steps/s of one `run_training` call between the first and the last timestamp (tracing excluded)."""
    import numpy as np
    import tensorflow as tf

    from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask
    from tfvidgan.training.loop import LoopConfig, run_training

    class TimedTask(FramesGanTask):
        def __init__(self, config):
            super().__init__(config)
            self.stamps: list[float] = []

        def write_samples(self, step: int) -> None:  # the loop's "samples" action: only a timestamp here
            self.stamps.append(time.perf_counter())

    config = FramesGanConfig(image_size=IMAGE_SIZE, channels=1, latent_dim=LATENT_DIM,
                             generator_filters=GENERATOR_FILTERS, num_discriminators=num_discriminators,
                             discriminator_filters=DISCRIMINATOR_FILTERS, ema_beta=0.999)
    task = TimedTask(config)
    frames = np.random.default_rng(0).uniform(-1, 1, (batch_size, IMAGE_SIZE, IMAGE_SIZE, 1)).astype(np.float32)

    def dataset_fn(context, start_step):
        return tf.data.Dataset.from_tensors(frames).repeat()

    train_steps = window * (windows + 1)
    with tempfile.TemporaryDirectory() as model_dir:
        loop = LoopConfig(model_dir=model_dir, train_steps=train_steps, log_every=window, sample_every=window,
                          checkpoint_every=train_steps, export=False, steps_per_loop=steps_per_loop)
        run_training(task, dataset_fn, tf.distribute.OneDeviceStrategy("/cpu:0"), loop)
    stamps = task.stamps[-(windows + 1):]
    return window * windows / (stamps[-1] - stamps[0])


def main(argv):
    del argv

    values = [int(v) for v in FLAGS.steps_per_loop]
    sizes = [int(k) for k in FLAGS.discriminators]
    rounds, windows = (1, 2) if FLAGS.quick else (FLAGS.rounds, FLAGS.windows)
    bad = [v for v in values if v < 1 or FLAGS.window % v]
    if bad:
        raise ConfigError(f"--window={FLAGS.window} must be a multiple of every --steps_per_loop, not of {bad}")
    t0 = time.perf_counter()
    results = {}
    for k in sizes:
        rates = {v: [] for v in values}
        for _ in range(rounds):
            for v in values:
                rates[v].append(timed_run(k, v, FLAGS.batch_size, FLAGS.window, windows))
        best = {v: max(r) for v, r in rates.items()}
        results[f"K={k}"] = {
            f"steps_per_loop={v}": {"steps_per_second_best": round(best[v], 2),
                                    "steps_per_second_median": round(statistics.median(rates[v]), 2),
                                    "speedup_over_1": round(best[v] / best[values[0]], 3)}
            for v in values}
    emit({
        "benchmark": "steps_per_loop",
        "what": "frames GAN, real run_training loop, one device, synthetic 32x32x1 frames; steps/s between "
                "timestamps taken every --window steps (tracing excluded); best and median of the rounds",
        "batch_size": FLAGS.batch_size, "window": FLAGS.window, "timed_windows_per_run": windows,
        "rounds": rounds, "results": results,
        "machine": machine(),
        "seconds": round(time.perf_counter() - t0, 1),
    }, FLAGS.output or "")


if __name__ == "__main__":
    cli.run(main)
