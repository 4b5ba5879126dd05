r"""Where does generated balls' wobble come from: the sequence generator's latent paths, or the frames
generator's rendering of them? Prints JSON.

    python -m benchmarks.wobble_source --export_dir=RUN/export --num_samples=500 --sigmas=0.7,1.5,3
    python -m benchmarks.wobble_source --frames_generator=FRAMES_RUN/export --latent_steps=0.5,1,1.5

With `--export_dir` (a video export), the export's own latent paths (`sample_latents`, one seeded draw) are
rendered by its own frames generator as drawn ("generated"), after Gaussian smoothing along time with each σ
in `--sigmas` (frames; `scipy.ndimage.gaussian_filter1d`, edges repeated: "smoothed_<σ>"), and replaced by
the straight line at constant speed between each path's first and last latent ("straight").

With `--frames_generator` instead (a frames export, step 1 alone), the paths are great circles of the
sphere of radius √Z, the typical set of the N(0, I_Z) prior and where the sequence generator's
"standardize" latents live, walked at a constant `s` latent units per frame for each s in `--latent_steps`
("great_circle_<s>"): the evenest paths there are, so any wobble they render is the frames generator's own.

With `--frames_generator` and `--fine_step=s` (e.g. 0.05), great circles walked at s latent units per frame
are also rendered and tracked at several `--strides` (`stride_scaling`): how the balls' second difference
grows with the time step, which tells smooth curved motion (∝ stride²) from per-frame jitter (constant).

With `--data` (bouncing-balls records), a "real" row of real clips is added (one clip per scene from the
first, at seeded offsets).

Each row reports the physics columns of `tfvidgan.metrics.balls.clip_physics`, `motion_energy_cv`,
"wobble_per_speed": the free-flight second difference divided by the mean speed (pixels/frame² per
pixel/frame), "phase_speed_modulation" (`phase_speed_modulation`: whether balls stick to the pixel
grid), and what `--discriminator_input=clips_and_centroid_accelerations` shows the video discriminators
(`centroid_acceleration_stats`: the balls' centroid second differences, tracker-free).

Reading it: smoothing removes the paths' high-frequency jitter, so if the wobble came from the sequence
generator's steps, the smoothed rows would wobble much less per unit of speed than "generated". If
"wobble_per_speed" stays, or "straight" is no better, the rendering itself moves balls unevenly along even
latent paths: the frames generator's latent geometry, which only training the frames generator can change
(compare two frames exports with `--frames_generator`). Real clips: about 0.03 px at 1 px/frame. The exit
code is 0 (a measurement, not a test).
"""
from __future__ import annotations

import time

import numpy as np
from absl import flags
from scipy.ndimage import gaussian_filter1d

from tfvidgan import cli
from tfvidgan.errors import ConfigError
from tfvidgan.export import FRAMES_GENERATOR, read_description
from tfvidgan.json_report import emit
from tfvidgan.metrics.balls import clip_physics, detect_blobs, motion_energy_cv, track_blobs, tracked_centres
from tfvidgan.metrics.real_data import real_clips
from tfvidgan.metrics.trajectories import linear_interpolation
from tfvidgan.models.ensemble_discriminator import CentroidAccelerations
from tfvidgan.video_sampling import load_renderer, sample_latents

FLAGS = flags.FLAGS
# (Not the speed-band column: without a real reference each row would be scored against its own band.)
COLUMNS = ("free_flight_second_difference", "mean_speed", "mean_count_changes", "fraction_expected_count_frames",
           "num_free_triples")


def latent_variants(latents: np.ndarray, sigmas) -> dict[str, np.ndarray]:
    """`{row: [N, T, Z] float32}`: the paths as drawn, each smoothed along time (σ in frames > 0), and the
    constant-speed straight line between each path's end points (`linear_interpolation`, the video report's
    "latent_interpolation" row)."""
    latents = np.asarray(latents, np.float32)
    if latents.ndim != 3 or latents.shape[1] < 3:
        raise ConfigError(f"latents must have shape [N, T>=3, Z], got {latents.shape}")
    rows = {"generated": latents}
    for sigma in sigmas:
        if not sigma > 0:
            raise ConfigError(f"--sigmas must be > 0, got {sigma!r}")
        rows[f"smoothed_{sigma:g}"] = gaussian_filter1d(latents, float(sigma), axis=1, mode="nearest")
    rows["straight"] = linear_interpolation(latents).astype(np.float32)
    return rows


