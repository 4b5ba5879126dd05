r"""Is the input pipeline the bottleneck? Pipeline rates against what the training steps consume.

    python -m benchmarks.pipeline_vs_training                   # generates 2,000 scenes in a temp dir
    python -m benchmarks.pipeline_vs_training --data=runs/frames_bb3_small/data --seconds=10
    python -m benchmarks.pipeline_vs_training --quick

Measures, in one run, at the small CPU configs (`configs/frames_bb3_small.cfg`,
`configs/video_bb3_small.cfg`, read from the files; `--data`/`--model_dir` lines are ignored):

* pipeline alone: frames/s of `random_frames_dataset` (batch = the frames config's `--batch_size`) and
  clips/s of `clips_dataset` (batch and `--clip_length` of the video config), each iterated on its own
  with nothing else running in this process;
* consumption: frames/s and clips/s that the frames and video training steps take in, measured on an
  in-memory batch (no input pipeline) through the real tasks' `train_step` in one `tf.function` under a
  one-device strategy, as `tfvidgan.training.loop` runs them. The video step runs over an untrained
  frames generator of the frames config's size (speed does not depend on its weights);
* fed: the same training steps fed by the real pipeline through `distribute_datasets_from_function`
  (exactly the loop's path), in rounds alternating with the in-memory variant.

`*_ratio` = pipeline rate / consumed rate: > 1 means the pipeline alone is faster than training needs.
On a 2-core machine the pipeline and the step compete for the same cores, so `fed_over_in_memory`
(< 1 = slowdown from feeding real data) is the number that says what a real run loses.
Prints one JSON object (and writes it with `--output`).
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time

from absl import flags

from tfvidgan import cli
from tfvidgan.json_report import emit, machine

FLAGS = flags.FLAGS
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
flags.DEFINE_string("data", "", "Bouncing-balls dataset (directory or glob); empty: generate one in a temp dir.")
flags.DEFINE_integer("num_scenes", 2000, "Scenes to generate when --data is empty (the embedded default's size).")
flags.DEFINE_string("frames_config", os.path.join(REPO, "configs", "frames_bb3_small.cfg"), "Frames flagfile.")
flags.DEFINE_string("video_config", os.path.join(REPO, "configs", "video_bb3_small.cfg"), "Video flagfile.")
flags.DEFINE_float("seconds", 8.0, "Measuring time per measured thing (split into --rounds rounds).")
flags.DEFINE_integer("rounds", 4, "Alternating rounds.")
flags.DEFINE_bool("quick", False, "Short run: 1,000 scenes, 2 s per measurement, 2 rounds.")
flags.DEFINE_string("output", None, "Also write the JSON report here.")


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    data: str
    num_scenes: int
    frames_config: str
    video_config: str
    seconds: float
    rounds: int


def read_flagfile(path: str) -> dict:
    """`--name=value` lines of an absl flagfile → {name: value string}; `--name` → "true", `--noname` →
    "false". Comments and blank lines are skipped."""
    values = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("--"):
                continue
            name, sep, value = line[2:].partition("=")
            if sep:
                values[name] = value
            elif name.startswith("no"):
                values[name[2:]] = "false"
            else:
                values[name] = "true"
    return values


class Meter:
    """Calls `fn` (blocking) in rounds of `seconds`; counts items (`items_per_call` per call)."""

    def __init__(self, fn, items_per_call: int, warmup: int = 2):
        self.fn, self.items_per_call = fn, items_per_call
        start = time.perf_counter()
        for _ in range(warmup):
            fn()
        self.warmup_seconds = time.perf_counter() - start
        self.items, self.calls, self.seconds = 0, 0, 0.0

    def run(self, seconds: float) -> None:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            self.fn()
            self.items += self.items_per_call
            self.calls += 1
        self.seconds += time.perf_counter() - start

    @property
    def rate(self) -> float:
        return self.items / self.seconds


def _frames_task(values: dict):
    from tfvidgan.training.adversarial import AdversarialConfig
    from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask
    from tfvidgan.training.optimizers import OptimizerConfig
    return FramesGanTask(FramesGanConfig(
        image_size=32, channels=1, latent_dim=int(values["latent_dim"]),
        generator_filters=int(values["generator_filters"]),
        num_discriminators=int(values["num_discriminators"]),
        discriminator_filters=int(values["discriminator_filters"]),
        discriminator_normalization=values.get("discriminator_normalization", "batch"),
        adversarial=AdversarialConfig(loss=values.get("loss", "non_saturating"),
                                      combiner=values.get("combiner", "mean")),
        generator_optimizer=OptimizerConfig(values.get("generator_optimizer", "rmsprop"),
                                            float(values.get("generator_lr", 2e-4))),
        discriminator_optimizer=OptimizerConfig(values.get("discriminator_optimizer", "rmsprop"),
                                                float(values.get("discriminator_lr", 2e-4)))))


def _video_task(values: dict, frames_export: str):
    from tfvidgan.training.optimizers import OptimizerConfig
    from tfvidgan.training.video_task import VideoGanConfig, VideoGanTask
    return VideoGanTask(VideoGanConfig(
        frames_generator=frames_export, clip_length=int(values["clip_length"]),
        sample_length=int(values.get("sample_length", 30)), noise_dim=int(values["noise_dim"]),
        step_noise_dim=int(values["step_noise_dim"]), hidden_units=int(values["hidden_units"]),
        num_layers=int(values["num_layers"]), cell=values.get("cell", "lstm"),
        bidirectional=values.get("bidirectional", "true") == "true",
        latent_constraint=values.get("latent_constraint", "standardize"),
        num_discriminators=int(values["num_discriminators"]),
        discriminator_filters=int(values["discriminator_filters"]),
        discriminator_normalization=values.get("discriminator_normalization", "batch"),
        sequence_optimizer=OptimizerConfig(values.get("sequence_optimizer", "rmsprop"),
                                           float(values.get("sequence_lr", 2e-4))),
        discriminator_optimizer=OptimizerConfig(values.get("discriminator_optimizer", "rmsprop"),
                                                float(values.get("discriminator_lr", 2e-4)))))


def _step_meters(task, strategy, in_memory_batch, dataset_fn, items_per_step: int) -> dict:
    """{"in_memory": Meter, "fed": Meter} for one task, both built the way the training loop builds it."""
    import tensorflow as tf
    with strategy.scope():
        task.build()
        step_var = tf.Variable(0, dtype=tf.int64, trainable=False,
                               aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    def reduce(per_replica):
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}

    @tf.function
    def in_memory_step(batch):
        out = reduce(strategy.run(task.train_step, args=(batch, step_var.read_value())))
        step_var.assign_add(1)
        return out

    @tf.function
    def fed_step(iterator):
        batch = next(iterator)
        out = reduce(strategy.run(task.train_step, args=(batch, step_var.read_value())))
        step_var.assign_add(1)
        return out

    iterator = iter(strategy.distribute_datasets_from_function(lambda context: dataset_fn(context)))
    fetch = lambda out: {k: v.numpy() for k, v in out.items()}  # noqa: E731 - the loop fetches every step
    return {"in_memory": Meter(lambda: fetch(in_memory_step(in_memory_batch)), items_per_step),
            "fed": Meter(lambda: fetch(fed_step(iterator)), items_per_step)}


def _pipeline_rate(dataset, batch_size: int, seconds: float) -> float:
    """Items/s of iterating `dataset` alone for `seconds` (after a 2-batch warm-up); the iterator and its
    prefetch threads are gone when this returns."""
    iterator = iter(dataset)
    meter = Meter(lambda: next(iterator), batch_size)
    meter.run(seconds)
    return meter.rate


def _alternate(meters: dict, seconds: float, rounds: int) -> None:
    for _ in range(rounds):
        for meter in meters.values():
            meter.run(seconds / rounds)


def run(config: BenchmarkConfig) -> dict:
    import numpy as np
    import tensorflow as tf

    from tfvidgan.data import readers
    from tfvidgan.export import export_frames_generator
    from tfvidgan.models.frames_generator import build_frames_generator
    from tfvidgan.training.frames_task import describe

    frames_values, video_values = read_flagfile(config.frames_config), read_flagfile(config.video_config)
    frames_batch, video_batch = int(frames_values["batch_size"]), int(video_values["batch_size"])
    clip_length = int(video_values["clip_length"])
    temp = tempfile.mkdtemp(prefix="pipeline_vs_training_")
    try:
        data, generate_seconds = config.data, None
        if not data:
            from tfvidgan.data.bouncing_balls import BouncingBallsConfig, generate_dataset
            data = os.path.join(temp, "data")
            start = time.perf_counter()
            generate_dataset(BouncingBallsConfig(num_scenes=config.num_scenes, num_frames=40, num_balls=3, size=32,
                                                 shards=4, seed=0), data, show_progress=False)
            generate_seconds = round(time.perf_counter() - start, 2)
        metadata = readers.read_metadata(data)
        readers.scan_shards(data)  # the upfront scan is not part of the steady-state rates

        # Pipelines alone, one at a time (their prefetch threads would otherwise run in the background).
        frames_pipeline = _pipeline_rate(readers.random_frames_dataset(data, frames_batch, seed=0), frames_batch,
                                         config.seconds)
        clips_pipeline = _pipeline_rate(readers.clips_dataset(data, video_batch, clip_length=clip_length, seed=0),
                                        video_batch, config.seconds)

        strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
        rng = np.random.default_rng(0)
        # Frames training step.
        frames_task = _frames_task(frames_values)
        frames = _step_meters(
            frames_task, strategy, tf.constant(rng.uniform(-1, 1, (frames_batch, 32, 32, 1)).astype(np.float32)),
            lambda context: readers.random_frames_dataset(data, frames_batch, seed=1, input_context=context),
            frames_batch)
        _alternate(frames, config.seconds, config.rounds)
        frames = {name: meter.rate for name, meter in frames.items()}  # drops the fed iterator
        # Video training step, over an untrained frames generator of the frames config's size.
        frames_export = os.path.join(temp, "frames_export", "1")
        generator = build_frames_generator(32, 1, int(frames_values["latent_dim"]),
                                           base_filters=int(frames_values["generator_filters"]))
        export_frames_generator(generator, describe(frames_task.config), frames_export)
        clips = _step_meters(
            _video_task(video_values, frames_export), strategy,
            tf.constant(rng.uniform(-1, 1, (video_batch, clip_length, 32, 32, 1)).astype(np.float32)),
            lambda context: readers.clips_dataset(data, video_batch, clip_length=clip_length, seed=1,
                                                  input_context=context),
            video_batch)
        _alternate(clips, config.seconds, config.rounds)
        clips = {name: meter.rate for name, meter in clips.items()}
    finally:
        shutil.rmtree(temp, ignore_errors=True)

    return {
        "benchmark": "pipeline_vs_training",
        "data": config.data or f"generated: {config.num_scenes} scenes x 40 frames, 32x32, 4 shards",
        "generate_seconds": generate_seconds, "num_scenes": metadata.num_scenes,
        "frames": {
            "config": os.path.relpath(config.frames_config, REPO), "batch_size": frames_batch,
            "pipeline_frames_per_s": round(frames_pipeline, 1),
            "training_consumes_frames_per_s": round(frames["in_memory"], 1),
            "training_steps_per_s": round(frames["in_memory"] / frames_batch, 2),
            "ratio": round(frames_pipeline / frames["in_memory"], 2),
            "fed_training_frames_per_s": round(frames["fed"], 1),
            "fed_over_in_memory": round(frames["fed"] / frames["in_memory"], 3),
        },
        "clips": {
            "config": os.path.relpath(config.video_config, REPO), "batch_size": video_batch,
            "clip_length": clip_length,
            "pipeline_clips_per_s": round(clips_pipeline, 1),
            "training_consumes_clips_per_s": round(clips["in_memory"], 1),
            "training_steps_per_s": round(clips["in_memory"] / video_batch, 2),
            "ratio": round(clips_pipeline / clips["in_memory"], 2),
            "fed_training_clips_per_s": round(clips["fed"], 1),
            "fed_over_in_memory": round(clips["fed"] / clips["in_memory"], 3),
        },
        "seconds_per_measurement": config.seconds, "rounds": config.rounds,
        "machine": machine(),
    }


def main(argv) -> None:
    del argv
    config = BenchmarkConfig(data=FLAGS.data, num_scenes=1000 if FLAGS.quick else FLAGS.num_scenes,
                             frames_config=FLAGS.frames_config, video_config=FLAGS.video_config,
                             seconds=2.0 if FLAGS.quick else FLAGS.seconds, rounds=2 if FLAGS.quick else FLAGS.rounds)
    emit(run(config), FLAGS.output)


if __name__ == "__main__":
    cli.run(main)
