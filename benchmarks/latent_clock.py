r"""Does a video generator keep a clock? The time profile of its mean latent step, over long rollouts. JSON.

    python -m benchmarks.latent_clock --export_dir=RUN/export --num_samples=200 --num_frames=240

Real videos are stationary: nothing about frame t depends on t. A causal sequence generator trained on clips
that all start at frame 1 need not be: its LSTM state can carry a clock that starts with the clip, and a
mean latent step that swings with it makes long videos speed up and slow down (the video report's
`long_video.latent_step` and drift). From one seeded draw of the export's `sample_latents`
(`[N, T, Z]`), with s_{n,t} = |z_{n,t+1} − z_{n,t}| and m_t = mean_n s_{n,t}:

* "profile": m_t, and "window_means": its mean over consecutive `--window`-frame windows;
* "clock_cv": std_t m_t / mean_t m_t over t >= `--skip` (the start-up transient left out), and
  "period_frames": the strongest period of m_t there (the largest non-zero FFT bin);
* "stationarity_penalty": (std_t m_t / mean_t m_t)² over every step, what `--stationarity_weight` pays for;
* "unsynchronised": the same clock_cv after rolling each trajectory's steps by its own random offset: the
  clock_cv of a generator whose clips each keep their own time, the baseline a stationary generator's
  clock_cv should be near. A phase-locked clock gives clock_cv well above it;
* "sample_cv": mean_n std_t s_{n,t} / mean_t s_{n,t} (`trajectory_statistics`' "step_cv"): each clip's own
  variation (clocks or not);
* "ensemble": at the first frame and the last frame of each window, "spread" (mean distance of the N latents
  from their mean) and "mean_norm" (the norm of that mean): trajectories that converge on a common attractor
  late in long videos (all clips end alike) show the spread falling and the mean's norm rising.

The exit code is 0 (a measurement, not a test).
"""
from __future__ import annotations

import time

import numpy as np
from absl import flags

from tfvidgan import cli
from tfvidgan.errors import ConfigError
from tfvidgan.json_report import emit
from tfvidgan.metrics.trajectories import trajectory_statistics

FLAGS = flags.FLAGS


def _cv(values: np.ndarray) -> float:
    return float(values.std() / max(values.mean(), 1e-12))


def clock_statistics(latents, window: int = 30, skip: int = 5, seed: int = 0) -> dict:
    """The statistics of the module docstring for trajectories `latents` `[N, T, Z]` (N >= 1, T > skip + 3).

    Raises:
      ConfigError: bad shapes or settings, naming the flag.
    """
    z = np.asarray(latents, np.float64)
    if z.ndim != 3 or z.shape[0] < 1 or z.shape[1] < skip + 4:
        raise ConfigError(f"--num_frames must exceed --skip + 3 = {skip + 3} and latents be [N, T, Z]; got shape "
                          f"{z.shape}")
    if window < 2 or skip < 0:
        raise ConfigError(f"--window must be >= 2 and --skip >= 0, got {window} and {skip}")
    steps = np.linalg.norm(np.diff(z, axis=1), axis=-1)                      # [N, T − 1]
    profile = steps.mean(axis=0)
    late = profile[skip:]
    spectrum = np.abs(np.fft.rfft(late - late.mean()))
    strongest = int(np.argmax(spectrum[1:]) + 1) if spectrum.size > 1 else 0
    rng = np.random.default_rng(seed)
    rolled = np.stack([np.roll(row, int(rng.integers(row.size))) for row in steps[:, skip:]])
    num_windows = profile.size // window
    return {
        "num_samples": int(z.shape[0]), "num_frames": int(z.shape[1]), "window": window, "skip": skip,
        "profile": [round(float(v), 4) for v in profile],
        "window_means": [float(profile[i * window:(i + 1) * window].mean()) for i in range(num_windows)],
        "clock_cv": _cv(late),
        "period_frames": float(late.size / strongest) if strongest else float("nan"),
        "stationarity_penalty": _cv(profile) ** 2,
        "unsynchronised": {"clock_cv": _cv(rolled.mean(axis=0))},
        "sample_cv": trajectory_statistics(z)["step_cv"],
        "ensemble": _ensemble(z, sorted({0, z.shape[1] - 1,
                                         *((i + 1) * window - 1 for i in range(z.shape[1] // window))})),
    }


def _ensemble(z: np.ndarray, frames) -> dict:
    centre = z[:, frames].mean(axis=0)                                        # [len(frames), Z]
    return {"frames": [int(t) for t in frames],
            "spread": [float(v) for v in np.linalg.norm(z[:, frames] - centre, axis=-1).mean(axis=0)],
            "mean_norm": [float(v) for v in np.linalg.norm(centre, axis=-1)]}


def define_flags() -> None:
    flags.DEFINE_string("export_dir", "", "A video export (`python -m tfvidgan.train_video`).")
    flags.DEFINE_integer("num_samples", 200, "Trajectories.", lower_bound=1)
    flags.DEFINE_integer("num_frames", 240, "Frames per trajectory.", lower_bound=3)
    flags.DEFINE_integer("window", 30, "Frames per window of `window_means` (the training clip length).")
    flags.DEFINE_integer("skip", 5, "Start-up steps left out of clock_cv and period_frames.", lower_bound=0)
    flags.DEFINE_integer("seed", 0, "Seed of the latent draw and of the unsynchronised rolls.")
    flags.DEFINE_string("output", "", "Also write the JSON here.")


def main(argv) -> None:
    del argv
    if not FLAGS.export_dir:
        raise ConfigError("--export_dir (a video export) is required")
    from tfvidgan.video_sampling import sample_latents
    start = time.perf_counter()
    latents = sample_latents(FLAGS.export_dir, FLAGS.num_samples, FLAGS.num_frames, FLAGS.seed)
    report = {"export_dir": FLAGS.export_dir, "seed": FLAGS.seed,
              **clock_statistics(latents, FLAGS.window, FLAGS.skip, FLAGS.seed),
              "seconds": round(time.perf_counter() - start, 2)}
    emit(report, FLAGS.output)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