def great_circles(num_paths: int, num_frames: int, latent_dim: int, step: float, seed: int) -> np.ndarray:
    """`[N, T, Z]` float32: N great circles of the sphere of radius √Z, each walked at `step` latent units
    per frame (arc length) from a random point in a random direction; z_t = √Z (cos(ωt) u + sin(ωt) v)
    with u ⊥ v unit vectors and ω = step / √Z. `seed` fixes the draw."""
    if not step > 0:
        raise ConfigError(f"--latent_steps must be > 0, got {step!r}")
    if latent_dim < 2:
        raise ConfigError(f"great circles need a latent size >= 2, got {latent_dim}")
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(num_paths, latent_dim))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = rng.normal(size=(num_paths, latent_dim))
    v -= np.sum(v * u, axis=1, keepdims=True) * u
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    radius = np.sqrt(latent_dim)
    angle = (step / radius) * np.arange(num_frames)[None, :, None]
    return (radius * (np.cos(angle) * u[:, None] + np.sin(angle) * v[:, None])).astype(np.float32)


def phase_speed_modulation(clips: np.ndarray, bins: int = 8, max_match_distance: float = 4.0) -> float:
    """How much the balls' speed depends on where they are within a pixel: "texture sticking" (Karras et al.
    2021), a renderer that holds objects to the pixel grid and lets them jump between cells.

    Every blob tracked over consecutive frames (`track_blobs`) gives, per axis with a displacement above
    0.05 px, the displacement |d| and the sub-pixel phase of its midpoint (fraction of a pixel). The value
    is (max − min) / mean of the mean |d| over `bins` phase bins: about 0 for a renderer without a grid
    (real clips), large when motion sticks. NaN with fewer than 20 displacements per bin.

    Args:
      clips: `[N, T, H, W, C]` float in [-1, 1].
      bins: sub-pixel phase bins.
      max_match_distance: `track_blobs`' link limit, pixels/frame. Unlike `clip_physics` (no limit, but only
        steps between frames with the expected count and free balls count there), every tracked step counts
        here, so a ball lost in one frame must not be linked to another ball: 4 px/frame, above the fastest
        real speed (1.5 at 32 pixels). The reports in docs/ used this value.
    """
    phase, speed = [], []
    for clip in np.asarray(clips):
        blobs = detect_blobs(clip)
        ids = track_blobs(blobs, max_match_distance)
        where = [dict(zip(ids[t], b.centroids)) for t, b in enumerate(blobs)]
        for now, later in zip(where[:-1], where[1:]):
            for track, centre in now.items():
                if track in later:
                    step, middle = later[track] - centre, (later[track] + centre) / 2
                    moving = np.abs(step) > 0.05
                    phase.extend(np.mod(middle[moving], 1.0))
                    speed.extend(np.abs(step[moving]))
    phase, speed = np.asarray(phase), np.asarray(speed)
    which = np.minimum((phase * bins).astype(int), bins - 1)
    counts = np.bincount(which, minlength=bins)
    if counts.min() < 20:
        return float("nan")
    per_bin = np.bincount(which, weights=speed, minlength=bins) / counts
    return float((per_bin.max() - per_bin.min()) / speed.mean())


