r"""What each option of a video config costs per training step. Prints JSON.

    python -m benchmarks.video_step --flagfile=configs/video_bb3_initnoise_me20.cfg \
        --frames_generator=runs/frames_bb3_straight_refined/export          # ~6 min on 2 cores
    python -m benchmarks.video_step ... --rounds=1 --steps=2                # ~3 min

Builds `VideoGanTask` from the trainer's own flags (a flagfile and any overrides, as `python -m
tfvidgan.train_video` parses them; `--data` is not needed) and, for every costly option that config turns on,
the same config with that option alone turned off ("variants": the late-motion term, the frozen frame
critic, the centroid-acceleration matching and discriminator input, frames-generator fine-tuning, energy
matching, the smoothness penalty, and half the discriminators). Each is one `tf.function` of the task's
`train_step` on a fixed synthetic batch of `--batch_size` clips (uniform noise in [-1, 1] of the config's clip size; the cost does not
depend on the pixels) at steps past `--late_motion_start_step` when `--past_late_start` (default: the steps
before it, where a run spends most of its time), traced and run twice untimed, then timed for `--steps` steps
per round, the variants alternating over `--rounds` rounds so that load from other processes hits them alike.

Reports seconds per step (best round) and each variant's ratio to the config itself: 1 − ratio is what that
option costs. One device; the step also applies the optimizer updates (it is the loop's step).
"""
from __future__ import annotations

import dataclasses
import time

from absl import flags

from tfvidgan import cli
from tfvidgan.errors import ConfigError
from tfvidgan.json_report import emit, machine

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The trainer's flags plus this benchmark's (only when run as a program)."""
    from tfvidgan import train_video

    train_video.define_flags()
    flags.DEFINE_integer("rounds", 3, "Alternating timed rounds.", lower_bound=1)
    flags.DEFINE_integer("steps", 4, "Timed steps per variant and round.", lower_bound=1)
    flags.DEFINE_bool("past_late_start", False, "Time steps at and after --late_motion_start_step (the late term "
                      "on) instead of before it.")
    flags.DEFINE_list("variants", [], "Time only these variants (names as reported; the config itself always); "
                      "empty: all.")
    flags.DEFINE_string("output", None, "Also write the JSON report here.")


def variants(config) -> dict:
    """`{name: config}`: the config itself ("config") and, for each costly option it turns on, the config
    with that option alone turned off."""
    out = {"config": config}
    off = {
        "no_late_motion_term": ("late_motion_match_weight", 0.0),
        "no_frame_critic": ("frame_critic_weight", 0.0),
        "no_centroid_acceleration_match": ("centroid_acceleration_match_weight", 0.0),
        "no_motion_energy_match": ("motion_energy_match_weight", 0.0),
        "no_smoothness": ("smoothness_weight", 0.0),
        "frozen_frames_generator": ("finetune_frames_generator", False),
    }
    for name, (field, value) in off.items():
        if getattr(config, field) != value:
            out[name] = dataclasses.replace(config, **{field: value})
    if config.discriminator_input == "clips_and_centroid_accelerations":
        out["discriminator_input_clips_and_differences"] = dataclasses.replace(
            config, discriminator_input="clips_and_differences")
    if config.num_discriminators > 1:
        out["half_the_discriminators"] = dataclasses.replace(config, num_discriminators=config.num_discriminators // 2)
    return out


def seconds_per_step(configs: dict, batch_size: int, rounds: int, steps: int, first_step: int) -> dict:
    """`{name: [seconds per step of each round]}` of each config's traced `train_step` on `batch_size` clips,
    alternating, at steps `first_step + 2, ...` (after two untimed ones)."""
    import numpy as np
    import tensorflow as tf

    from tfvidgan.training.video_task import VideoGanTask

    steps_fns = {}
    for name, config in configs.items():
        task = VideoGanTask(config)
        task.build()
        shape = (batch_size, config.clip_length, *task.frame_shape)
        real = tf.constant(np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32))
        fn = tf.function(task.train_step)
        for i in range(2):  # trace, then one more untimed step
            tf.nest.map_structure(lambda t: t.numpy(), fn(real, tf.constant(first_step + i, tf.int64)))
        steps_fns[name] = (fn, real)
    times = {name: [] for name in configs}
    for _ in range(rounds):
        for name, (fn, real) in steps_fns.items():
            start = time.perf_counter()
            for i in range(steps):
                out = fn(real, tf.constant(first_step + 2 + i, tf.int64))
            tf.nest.map_structure(lambda t: t.numpy(), out)
            times[name].append((time.perf_counter() - start) / steps)
    return times


def main(argv):
    del argv
    from tfvidgan import train_video
    from tfvidgan.common_flags import config_kwargs
    from tfvidgan.training.video_task import VideoGanConfig

    started = time.perf_counter()
    config = VideoGanConfig(**config_kwargs(VideoGanConfig, FLAGS, train_video.config_flags()))
    configs = variants(config)
    unknown = sorted(set(FLAGS.variants) - set(configs))
    if unknown:
        raise ConfigError(f"--variants: {unknown} are not variants of this config (it has {sorted(configs)})")
    if FLAGS.variants:
        configs = {name: c for name, c in configs.items() if name == "config" or name in FLAGS.variants}
    first_step = config.late_motion_start_step if FLAGS.past_late_start else 0
    times = seconds_per_step(configs, FLAGS.batch_size, FLAGS.rounds, FLAGS.steps, first_step)
    best = {name: min(t) for name, t in times.items()}
    emit({"benchmark": "video_step", "frames_generator": config.frames_generator, "batch_size": FLAGS.batch_size,
          "clip_length": config.clip_length, "first_step": first_step, "rounds": FLAGS.rounds, "steps": FLAGS.steps,
          "seconds_per_step_best": {k: round(v, 4) for k, v in best.items()},
          "ratio_to_config": {k: round(v / best["config"], 3) for k, v in best.items()},
          "seconds_per_step_rounds": {k: [round(x, 4) for x in v] for k, v in times.items()},
          "machine": machine(), "seconds": round(time.perf_counter() - started, 1)}, FLAGS.output or "")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
