"""Seconds per sample: the reconstructor network vs GAP-TV, on the same inputs in the same run.

    python benchmarks/reconstruction.py --size=32 --num_frames=8 --num_samples=32 --output=bench.json

Inputs are CUP-sensed scenes: by default synthetic moving discs (noiseless, mask seed 0), or with
``--pairs=DIR`` the first ``--num_samples`` pairs of a CUP pairs dataset (its mask and ``T``).
Both methods get the same sensed batches; the first (compiling) call of each is excluded and the
median over ``--repeats`` passes is reported. The network is untrained unless ``--model_path``
points to a saved ``.keras`` reconstructor, so its PSNR/SSIM are only meaningful with
``--model_path``; GAP-TV's and the back-projection's always are. Prints (and with ``--output``
writes) a JSON report including ``gap_tv_over_network``: how many times slower GAP-TV is per sample.
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np
from absl import app, flags

from tfvidgan.json_report import emit

flags.DEFINE_integer("size", 32, "Frame side H = W (synthetic scenes).")
flags.DEFINE_integer("num_frames", 8, "T (synthetic scenes).")
flags.DEFINE_integer("num_samples", 32, "Samples per timed pass.")
flags.DEFINE_integer("batch_size", 8, "Samples per call, for both methods.")
flags.DEFINE_integer("repeats", 3, "Timed passes (median reported).")
flags.DEFINE_integer("gap_iterations", 100, "GAP-TV iterations.")
flags.DEFINE_float("tv_weight", 0.3, "GAP-TV TV weight.")
flags.DEFINE_bool("gap_jit", True, "Compile GAP-TV with XLA.")
flags.DEFINE_integer("base_filters", 32, "Reconstructor base filters (ignored with --model_path).")
flags.DEFINE_integer("depth", 3, "Reconstructor U-Net depth (ignored with --model_path).")
flags.DEFINE_string("model_path", None, "Optional trained .keras reconstructor.")
flags.DEFINE_string("pairs", None, "Optional CUP pairs dataset directory to take inputs from.")
flags.DEFINE_string("output", None, "Write the JSON report here too.")
FLAGS = flags.FLAGS


def timed_passes(fn, batches, repeats: int) -> tuple[float, np.ndarray]:
    """Median seconds for one pass over ``batches`` (after one warm-up pass) and the outputs."""
    outputs = [np.asarray(fn(b)) for b in batches]  # warm-up: tracing / XLA compilation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for b in batches:
            np.asarray(fn(b))
        times.append(time.perf_counter() - start)
    return statistics.median(times), np.concatenate(outputs)


def main(argv):
    del argv
    import keras
    import tensorflow as tf

    from tfvidgan.cup.gap_tv import gap_tv_reconstruct
    from tfvidgan.cup.operator import CupOperator, make_mask
    from tfvidgan.cup.synthetic import moving_discs
    from tfvidgan.data.cup_pairs import cup_pairs_dataset, read_cup_metadata
    from tfvidgan.metrics.image_quality import mean_psnr, mean_ssim
    from tfvidgan.models.reconstructor import build_reconstructor

    if FLAGS.pairs:
        metadata = read_cup_metadata(FLAGS.pairs)
        operator = metadata.operator()
        sensed, scenes = [], []
        for s, x in cup_pairs_dataset(FLAGS.pairs, FLAGS.num_samples, shuffle=False, repeat=False).take(1):
            sensed, scenes = s.numpy(), x.numpy()
        source = f"pairs:{FLAGS.pairs}"
    else:
        operator = CupOperator(make_mask(FLAGS.size, FLAGS.size, seed=0), FLAGS.num_frames)
        scenes = moving_discs(FLAGS.num_samples, FLAGS.num_frames, FLAGS.size, FLAGS.size, seed=0)
        sensed = operator.forward(tf.constant(scenes)).numpy()
        source = "synthetic moving discs (noiseless)"
    num_samples = len(sensed)
    batches = [tf.constant(sensed[i : i + FLAGS.batch_size]) for i in range(0, num_samples, FLAGS.batch_size)]

    if FLAGS.model_path:
        model = keras.models.load_model(FLAGS.model_path)
    else:
        model = build_reconstructor(operator.num_frames, operator.height, operator.width, operator.mask_np,
                                    base_filters=FLAGS.base_filters, depth=FLAGS.depth)
    network = tf.function(lambda x: model(x, training=False))
    net_seconds, net_out = timed_passes(network, batches, FLAGS.repeats)

    def gap(x):
        return gap_tv_reconstruct(x, operator, iterations=FLAGS.gap_iterations, tv_weight=FLAGS.tv_weight,
                                  jit_compile=FLAGS.gap_jit)

    gap_seconds, gap_out = timed_passes(gap, batches, FLAGS.repeats)
    back_projection = np.clip(operator.normalized_back_projection(tf.constant(sensed)).numpy(), 0.0, 1.0)

    def quality(x):
        return {"psnr_db": round(float(mean_psnr(x, scenes)), 3), "ssim": round(float(mean_ssim(x, scenes)), 4)}

    report = {
        "source": source,
        "num_frames": operator.num_frames,
        "height": operator.height,
        "width": operator.width,
        "num_samples": num_samples,
        "batch_size": FLAGS.batch_size,
        "repeats": FLAGS.repeats,
        "reconstructor": {
            "seconds_per_sample": net_seconds / num_samples,
            "trained": bool(FLAGS.model_path),
            "parameters": int(model.count_params()),
            **quality(net_out),
        },
        "gap_tv": {
            "seconds_per_sample": gap_seconds / num_samples,
            "iterations": FLAGS.gap_iterations,
            "tv_weight": FLAGS.tv_weight,
            "xla": FLAGS.gap_jit,
            **quality(gap_out),
        },
        "back_projection": quality(back_projection),
        "gap_tv_over_network": (gap_seconds / net_seconds) if net_seconds > 0 else None,
        "machine": {
            "tensorflow": tf.__version__,
            "devices": [d.device_type for d in tf.config.list_logical_devices()],
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
        },
    }
    emit(report, FLAGS.output)


if __name__ == "__main__":
    app.run(main)