def stride_scaling(clips: np.ndarray, strides, expected_balls: int, wall_margin: float = 1.5,
                   ball_margin: float = 3.0) -> dict[str, dict]:
    """How the tracked balls' second difference grows with the time step, on finely sampled clips.

    For each stride k in `strides` (frames, >= 1), every tracked ball free (`tracked_centres`: the *free* test
    of `clip_physics`) at every frame from t − k to t + k gives
    D = |p(t + k) − 2 p(t) + p(t − k)| and the step |p(t + k) − p(t)| (pixels). Smooth motion has D ∝ k²
    (a curved path: D ≈ curvature × step²; a straight one, D ≈ 0), motion with independent per-frame jitter
    has D about constant in k, piecewise-straight motion with many random kinks D ∝ k^1.5. So rendering a
    frames generator's latent paths with a step much finer than a video frame's shows at which scale its
    balls stop moving smoothly. `[N, T, H, W, C]` clips in [-1, 1].

    Returns:
      `{str(k): {"triples", "mean", "median" (D, pixels), "mean_step" (pixels), "mean_per_step" (mean D ÷
      mean step), "exponent" (log2 of the median's growth from the previous stride ÷ the strides' ratio,
      from the second stride on)}}`; NaN where there are no triples.
    """
    strides = [int(k) for k in strides]
    if not strides or min(strides) < 1 or sorted(set(strides)) != strides:
        raise ConfigError(f"--strides must be increasing integers >= 1, got {strides!r}")
    clips = np.asarray(clips)
    if clips.ndim != 5 or clips.shape[1] < 2 * strides[-1] + 1:
        raise ConfigError(f"stride_scaling needs clips [N, T, H, W, C] with T >= 2 * {strides[-1]} + 1, got "
                          f"{clips.shape}")
    height, width = clips.shape[2:4]
    second = {k: [] for k in strides}
    step = {k: [] for k in strides}
    for clip in clips:
        tracks = tracked_centres(detect_blobs(clip), height, width, expected_balls, wall_margin, ball_margin)
        for points in tracks.values():
            free_times = {t for t, (_, free) in points.items() if free}
            for t in free_times:
                for k in strides:
                    if all(u in free_times for u in range(t - k, t + k + 1)):
                        before, now, after = points[t - k][0], points[t][0], points[t + k][0]
                        second[k].append(float(np.linalg.norm(after - 2.0 * now + before)))
                        step[k].append(float(np.linalg.norm(after - now)))
    out, previous = {}, None
    for k in strides:
        d, s = np.asarray(second[k]), np.asarray(step[k])
        median = float(np.median(d)) if d.size else float("nan")
        row = {"triples": int(d.size), "mean": float(d.mean()) if d.size else float("nan"), "median": median,
               "mean_step": float(s.mean()) if s.size else float("nan")}
        row["mean_per_step"] = row["mean"] / row["mean_step"] if s.size and row["mean_step"] > 0 else float("nan")
        if previous is not None:
            k0, m0 = previous
            row["exponent"] = (float(np.log2(median / m0) / np.log2(k / k0)) if m0 > 0 and median > 0
                               else float("nan"))
        out[str(k)], previous = row, (k, median)
    return out


def centroid_acceleration_stats(clips: np.ndarray, min_gate: float = 0.6, batch: int = 100) -> dict:
    """What `CentroidAccelerations` (default settings) shows of `[N, T, H, W, C]` clips in [-1, 1]: over the
    (pixel, frame) pairs whose gate exceeds `min_gate` (a whole ball centred there), the median, 75th and
    90th percentile of the centroid acceleration's length (pixels/frame²; NaN when none), and "shown", the
    fraction of pairs that pass (frames 2 … T − 1)."""
    layer, lengths, shown, total = CentroidAccelerations(), [], 0, 0
    for start in range(0, len(clips), batch):
        acceleration, gate = layer.accelerations_and_gate(np.asarray(clips[start:start + batch], np.float32))
        passed = gate.numpy()[..., 0] > min_gate
        lengths.append(np.linalg.norm(acceleration.numpy(), axis=-1)[passed])
        shown, total = shown + int(passed.sum()), total + passed.size
    lengths = np.concatenate(lengths) if lengths else np.zeros(0)
    pick = (lambda q: float(np.percentile(lengths, q))) if lengths.size else (lambda q: float("nan"))
    return {"centroid_acceleration_median": pick(50), "centroid_acceleration_p75": pick(75),
            "centroid_acceleration_p90": pick(90), "centroid_acceleration_shown": shown / max(total, 1)}


def wobble_rows(clips_by_row: dict[str, np.ndarray], expected_balls: int) -> dict[str, dict]:
    """The report rows of rendered clips `{row: [N, T, H, W, C] in [-1, 1]}` (see the module docstring)."""
    out = {}
    for name, clips in clips_by_row.items():
        stats = clip_physics(clips, expected_balls)
        row = {k: stats[k] for k in COLUMNS}
        row["motion_energy_cv"] = motion_energy_cv(clips)
        row["phase_speed_modulation"] = phase_speed_modulation(clips)
        row.update(centroid_acceleration_stats(clips))
        speed = row["mean_speed"]
        row["wobble_per_speed"] = (row["free_flight_second_difference"] / speed if speed and np.isfinite(speed)
                                   else float("nan"))
        out[name] = row
    return out


