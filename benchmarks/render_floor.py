r"""How real can a frames generator's motion get: real clips inverted into its latent space. Prints JSON.

    python -m benchmarks.render_floor --export_dir=RUN/best_export --data=DATA --num_samples=32
    python -m benchmarks.render_floor --frames_generator=FRAMES_RUN/export --data=DATA --smoothness=0,0.1

Every frame of `--num_samples` real clips (`--num_frames` frames, one clip per scene) is fitted by a latent of
the generator (a video export's own, possibly fine-tuned, frames generator through its `render` signature, or a
frames export's `generate`): each frame starts from the nearest, in pixels, of `--candidates` rendered prior
draws, then all `[N, T, Z]` latents are optimised together by Adam for `--steps` steps on the mean squared
pixel error plus `λ · mean_t ‖z_{t+1} − 2 z_t + z_{t−1}‖² / Z`, once for each λ in `--smoothness`. With
`--standardize` (the shipped video configs' `--latent_constraint=standardize`) the optimised vector is
standardised to zero mean and unit variance before rendering, as the sequence generator's are.

Rows: "real" (the clips), "nearest" (the initialisation: per-frame nearest prior draw, no time coherence) and
"inverted_<λ>", each with the physics columns of `tfvidgan.metrics.video_report.clip_row`, "pixel_mse"
(mean squared error to the real frames, [-1, 1] scale; inverted rows also "objective_every_50_steps", to see
whether the optimiser had converged), `vs_real` and `vs_real_distribution` (W1 of the
per-clip values, as `evaluate video` reports them); and "collapsed", the video report's baseline made
from these real clips (the first one for every sample), whose free-flight W1 is what the video targets'
sixth check asks a generator to beat. With `--export_dir`, also "generated": the export's own latent paths
(`sample_latents`, the same seed and size) rendered the same way; it and the inverted rows report
`latent_path_stats` (mean step, mean second difference and their ratio), so the paths the model draws can be
set beside the paths that draw real clips.

Reading it: an inverted row is the closest this optimiser brings the generator to real clips frame by frame,
so its free-flight second difference bounds what any sequence model driving this generator can reach from
above: if it stays far above real (about 0.03 px), the balls' wobble is the generator's rendering, not the
latent paths, and beating the collapsed row on free flight needs another frames generator. It is a bound,
not the floor itself (the optimiser may miss better latents). The exit code is 0 (a measurement, not a test).
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import tensorflow as tf
from absl import flags

from tfvidgan import cli
from tfvidgan.errors import ConfigError
from tfvidgan.models.frames_generator import render_paths
from tfvidgan.video_sampling import FrameRenderer, load_frame_renderer

FLAGS = flags.FLAGS


def standardized(z: tf.Tensor) -> tf.Tensor:
    """`z [..., Z]` shifted and scaled to zero mean and unit variance over its last axis (the sequence
    generator's "standardize" constraint)."""
    mean, variance = tf.nn.moments(z, axes=[-1], keepdims=True)
    return (z - mean) * tf.math.rsqrt(variance + 1e-6)


def nearest_latents(render: FrameRenderer, frames: np.ndarray, latent_dim: int, candidates: int, seed: int,
                    standardize: bool, batch: int = 256) -> np.ndarray:
    """`[M, Z]` float32: for each of `frames [M, H, W, C]` (in [-1, 1]) the latent of the nearest (squared
    pixel distance) of `candidates` draws z ~ N(0, I_Z) (seeded), rendered by `render`."""
    if candidates < 1:
        raise ConfigError(f"--candidates must be >= 1, got {candidates}")
    draws = tf.random.stateless_normal([candidates, latent_dim], seed=[seed, 7]).numpy()
    flat = frames.reshape(len(frames), -1).astype(np.float64)
    best = np.full(len(frames), np.inf)
    pick = np.zeros(len(frames), np.int64)
    for start in range(0, candidates, batch):
        z = draws[start:start + batch]
        shown = render(standardized(z) if standardize else tf.constant(z)).numpy()
        shown = shown.reshape(len(z), -1).astype(np.float64)
        distance = (flat ** 2).sum(1)[:, None] - 2.0 * flat @ shown.T + (shown ** 2).sum(1)[None, :]
        column = distance.argmin(axis=1)
        nearest = distance[np.arange(len(flat)), column]
        closer = nearest < best
        best[closer] = nearest[closer]
        pick[closer] = start + column[closer]
    return draws[pick].astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Inversion:
    """Result of `invert_clips`: `latents [N, T, Z]` float32 (as rendered: standardised if asked), `clips
    [N, T, H, W, C]` float32 in [-1, 1] (their renders), `pixel_mse` (mean squared error to the real clips) and
    `losses` (the objective every 50 steps)."""
    latents: np.ndarray
    clips: np.ndarray
    pixel_mse: float
    losses: list


def invert_clips(render: FrameRenderer, clips: np.ndarray, start: np.ndarray, *, steps: int,
                 learning_rate: float, smoothness: float, standardize: bool) -> Inversion:
    """Fits latents `[N, T, Z]` (from `start`) whose renders match `clips [N, T, H, W, C]` in [-1, 1]: Adam on
    mean squared pixel error + `smoothness` · mean ‖z_{t+1} − 2 z_t + z_{t−1}‖² / Z (full batch, `steps` steps).
    `render` maps `[n, Z]` latents to `[n, H, W, C]` frames and must be differentiable."""
    if steps < 0 or not learning_rate > 0 or smoothness < 0:
        raise ConfigError(f"need --steps >= 0, --learning_rate > 0, --smoothness >= 0; got {steps}, "
                          f"{learning_rate}, {smoothness}")
    n, t = clips.shape[:2]
    if start.shape[:2] != (n, t):
        raise ConfigError(f"start latents {start.shape} do not match clips {clips.shape}")
    target = tf.constant(clips, tf.float32)
    w = tf.Variable(start, dtype=tf.float32)
    optimizer = tf.keras.optimizers.Adam(learning_rate)

    def latents():
        return standardized(w) if standardize else tf.identity(w)

    def objective():
        z = latents()
        shown = render_paths(render, z)
        pixel = tf.reduce_mean(tf.square(shown - target))
        if smoothness == 0 or t < 3:
            return pixel
        second = z[:, 2:] - 2.0 * z[:, 1:-1] + z[:, :-2]
        return pixel + smoothness * tf.reduce_mean(tf.reduce_sum(tf.square(second), -1)) / z.shape[-1]

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = objective()
        optimizer.apply_gradients([(tape.gradient(loss, w), w)])
        return loss

    losses = []
    for i in range(steps):
        loss = step()
        if i % 50 == 0 or i == steps - 1:
            losses.append(float(loss))
    z = latents()
    shown = render_paths(render, z).numpy()
    return Inversion(latents=z.numpy(), clips=shown, pixel_mse=float(np.mean((shown - clips) ** 2)), losses=losses)


def latent_path_stats(latents: np.ndarray) -> dict:
    """Mean length of a path's steps ‖z_{t+1} − z_t‖ and of its second differences ‖z_{t+1} − 2 z_t + z_{t−1}‖
    over latents `[N, T, Z]` (T >= 3), and their ratio ("latent_turn_per_step")."""
    z = np.asarray(latents, np.float64)
    step = float(np.linalg.norm(np.diff(z, axis=1), axis=-1).mean())
    second = float(np.linalg.norm(z[:, 2:] - 2.0 * z[:, 1:-1] + z[:, :-2], axis=-1).mean())
    return {"latent_step": step, "latent_second_difference": second,
            "latent_turn_per_step": second / step if step > 0 else float("nan")}


def render_floor(render: FrameRenderer, latent_dim: int, real: np.ndarray, balls: int, *, smoothness_values,
                 steps: int, learning_rate: float, candidates: int, standardize: bool, seed: int,
                 generated_latents: np.ndarray | None = None) -> dict:
    """The report rows (see the module docstring) for real clips `[N, T, H, W, C]` with `balls` balls; with
    `generated_latents [N', T, Z]` (a video export's own paths) also a "generated" row of their renders, so the
    paths the model draws and the paths that draw real clips are compared through the same renderer
    (`latent_path_stats` on both)."""
    from tfvidgan.metrics.video_report import baseline_clips, clip_row, compare_with_real

    n, t = real.shape[:2]
    start = nearest_latents(render, real.reshape(n * t, *real.shape[2:]), latent_dim, candidates, seed,
                            standardize).reshape(n, t, latent_dim)
    nearest = render_paths(render, standardized(start) if standardize else start).numpy()
    rows = {"real": (real, 0.0, None), "nearest": (nearest, float(np.mean((nearest - real) ** 2)), None),
            "collapsed": (baseline_clips("collapsed", real), None, None)}
    paths = {}
    for value in smoothness_values:
        result = invert_clips(render, real, start, steps=steps, learning_rate=learning_rate, smoothness=value,
                              standardize=standardize)
        rows[f"inverted_{value:g}"] = (result.clips, result.pixel_mse, result.losses)
        paths[f"inverted_{value:g}"] = result.latents
    if generated_latents is not None:
        rows["generated"] = (render_paths(render, generated_latents).numpy(), None, None)
        paths["generated"] = generated_latents
    real_row = clip_row(real, balls, None, None, per_clip=True)
    real_per_clip = real_row.pop("per_clip")
    out = {}
    for name, (clips, mse, losses) in rows.items():
        row = real_row if name == "real" else clip_row(clips, balls, None, None, speed_band=real_row["speed_band"],
                                                       per_clip=True)
        if name != "real":
            compare_with_real(row, real_row, real_per_clip)
        if mse is not None:
            row["pixel_mse"] = mse
        if losses is not None:
            row["objective_every_50_steps"] = losses
        if name in paths:
            row.update(latent_path_stats(paths[name]))
        out[name] = row
    return out


def define_flags() -> None:
    """Defines the command line's flags (only when run as a program)."""
    flags.DEFINE_string("export_dir", "", "A video export: its own (fine-tuned) frames generator.")
    flags.DEFINE_string("frames_generator", "", "Instead of --export_dir: a frames export.")
    flags.DEFINE_string("data", "", "Bouncing-balls records (directory or glob) to invert.")
    flags.DEFINE_integer("num_samples", 32, "Real clips (one per scene).", lower_bound=2)
    flags.DEFINE_integer("num_frames", 30, "Frames per clip.", lower_bound=3)
    flags.DEFINE_list("smoothness", ["0", "0.1"], "λ of the latents' second-difference penalty, one inversion each.")
    flags.DEFINE_integer("steps", 300, "Adam steps per inversion.", lower_bound=0)
    flags.DEFINE_float("learning_rate", 0.05, "Adam learning rate.")
    flags.DEFINE_integer("candidates", 2048, "Prior draws the start of each frame is picked from.", lower_bound=1)
    flags.DEFINE_boolean("standardize", True, "Standardise the latents before rendering (the video configs' "
                         "--latent_constraint=standardize).")
    flags.DEFINE_integer("seed", 0, "Seed of the real clips' offsets and of the prior draws.")
    flags.DEFINE_string("output", "", "Also write the JSON here.")


def main(argv) -> None:
    del argv
    from tfvidgan.json_report import emit
    from tfvidgan.metrics.real_data import expected_balls, real_clips

    started = time.perf_counter()
    if bool(FLAGS.export_dir) == bool(FLAGS.frames_generator):
        raise ConfigError("pass exactly one of --export_dir (a video export) and --frames_generator")
    if not FLAGS.data:
        raise ConfigError("--data is required")
    try:
        smoothness_values = [float(s) for s in FLAGS.smoothness]
    except ValueError as e:
        raise ConfigError(f"--smoothness: {e}") from None
    balls = expected_balls(FLAGS.data)
    render, latent_dim, _ = load_frame_renderer(FLAGS.export_dir, FLAGS.frames_generator)
    real, _ = real_clips(FLAGS.data, FLAGS.num_samples, FLAGS.num_frames, FLAGS.seed)
    generated = None
    if FLAGS.export_dir:
        from tfvidgan.video_sampling import sample_latents
        generated = sample_latents(FLAGS.export_dir, FLAGS.num_samples, FLAGS.num_frames, FLAGS.seed)
    rows = render_floor(render, latent_dim, real, balls, smoothness_values=smoothness_values, steps=FLAGS.steps,
                        learning_rate=FLAGS.learning_rate, candidates=FLAGS.candidates,
                        standardize=FLAGS.standardize, seed=FLAGS.seed, generated_latents=generated)
    emit({"benchmark": "render_floor", "export_dir": FLAGS.export_dir, "frames_generator": FLAGS.frames_generator,
          "data": FLAGS.data, "num_samples": FLAGS.num_samples, "num_frames": FLAGS.num_frames,
          "smoothness": smoothness_values, "steps": FLAGS.steps, "learning_rate": FLAGS.learning_rate,
          "candidates": FLAGS.candidates, "standardize": FLAGS.standardize, "seed": FLAGS.seed, "rows": rows,
          "seconds": round(time.perf_counter() - started, 1)}, FLAGS.output)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
