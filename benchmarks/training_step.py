r"""Frames-GAN training-step throughput, grouped ensemble vs a loop of K models, and achieved FLOP/s.

    python -m benchmarks.training_step                  # ~3-5 minutes on 2 cores
    python -m benchmarks.training_step --quick          # ~1 minute: fewer timed steps
    python -m benchmarks.training_step --include_xla    # also Keras' own XLA grouped conv (slow on CPU)

Measures, in one run, on synthetic data (uniform noise in [-1, 1], 32×32×1):

1. Training-step throughput (steps/s, images/s) for K = 1, 8, 48 projected discriminators, through the
   real `FramesGanTask.train_step` under a one-device strategy inside one `tf.function` exactly as
   `tfvidgan.training.loop` runs it (`strategy.run`, step counter, SUM-reduced metrics fetched to numpy
   every step). Model sizes are those of `configs/frames_bb3_small.cfg` (latent 100, generator filters
   32, 16 filters per discriminator, batch norm) with K varied; batch `--batch_size`.
2. Discriminator forward + backward (gradients of the summed logits w.r.t. all trainable weights,
   `training=True`) of the grouped ensemble against a plain Python loop over the K models of
   `unrolled_discriminators` (same weights), both traced in a `tf.function`, and the same loop run
   eagerly; K = 8 and 48. Ratios > 1 mean the grouped ensemble is faster.
3. Achieved FLOP/s of the training step as a fraction of dense float32 matmul FLOP/s (a
   `--matmul_size`² matmul loop) measured in the same run. FLOPs are COUNTED analytically:
   2 × MACs with MACs per example = 4·G + 8·D, where D = `ensemble_cost(...).macs_per_example` and G is
   the generator's MACs counted layer by layer here (dense + transposed convs). The 4·G + 8·D comes
   from one step = [G forward (fake batch); D forward+backward on real and fake: 2·(D + 2·D)] +
   [G forward; D forward; D backward w.r.t. its input only (D); G backward (2·G)], with backward ≈ 2×
   forward for weights + inputs. Normalization and activations are not counted. TensorFlow's graph
   profiler (`tf.compat.v1.profiler`, float_operation) count of the traced step is reported beside it
   as a cross-check (it also counts element-wise ops).

Every measured function is warmed up (tracing, compilation) first; then all of a section's functions
run in alternating rounds so that load from other processes hits them alike. Prints one JSON object
(and writes it with `--output`).
"""
from __future__ import annotations

import dataclasses
import math
import time

from absl import flags

from tfvidgan import cli
from tfvidgan.json_report import emit, machine

FLAGS = flags.FLAGS
flags.DEFINE_bool("quick", False, "Fewer timed steps (1 round of 3) for a fast smoke run.")
flags.DEFINE_integer("batch_size", 16, "Images per training step / discriminator call.")
flags.DEFINE_list("discriminators", ["1", "8", "48"], "Ensemble sizes K for the training-step throughput.")
flags.DEFINE_list("loop_discriminators", ["8", "48"], "K for the grouped-vs-loop comparison.")
flags.DEFINE_integer("rounds", 3, "Alternating rounds per section (1 with --quick).")
flags.DEFINE_integer("steps_per_round", 5, "Timed calls per function per round (3 with --quick).")
flags.DEFINE_integer("warmup", 2, "Untimed calls per function first (tracing/compilation).")
flags.DEFINE_integer("matmul_size", 1024, "N of the N×N float32 matmul used as the dense FLOP/s reference.")
flags.DEFINE_bool("eager_loop", True, "Also time the Python loop over the K models run eagerly.")
flags.DEFINE_bool("include_xla", False, "Also time the grouped ensemble with conv_implementation='xla' "
                  "(Keras' XLA grouped conv; its backward is very slow on CPU: ~2.4 s per call at K=48).")
flags.DEFINE_string("output", None, "Also write the JSON report here.")

