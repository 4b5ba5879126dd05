r"""How clean is a video generator's first frame, and what would a burn-in of W steps give? Prints JSON.

    python -m benchmarks.first_frames --export_dir=RUN/export --burn_in=8 --num_samples=500

From one seeded draw of `--num_frames` + W frames of a video export (`sample_videos`), the physics columns of
`tfvidgan.metrics.balls.clip_physics` for frames 0 … T − 1 ("from_start": what the export samples) and for
frames W … W + T − 1 ("after_burn_in"), with "fraction_expected_count_first_frame" (the share of clips whose
first frame has the expected ball count) beside the all-frames fraction. With `--data`, the same for real clips
("real"; their first frames are mid-flight frames like any other).

For a causal export without per-step noise (`bidirectional` false, `step_noise_dim` 0 in its description) the
"after_burn_in" row is exactly what the same weights emit with `--burn_in_steps=W` (the recurrent layers run W
steps on the clip code, then emit), i.e. what the run exports when started again with `--sample_burn_in_steps=W`:
a measurement of a burn-in at sampling time, without retraining or exporting (measured: the W = 8 row equals
`evaluate video --seed=0` of that export to the last digit, docs/first_frames_burn_in_sweep_reproduced.json). Otherwise
it is frames W … of a longer sample, reported with `"burn_in_equivalent": false`.

The exit code is 0 (a measurement, not a test).
"""
from __future__ import annotations

import time

import numpy as np
from absl import flags

from tfvidgan import cli
from tfvidgan.errors import ConfigError
from tfvidgan.json_report import emit

FLAGS = flags.FLAGS
COLUMNS = ("fraction_expected_count_first_frame", "fraction_expected_count_frames", "mean_count_changes",
           "free_flight_second_difference", "mean_speed")


def define_flags() -> None:
    """Defines the command line's flags (only when run as a program)."""
    flags.DEFINE_string("export_dir", "", "A video export (`python -m tfvidgan.train_video`). Required.")
    flags.DEFINE_integer("burn_in", 8, "W: frames dropped from the start of each sample.", lower_bound=1)
    flags.DEFINE_integer("num_samples", 500, "Clips.", lower_bound=1)
    flags.DEFINE_integer("num_frames", 30, "T: frames per compared window.", lower_bound=3)
    flags.DEFINE_integer("seed", 0, "Seed of the draw.")
    flags.DEFINE_integer("expected_balls", 3, "Balls per real frame.", lower_bound=1)
    flags.DEFINE_string("data", "", "Optional bouncing-balls records: adds a 'real' row.")
    flags.DEFINE_string("output", "", "Also write the JSON here.")


def physics_row(clips: np.ndarray, expected_balls: int) -> dict:
    """`COLUMNS` of `clip_physics` on clips `[N, T, H, W, C]` in [-1, 1]."""
    from tfvidgan.metrics.balls import clip_physics
    stats = clip_physics(np.asarray(clips), expected_balls)
    return {k: stats[k] for k in COLUMNS}


def window_rows(videos: np.ndarray, burn_in: int, num_frames: int, expected_balls: int) -> dict:
    """`{"from_start": ..., "after_burn_in": ...}`: `COLUMNS` of `clip_physics` on `videos[:, :T]` and on
    `videos[:, W:W + T]` (`videos` `[N, >= W + T, H, W, C]` in [-1, 1])."""
    if videos.shape[1] < burn_in + num_frames:
        raise ValueError(f"videos have {videos.shape[1]} frames, fewer than burn_in + num_frames = "
                         f"{burn_in + num_frames}")
    return {"from_start": physics_row(videos[:, :num_frames], expected_balls),
            "after_burn_in": physics_row(videos[:, burn_in:burn_in + num_frames], expected_balls)}


def main(argv) -> None:
    del argv
    if not FLAGS.export_dir:
        raise ConfigError("--export_dir (a video export) is required")
    from tfvidgan.export import VIDEO_GENERATOR, read_description
    from tfvidgan.video_sampling import sample_videos
    start = time.perf_counter()
    _, description = read_description(FLAGS.export_dir, VIDEO_GENERATOR)
    videos, _ = sample_videos(FLAGS.export_dir, FLAGS.num_samples, FLAGS.num_frames + FLAGS.burn_in, FLAGS.seed)
    report = {"export_dir": FLAGS.export_dir, "seed": FLAGS.seed, "num_samples": FLAGS.num_samples,
              "num_frames": FLAGS.num_frames, "burn_in": FLAGS.burn_in,
              # what the export already runs before its first frame (trained and sampling-only burn-in)
              "export_burn_in_steps": description.get("burn_in_steps", 0) + description.get("sample_burn_in_steps", 0),
              "burn_in_equivalent": (description.get("bidirectional") is False
                                     and description.get("step_noise_dim") == 0),
              **window_rows(videos, FLAGS.burn_in, FLAGS.num_frames, FLAGS.expected_balls)}
    if FLAGS.data:
        from tfvidgan.metrics.real_data import real_clips
        clips, _ = real_clips(FLAGS.data, FLAGS.num_samples, FLAGS.num_frames, FLAGS.seed)
        report["real"] = physics_row(clips, FLAGS.expected_balls)
    report["seconds"] = round(time.perf_counter() - start, 2)
    emit(report, FLAGS.output)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