def define_flags() -> None:
    """Defines the command line's flags (only when run as a program)."""
    flags.DEFINE_string("export_dir", "", "A video export (`python -m tfvidgan.train_video`): its own paths.")
    flags.DEFINE_string("frames_generator", "", "Instead of --export_dir: a frames export, rendered along great "
                        "circles at --latent_steps.")
    flags.DEFINE_integer("num_samples", 500, "Clips per row.", lower_bound=1)
    flags.DEFINE_integer("num_frames", 30, "Frames per clip.", lower_bound=3)
    flags.DEFINE_integer("seed", 0, "Seed of the latent draw.")
    flags.DEFINE_integer("expected_balls", 3, "Balls per real frame.", lower_bound=1)
    flags.DEFINE_list("sigmas", ["0.7", "1.5", "3"], "--export_dir: Gaussian smoothing widths, in frames.")
    flags.DEFINE_list("latent_steps", ["0.5", "1", "1.5"], "--frames_generator: latent units per frame.")
    flags.DEFINE_float("fine_step", 0.0, "--frames_generator: also render great circles at this many latent units "
                       "per frame (e.g. 0.05, far finer than a video's) for `stride_scaling`; 0 = off.",
                       lower_bound=0.0)
    flags.DEFINE_list("strides", ["1", "2", "4", "8", "16", "32"], "--fine_step: the strides (frames) of "
                      "`stride_scaling`.")
    flags.DEFINE_string("data", "", "Optional bouncing-balls records (directory or glob): adds a 'real' row.")
    flags.DEFINE_string("output", "", "Also write the JSON here.")


def _floats(name: str) -> list[float]:
    try:
        return [float(s) for s in getattr(FLAGS, name)]
    except ValueError as e:
        raise ConfigError(f"--{name}: {e}") from None


def main(argv) -> None:
    del argv
    start = time.perf_counter()
    if bool(FLAGS.export_dir) == bool(FLAGS.frames_generator):
        raise ConfigError("pass exactly one of --export_dir (a video export) and --frames_generator "
                          "(a frames export)")
    if FLAGS.fine_step and not FLAGS.frames_generator:
        raise ConfigError("--fine_step needs --frames_generator")
    try:
        strides = [int(k) for k in FLAGS.strides]
    except ValueError as e:
        raise ConfigError(f"--strides: {e}") from None
    if FLAGS.export_dir:
        latents = sample_latents(FLAGS.export_dir, FLAGS.num_samples, FLAGS.num_frames, FLAGS.seed)
        render, _ = load_renderer(FLAGS.export_dir, "", latent_dim=latents.shape[-1])
        variants = latent_variants(latents, _floats("sigmas"))
    else:
        _, description = read_description(FLAGS.frames_generator, FRAMES_GENERATOR, "frames_generator")
        latent_dim = int(description["latent_dim"])
        render, _ = load_renderer("", FLAGS.frames_generator, latent_dim=latent_dim)
        variants = {f"great_circle_{s:g}": great_circles(FLAGS.num_samples, FLAGS.num_frames, latent_dim, s,
                                                         FLAGS.seed) for s in _floats("latent_steps")}
    clips = {name: render(z) for name, z in variants.items()}
    if FLAGS.data:
        clips["real"], _ = real_clips(FLAGS.data, FLAGS.num_samples, FLAGS.num_frames, FLAGS.seed)
    rows = wobble_rows(clips, FLAGS.expected_balls)
    report = {"benchmark": "wobble_source", "export_dir": FLAGS.export_dir, "frames_generator": FLAGS.frames_generator,
              "data": FLAGS.data, "num_samples": FLAGS.num_samples, "num_frames": FLAGS.num_frames, "seed": FLAGS.seed,
              "rows": rows}
    if FLAGS.fine_step:
        fine = great_circles(FLAGS.num_samples, 4 * max(strides) + 1, latent_dim, FLAGS.fine_step, FLAGS.seed)
        report["stride_scaling"] = {"fine_step": FLAGS.fine_step, "num_frames": fine.shape[1],
                                    "strides": stride_scaling(render(fine), strides, FLAGS.expected_balls)}
    report["seconds"] = round(time.perf_counter() - start, 1)
    emit(report, FLAGS.output)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