IMAGE_SIZE, CHANNELS, LATENT_DIM, GENERATOR_FILTERS, DISCRIMINATOR_FILTERS = 32, 1, 100, 32, 16


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    batch_size: int
    discriminators: tuple
    loop_discriminators: tuple
    rounds: int
    steps_per_round: int
    warmup: int
    matmul_size: int
    eager_loop: bool
    include_xla: bool


class Meter:
    """Calls `fn` (which must block until its result is ready) and accumulates calls and seconds."""

    def __init__(self, fn, warmup: int):
        self.fn = fn
        start = time.perf_counter()
        for _ in range(warmup):
            fn()
        self.warmup_seconds = time.perf_counter() - start
        self.calls, self.seconds, self.round_rates = 0, 0.0, []

    def run(self, calls: int) -> None:
        start = time.perf_counter()
        for _ in range(calls):
            self.fn()
        elapsed = time.perf_counter() - start
        self.calls += calls
        self.seconds += elapsed
        self.round_rates.append(calls / elapsed)

    @property
    def rate(self) -> float:
        """Calls per second over all rounds."""
        return self.calls / self.seconds

    @property
    def best_rate(self) -> float:
        """Calls per second of the fastest round (least disturbed by other processes)."""
        return max(self.round_rates)


def interleave(meters: dict, rounds: int, calls: int) -> None:
    for _ in range(rounds):
        for meter in meters.values():
            meter.run(calls)


def matmul_meter(n: int, warmup: int, reps: int = 8):
    """Meter of `reps` independent n×n float32 matmuls per call (one batched matmul op); returns
    (meter, flops per call)."""
    import tensorflow as tf
    a = tf.random.stateless_normal([reps, n, n], seed=[1, 2])
    b = tf.random.stateless_normal([reps, n, n], seed=[3, 4])

    @tf.function
    def products():
        return tf.reduce_sum(tf.linalg.matmul(a, b)[:, 0, 0])

    return Meter(lambda: products().numpy(), warmup), 2.0 * reps * n ** 3


def generator_macs(generator) -> int:
    """Multiply-accumulates of one forward pass of the frames generator for one latent (dense + convs)."""
    import keras
    macs = 0
    for layer in generator.layers:
        if isinstance(layer, keras.layers.Dense):
            macs += math.prod(layer.kernel.shape)
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            height, width, cin = layer.input.shape[1:]
            macs += height * width * cin * math.prod(layer.kernel_size) * layer.filters  # every input pixel
        elif isinstance(layer, keras.layers.Conv2D):
            macs += math.prod(layer.output.shape[1:]) * math.prod(layer.kernel_size) * layer.kernel.shape[-2]
    return int(macs)


def profiler_flops(concrete_function) -> int | None:
    """Float ops of a traced function according to TF's v1 graph profiler (None if it cannot count)."""
    import tensorflow as tf
    try:
        options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        options["output"] = "none"
        return int(tf.compat.v1.profiler.profile(concrete_function.graph, options=options).total_float_ops)
    except Exception:  # noqa: BLE001 - a cross-check only
        return None


def training_step_meters(config: BenchmarkConfig):
    """{K: (meter, info)} for the real frames training step, built as `tfvidgan.training.loop` does."""
    import numpy as np
    import tensorflow as tf

    from tfvidgan.models.ensemble_discriminator import ensemble_cost
    from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    real = tf.constant(np.random.default_rng(0).uniform(-1, 1, (config.batch_size, IMAGE_SIZE, IMAGE_SIZE,
                                                                CHANNELS)).astype(np.float32))
    out = {}
    for k in config.discriminators:
        task = FramesGanTask(FramesGanConfig(image_size=IMAGE_SIZE, channels=CHANNELS, latent_dim=LATENT_DIM,
                                             generator_filters=GENERATOR_FILTERS, num_discriminators=k,
                                             discriminator_filters=DISCRIMINATOR_FILTERS))
        with strategy.scope():
            task.build()
            step_var = tf.Variable(0, dtype=tf.int64, trainable=False,
                                   aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

        def make_step(task=task, step_var=step_var):
            @tf.function
            def distributed_step(batch):
                per_replica = strategy.run(task.train_step, args=(batch, step_var.read_value()))
                step_var.assign_add(1)
                return {name: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                        for name, v in per_replica.items()}
            return distributed_step

        distributed_step = make_step()
        meter = Meter(lambda f=distributed_step: {n: v.numpy() for n, v in f(real).items()}, config.warmup)
        d_macs = ensemble_cost(task.discriminators).macs_per_example
        g_macs = generator_macs(task.generator)
        out[k] = (meter, {
            "generator_macs_per_example": g_macs,
            "discriminator_macs_per_example": d_macs,
            "counted_flops_per_step": 2 * (4 * g_macs + 8 * d_macs) * config.batch_size,
            "profiler_flops_per_step": profiler_flops(distributed_step.get_concrete_function(real)),
            "warmup_seconds": round(meter.warmup_seconds, 2),
        })
    return out


def discriminator_meters(k: int, config: BenchmarkConfig):
    """Grouped ensemble vs Python loop over the unrolled K models: D forward+backward meters."""
    import keras
    import numpy as np
    import tensorflow as tf

    from tfvidgan.models.ensemble_discriminator import build_frame_discriminators, unrolled_discriminators

    keras.utils.set_random_seed(k)
    ensemble = build_frame_discriminators((IMAGE_SIZE, IMAGE_SIZE, CHANNELS), k,
                                          base_filters=DISCRIMINATOR_FILTERS, normalization="batch")
    singles = unrolled_discriminators(ensemble)
    x = tf.constant(np.random.default_rng(1).uniform(-1, 1, (config.batch_size, IMAGE_SIZE, IMAGE_SIZE,
                                                             CHANNELS)).astype(np.float32))

    def grouped_step(model=ensemble):
        variables = model.trainable_variables
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.reduce_sum(logits)
        grads = tape.gradient(loss, variables)
        return logits, tf.add_n([tf.reduce_sum(g) for g in grads])

    def loop_step():
        variables = [v for m in singles for v in m.trainable_variables]
        with tf.GradientTape() as tape:
            logits = tf.concat([m(x, training=True) for m in singles], axis=-1)
            loss = tf.reduce_sum(logits)
        grads = tape.gradient(loss, variables)
        return logits, tf.add_n([tf.reduce_sum(g) for g in grads])

    grouped, looped = tf.function(grouped_step), tf.function(loop_step)
    # Same weights, same batch statistics: the two must agree (the grouped path is not a different model).
    start = time.perf_counter()
    grouped_logits, grouped_gsum = grouped()
    grouped_first = time.perf_counter() - start
    start = time.perf_counter()
    loop_logits, loop_gsum = looped()
    loop_first = time.perf_counter() - start
    agreement = {
        "first_call_seconds": {"grouped": round(grouped_first, 2), "loop_tf_function": round(loop_first, 2)},
        "max_abs_logit_difference": float(np.max(np.abs(grouped_logits.numpy() - loop_logits.numpy()))),
        "gradient_sum_relative_difference": float(abs(grouped_gsum.numpy() - loop_gsum.numpy())
                                                  / max(abs(float(loop_gsum.numpy())), 1e-12)),
    }
    meters = {"grouped": Meter(lambda: grouped()[1].numpy(), config.warmup),
              "loop_tf_function": Meter(lambda: looped()[1].numpy(), config.warmup)}
    if config.eager_loop:
        meters["loop_eager"] = Meter(lambda: loop_step()[1].numpy(), 1)
    if config.include_xla:
        xla = build_frame_discriminators((IMAGE_SIZE, IMAGE_SIZE, CHANNELS), k, base_filters=DISCRIMINATOR_FILTERS,
                                         normalization="batch", conv_implementation="xla")
        xla.set_weights(ensemble.get_weights())
        xla_step = tf.function(lambda: grouped_step(xla))
        meters["grouped_xla"] = Meter(lambda: xla_step()[1].numpy(), 1)
    return meters, agreement


def run(config: BenchmarkConfig) -> dict:
    from tfvidgan.models.ensemble_discriminator import native_grouped_conv_supported

    report = {"benchmark": "training_step", "batch_size": config.batch_size, "image_shape": [IMAGE_SIZE, IMAGE_SIZE,
                                                                                               CHANNELS],
              "rounds": config.rounds, "steps_per_round": config.steps_per_round,
              "grouped_conv_2d_path": "native" if native_grouped_conv_supported() else "split",
              "machine_before": machine()}

    # 1 + 3: training steps for every K, interleaved with the matmul reference.
    steps = training_step_meters(config)
    matmul, matmul_flops = matmul_meter(config.matmul_size, config.warmup)
    meters = {"matmul": matmul, **{f"K={k}": m for k, (m, _) in steps.items()}}
    interleave(meters, config.rounds, config.steps_per_round)
    matmul_rate = matmul.rate * matmul_flops
    report["dense_matmul"] = {"size": config.matmul_size, "gflop_per_s": round(matmul_rate / 1e9, 2),
                              "gflop_per_s_best_round": round(matmul.best_rate * matmul_flops / 1e9, 2)}
    report["training_step"] = {}
    for k, (meter, info) in steps.items():
        achieved = meter.rate * info["counted_flops_per_step"]
        report["training_step"][f"K={k}"] = {
            "steps_per_s": round(meter.rate, 2),
            "steps_per_s_best_round": round(meter.best_rate, 2),
            "images_per_s": round(meter.rate * config.batch_size, 1),
            **info,
            "achieved_gflop_per_s": round(achieved / 1e9, 2),
            "fraction_of_matmul_flop_per_s": round(achieved / matmul_rate, 3),
        }

    # 2: grouped ensemble vs a loop over the unrolled discriminators.
    report["discriminator_forward_backward"] = {}
    for k in config.loop_discriminators:
        meters, agreement = discriminator_meters(k, config)
        interleave(meters, config.rounds, config.steps_per_round)
        entry = {name: {"calls_per_s": round(m.rate, 2), "ms_per_call": round(1000 / m.rate, 2)}
                 for name, m in meters.items()}
        entry["loop_tf_function_over_grouped"] = round(meters["grouped"].rate / meters["loop_tf_function"].rate, 2)
        if "loop_eager" in meters:
            entry["loop_eager_over_grouped"] = round(meters["grouped"].rate / meters["loop_eager"].rate, 2)
        if "grouped_xla" in meters:
            entry["grouped_xla_over_grouped"] = round(meters["grouped"].rate / meters["grouped_xla"].rate, 2)
        entry.update(agreement)
        report["discriminator_forward_backward"][f"K={k}"] = entry
    report["notes"] = ("ratios *_over_grouped = time of that variant / time of the grouped ensemble (> 1: "
                       "grouped is faster). FLOPs counted as 2·(4·G + 8·D)·batch per step; see module doc.")
    report["machine_after"] = {"load_average_1_5_15": machine()["load_average_1_5_15"]}
    return report


def main(argv) -> None:
    del argv
    import tensorflow as tf  # noqa: F401 - initialise TF before timing anything

    config = BenchmarkConfig(
        batch_size=FLAGS.batch_size, discriminators=tuple(int(k) for k in FLAGS.discriminators),
        loop_discriminators=tuple(int(k) for k in FLAGS.loop_discriminators),
        rounds=1 if FLAGS.quick else FLAGS.rounds, steps_per_round=3 if FLAGS.quick else FLAGS.steps_per_round,
        warmup=FLAGS.warmup, matmul_size=FLAGS.matmul_size, eager_loop=FLAGS.eager_loop,
        include_xla=FLAGS.include_xla)
    emit(run(config), FLAGS.output)


if __name__ == "__main__":
    cli.run(main)
