"""`python -m tfvidgan.evaluate video`: how well does a video generator move balls, and how does it walk
the frames generator's latent space?

Latents. `num_samples` latent trajectories `[N, T, Z]` of `num_frames` steps come from the export's
`sample_latents(num_samples, num_frames, seed)` signature. They are compared with the straight-line
interpolation between the same first and last latent (`trajectory_statistics` of both), and both sets
(the first `ISOMAP_TRAJECTORIES` of each: Isomap's memory grows with the square of the points) are
embedded together in 2-D with one Isomap fit and drawn side by side into the PNG `config.plot`
(generated left, interpolation right). A model that "jumps" across latent space shows a path-length
ratio and step spread well above the straight line's 1 and 0.

Rows. Every row holds `clip_physics` (ball count over time, free-flight straightness, speed; the
expected ball count comes from the dataset's metadata), the frameGAN authors' `consecutive_binarized_mse`,
`motion_energy_cv` (how much the frame-difference energy varies in time; real clips about 0.1, NaN for a
row that never moves) and `frechet_distance`, the Fréchet distance to a real reference set in the feature space of a small
clip encoder trained on REAL clips:

* "generated": the model's videos (rendered by `config.frames_generator` if given: the FG swap);
* "real": held-out real clips (the floor every other row is compared with);
* "latent_interpolation": the straight-line latent interpolations between the generated end points;
* "independent_latents": every frame from its own independent N(0, I) latent (no temporal coherence);
* "static": every held-out real clip's FIRST frame repeated T times — a frozen video of perfect frames.
  It scores perfectly on the binarised MSE and count changes, and must FAIL the speed columns
  ("mean_speed", "fraction_steps_in_speed_band") and the free-flight second difference (no ball is in
  flight: NaN, see `clip_physics`'s `min_flight_speed`);
* "collapsed": the first held-out real clip for every sample — real physics means, no diversity. It must
  FAIL the Fréchet distance and the per-clip distributions ("vs_real_distribution");
* "generated_rejection" (when `rejection_acceptance` > 0 and the frames export the model was trained on
  carries its discriminators): the model's clips kept by clip rejection sampling
  (`tfvidgan.rejection.ClipRejectionSampler`: clips whose frames step 1's discriminators find real);
  report["rejection"] says how many clips it drew per kept clip, or why the row is missing.
Read the columns together: count stability, second difference and binarised MSE are only meaningful
beside a speed within the real band, and physics only beside a Fréchet distance near the real row's.
Every row except "real" also carries "vs_real": |row − real| of each physics column
(`PHYSICS_COLUMNS`), and "vs_real_distribution": the Wasserstein-1 distance between the row's per-clip
values of each column and the real clips' (`tfvidgan.metrics.targets.distribution_distance`). The
baseline comparison (`benchmarks/quality.py`) reads the latter: the collapsed row's MEANS are one real
clip's, so no generator can beat them except by noise, but its distribution is a single point.
"fraction_steps_in_speed_band" uses the REAL clips' speed band (5th–95th percentile of their free-step
speeds) for every row.

`long_frames` > 0 also samples trajectories that long (e.g. 120 frames from a model trained on 30-frame
clips) and reports the physics of the first and the last `num_frames` frames ("long_video"): a model
that drifts (balls fade, merge or stop late in the clip) shows different numbers. Its "latent_step" (mean
latent step |z_{t+1} − z_t| in each window, not a target) tells where a speed drift comes from: from the
sequence generator's dynamics when it changes with the rendered speed, from the rendering when it does not.

With `frames_generator` (the FG swap), "fg_swap" reports the generated clips' physics counted with
`swap_expected_balls` (e.g. 1 for an FG trained on one ball): fraction of frames with exactly that many
balls and their speed.

All latent rows are rendered by the same frames generator (the export's `render` signature, or the
swapped FG's `generate` signature), and carry the `trajectory_statistics` of their latents.

Real data: three DISJOINT scene ranges, one clip of `num_frames` frames at a random offset per scene
(`tfvidgan.metrics.real_data.real_clips`):

* scenes `[0, encoder_samples)`, offsets drawn with seed `ENCODER_SEED`: trains the clip encoder;
* scenes `[encoder_samples, encoder_samples + N)`, seed `config.seed + 1`: the Fréchet reference set;
* scenes `[encoder_samples + N, encoder_samples + 2N)`, seed `config.seed + 2`: the "real" row.

The encoder is cached as `<encoder_cache>/<name>.keras` (`load_or_train_encoder`), the name built from
the dataset's generator settings, `num_frames`, `encoder_samples` and `encoder_steps`
(`clip_encoder_name`). Its training does not depend on `config.seed`, so the name alone determines the
encoder and distances from runs with different seeds are measured with the same ruler.

Determinism: the same config (and the same cached encoder) gives the same numbers.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from tfvidgan.data.metadata import DatasetMetadata, read_metadata
from tfvidgan.errors import ConfigError, ExportKindError, check_whole_number
from tfvidgan.export import VIDEO_GENERATOR, read_description, selection_of_draw
from tfvidgan.metrics.balls import clip_physics, consecutive_binarized_mse_per_clip, motion_energy_cv
from tfvidgan.metrics.frechet import ENCODER_SEED, frechet_distance, load_or_train_encoder, train_clip_encoder
from tfvidgan.metrics.plotting import plot_trajectories_png
from tfvidgan.metrics.real_data import dataset_fingerprint, real_clips
from tfvidgan.metrics.targets import DISTRIBUTION_KEY, PHYSICS_COLUMNS, distribution_distance, long_video_change
from tfvidgan.metrics.trajectories import joint_isomap_embedding, linear_interpolation, trajectory_statistics
from tfvidgan.rejection import RejectionConfig
from tfvidgan.video_sampling import clip_rejection_sampler, load_renderer, sample_latents

__all__ = ["VideoEvalConfig", "evaluate_video", "clip_row", "compare_with_real", "baseline_clips", "load_renderer",
           "clip_encoder_name", "ENCODER_SEED", "ISOMAP_TRAJECTORIES", "ROWS"]

ROWS = ("generated", "real", "latent_interpolation", "independent_latents", "static", "collapsed")
# Columns every row reports beside the physics columns, outside the targets (no vs_real, no distributions); the
# in-training probe logs them too.
DIAGNOSTIC_COLUMNS = ("motion_energy_cv", "fraction_expected_count_first_frame")
_INDEPENDENT_STREAM = 31_337  # second word of the stateless seed of the independent latents
_ISOMAP_NEIGHBORS = 10
ISOMAP_TRAJECTORIES = 25  # generated trajectories (and as many straight lines) in the Isomap fit


@dataclasses.dataclass(frozen=True)
class VideoEvalConfig:
    """What `evaluate_video` evaluates; field names equal the `python -m tfvidgan.evaluate video` flags.

    Attributes:
      export_dir: video-generator export (base directory = newest version, or one version directory).
      data: real bouncing-balls dataset (directory with `metadata.json`, or a shard glob).
      num_samples: N, clips per row (>= 2); the dataset needs `encoder_samples + 2 N` scenes.
      num_frames: T, frames per clip (2 <= T <= the dataset's frames per scene).
      frames_generator: optional frames export of the same latent size that renders the latents
        instead of the video export's own FG ("" = no swap).
      plot: where to write the Isomap PNG ("" = no plot).
      encoder_samples, encoder_steps: real clips and Adam steps of the clip encoder's training.
      encoder_cache: directory of cached encoders.
      seed: seed of the sampled trajectories, the independent latents and the real reference/held-out picks.
    """
    export_dir: str
    data: str
    num_samples: int = 1000
    num_frames: int = 16
    frames_generator: str = ""
    plot: str = "isomap.png"
    encoder_samples: int = 1000
    encoder_steps: int = 300
    encoder_cache: str = "eval_cache"
    seed: int = 0
    long_frames: int = 0
    swap_expected_balls: int = 1
    rejection_acceptance: float = RejectionConfig.acceptance

    def __post_init__(self):
        if self.long_frames and self.long_frames < 2 * self.num_frames:
            raise ConfigError(f"--long_frames={self.long_frames} must be 0 (off) or >= 2 * --num_frames "
                              f"({2 * self.num_frames}): its first and last --num_frames frames are compared")
        for name, minimum in (("num_samples", 2), ("num_frames", 2), ("encoder_samples", 2),
                              ("encoder_steps", 1), ("swap_expected_balls", 0)):
            check_whole_number(name, getattr(self, name), minimum)
        for name in ("export_dir", "data"):
            if not getattr(self, name):
                raise ConfigError(f"--{name} is required")


def clip_encoder_name(metadata: DatasetMetadata, num_frames: int, encoder_samples: int, encoder_steps: int) -> str:
    """Cache file stem of the clip encoder for this dataset, clip length and encoder settings.

    E.g. `clip_encoder_s32_c1_b3_seed0_1a2b3c4d_T16_n1000_steps300`; the 8 hex digits are
    `dataset_fingerprint(metadata)` (every generator setting that changes scenes).
    """
    return (f"clip_encoder_s{metadata.size}_c{metadata.channels}_b{metadata.num_balls}_seed{metadata.seed}_"
            f"{dataset_fingerprint(metadata)}_T{num_frames}_n{encoder_samples}_steps{encoder_steps}")


def _check_frame_shape(flag: str, path: str, shape, metadata: DatasetMetadata, data: str) -> None:
    expected = (metadata.size, metadata.size, metadata.channels)
    if tuple(shape) != expected:
        raise ConfigError(f"--{flag}={path!r} renders frames of shape {tuple(shape)} (H, W, C) but the real "
                          f"data --data={data!r} has {expected}; evaluate against data of "
                          f"the size the model was trained on")


def _check_data(config: VideoEvalConfig, metadata: DatasetMetadata) -> None:
    if config.num_frames > metadata.num_frames:
        raise ConfigError(f"--num_frames={config.num_frames} exceeds the {metadata.num_frames} frames per scene "
                          f"of --data={config.data!r}")
    needed = config.encoder_samples + 2 * config.num_samples
    if metadata.num_scenes < needed:
        raise ConfigError(f"--data={config.data!r} has {metadata.num_scenes} scenes but this evaluation needs "
                          f"--encoder_samples + 2 * --num_samples = {needed} disjoint scenes; lower "
                          f"--num_samples or --encoder_samples")


NO_BALLS = ("physics columns (ball counts, speeds, free flight, speed band, vs_real, long-video relative "
            "change) need ball positions, but this dataset has none (num_balls = 0: scenes made from videos); "
            "reported: the Fréchet distance (encoder trained on frame layout and frame differences alone) and "
            "consecutive_binarized_mse")


def clip_row(clips: np.ndarray, expected_balls: int, encoder, reference_features: np.ndarray,
             speed_band=None, per_clip: bool = False) -> dict:
    """One report row of clips ``[N, T, H, W, C]`` in [-1, 1]: `clip_physics` (only with balls, scored against
    `speed_band` if given), ``consecutive_binarized_mse``, ``motion_energy_cv`` (`tfvidgan.metrics.balls`; NaN
    for clips of fewer than 3 frames or that never move) and, with an `encoder`, the ``frechet_distance`` of
    its features to `reference_features`. With `per_clip` (and balls) also "per_clip": `{column: float64
    [N]}` of every `PHYSICS_COLUMNS` entry on each clip alone (NumPy arrays: pop it before writing JSON)."""
    stats = clip_physics(clips, expected_balls, speed_band=speed_band, per_clip=per_clip) if expected_balls else {}
    mse = consecutive_binarized_mse_per_clip(clips)
    stats["consecutive_binarized_mse"] = float(mse.mean())
    if "per_clip" in stats:
        stats["per_clip"]["consecutive_binarized_mse"] = mse
    stats["motion_energy_cv"] = motion_energy_cv(clips) if clips.shape[1] >= 3 else float("nan")
    if encoder is not None:
        stats["frechet_distance"] = float(frechet_distance(reference_features, encoder.features(clips)))
    return stats


def vs_real(row: dict, real: dict) -> dict:
    """|row − real| of every `PHYSICS_COLUMNS` entry (NaN where either is undefined)."""
    return {k: float(abs(row[k] - real[k])) for k in PHYSICS_COLUMNS}


def vs_real_distribution(per_clip: dict, real_per_clip: dict) -> dict:
    """Wasserstein-1 distance between the row's and the real row's per-clip values of every
    `PHYSICS_COLUMNS` entry (`tfvidgan.metrics.targets.distribution_distance`; NaN where either has none)."""
    return {k: distribution_distance(per_clip[k], real_per_clip[k]) for k in PHYSICS_COLUMNS}


def compare_with_real(row: dict, real: dict, real_per_clip: dict) -> None:
    """Replaces a `clip_row(..., per_clip=True)` row's "per_clip" arrays by "vs_real" (`vs_real` against the
    real row `real`) and `DISTRIBUTION_KEY` (`vs_real_distribution` against `real_per_clip`, the real
    row's popped "per_clip"), in place."""
    per_clip = row.pop("per_clip")
    row["vs_real"] = vs_real(row, real)
    row[DISTRIBUTION_KEY] = vs_real_distribution(per_clip, real_per_clip)


def baseline_clips(row: str, held_out: np.ndarray) -> np.ndarray:
    """The clips of baseline row "static" (each held-out clip's first frame repeated) or "collapsed" (the
    first held-out clip for every sample), from held-out real clips `[N, T, H, W, C]`; same shape."""
    if row == "static":
        return np.repeat(held_out[:, :1], held_out.shape[1], axis=1)
    if row == "collapsed":
        return np.repeat(held_out[:1], held_out.shape[0], axis=0)
    raise ValueError(f"no baseline row {row!r}; the baselines made from real clips are 'static' and 'collapsed'")


def _rejection(config: VideoEvalConfig) -> dict:
    """{"latents": [N, T, Z] kept trajectories, "clips": [N, T, H, W, C] their renders by the export's own FG,
    acceptance, candidates, ...} by clip rejection sampling, or
    {"unavailable": why} (off, or the frames export the model was trained on has no discriminators)."""
    if config.rejection_acceptance <= 0:
        return {"unavailable": "off (--rejection_acceptance=0)"}
    try:
        sampler = clip_rejection_sampler(config.export_dir, config.num_frames, config.rejection_acceptance,
                                         seed=config.seed)
    except ExportKindError as e:
        return {"unavailable": str(e)}
    result = sampler.sample(config.num_samples, seed=config.seed)
    return {"latents": result.latents, "clips": result.samples, "target_acceptance": config.rejection_acceptance,
            "acceptance": result.acceptance, "candidates": result.candidates,
            "clips_drawn_per_sample": result.candidates / config.num_samples, "d_star": result.d_star,
            "gamma": result.gamma}


def evaluate_video(config: VideoEvalConfig) -> dict:
    """Evaluates a video export against real clips (see the module docstring for the method).

    Args:
      config: a `VideoEvalConfig`.

    Returns:
      A JSON-able dict of plain floats / ints / lists / strings (NaN where a statistic is undefined,
      e.g. no free-flight triples):
        "generated", "real", "latent_interpolation", "independent_latents": per row the `clip_physics`
          keys, "consecutive_binarized_mse" and "frechet_distance"; the three latent rows also have
          "trajectory" (`trajectory_statistics` of their `[N, T, Z]` latents); with balls, every row but
          "real" (the baselines "static" and "collapsed" included) has "vs_real" and "vs_real_distribution"
          (`{column: float}` over `PHYSICS_COLUMNS`).
        "isomap": {"plot": PNG path or None, "n_neighbors", "num_trajectories" (the first
          `min(N, ISOMAP_TRAJECTORIES)` generated trajectories and their straight lines are embedded),
          "num_points"}; the PNG draws the first 10 of them.
        "settings": the config plus "selection" (how a best export was picked, `export.read_selection`,
          or None), "expected_balls", "latent_dim", "encoder" (cache name), "encoder_seed" and the scene
          ranges used.
        "selection_bias" (only when it applies): a warning that this draw's seed is the seed of the
          in-training probe sample that picked this best export (`export.selection_bias`).

    Raises:
      ConfigError: bad config values, exports that are not of the right kind, an FG swap with another
        latent size, frame shapes that differ from the data's, or too few scenes / frames in the data.
      DatasetError: unreadable real data.
    """
    metadata = read_metadata(config.data)
    balls = metadata.num_balls > 0
    _check_data(config, metadata)
    _, description = read_description(config.export_dir, VIDEO_GENERATOR, "export_dir")
    latent_dim = int(description["latent_dim"])
    render, frame_shape = load_renderer(config.export_dir, config.frames_generator, latent_dim)
    flag, path = (("frames_generator", config.frames_generator) if config.frames_generator
                  else ("export_dir", config.export_dir))
    _check_frame_shape(flag, path, frame_shape, metadata, config.data)

    n, t = config.num_samples, config.num_frames
    # Latent trajectories: generated, straight lines between their ends, independent draws.
    generated = sample_latents(config.export_dir, n, t, config.seed).astype(np.float64)
    interpolation = linear_interpolation(generated)
    independent = tf.random.stateless_normal([n, t, latent_dim], seed=[config.seed, _INDEPENDENT_STREAM],
                                             dtype=tf.float32).numpy().astype(np.float64)
    latent_rows = {"generated": generated, "latent_interpolation": interpolation,
                   "independent_latents": independent}

    # Isomap of generated vs straight trajectories in shared coordinates. Isomap needs all pairwise
    # geodesic distances (memory ~ points^2), so it is fitted on the first few trajectories only.
    embedded_trajectories = min(n, ISOMAP_TRAJECTORIES)
    num_points = 2 * embedded_trajectories * t
    neighbors = min(_ISOMAP_NEIGHBORS, num_points - 1)
    plot_path = None
    if config.plot:
        embedded, baseline = joint_isomap_embedding(
            [generated[:embedded_trajectories], interpolation[:embedded_trajectories]], n_neighbors=neighbors)
        plot_trajectories_png(embedded, config.plot, baseline=baseline,
                              title=f"latent trajectories (joint Isomap, {neighbors} neighbours): generated "
                                    f"(left) vs straight-line interpolation between the same ends (right)")
        plot_path = config.plot

    # Real clips from disjoint scene ranges; the encoder (cached) is trained on the first range only.
    first_reference, first_held_out = config.encoder_samples, config.encoder_samples + n
    name = clip_encoder_name(metadata, t, config.encoder_samples, config.encoder_steps)

    def train():
        clips, positions = real_clips(config.data, config.encoder_samples, t, ENCODER_SEED)
        return train_clip_encoder(clips, positions if balls else None, steps=config.encoder_steps,
                                  seed=ENCODER_SEED)

    encoder = load_or_train_encoder(config.encoder_cache, name, train)
    reference, _ = real_clips(config.data, n, t, config.seed + 1, first_scene=first_reference)
    held_out, _ = real_clips(config.data, n, t, config.seed + 2, first_scene=first_held_out)
    reference_features = encoder.features(reference)

    report = {"real": clip_row(held_out, metadata.num_balls, encoder, reference_features, per_clip=balls)}
    real_per_clip = report["real"].pop("per_clip", None)
    band = report["real"].get("speed_band")

    generated_clips = None
    for row in ROWS:
        if row == "real":
            continue
        if row in ("static", "collapsed"):
            clips = baseline_clips(row, held_out)
        else:
            clips = render(latent_rows[row])
        report[row] = clip_row(clips, metadata.num_balls, encoder, reference_features, speed_band=band,
                               per_clip=balls)
        if row in latent_rows:
            report[row]["trajectory"] = trajectory_statistics(latent_rows[row])
        if row == "generated":
            generated_clips = clips
        if balls:
            compare_with_real(report[row], report["real"], real_per_clip)
    rejection = _rejection(config)
    if "latents" in rejection:
        latents, clips = rejection.pop("latents"), rejection.pop("clips")
        if config.frames_generator:  # the row is rendered like "generated": by the swapped FG
            clips = render(latents)
        row = clip_row(clips, metadata.num_balls, encoder, reference_features, speed_band=band, per_clip=balls)
        row["trajectory"] = trajectory_statistics(latents.astype(np.float64))
        if balls:
            compare_with_real(row, report["real"], real_per_clip)
        report["generated_rejection"] = row
    # Fixed row order in the JSON; the optional rejection row follows "generated".
    order = ROWS[:1] + (("generated_rejection",) if "generated_rejection" in report else ()) + ROWS[1:]
    report = {row: report[row] for row in order}
    report["rejection"] = rejection
    if config.frames_generator:
        swap = clip_physics(generated_clips, config.swap_expected_balls)
        report["fg_swap"] = {"frames_generator": config.frames_generator,
                             "expected_balls": config.swap_expected_balls,
                             "fraction_expected_count_frames": swap["fraction_expected_count_frames"],
                             "mean_count_changes": swap["mean_count_changes"],
                             "mean_speed": swap["mean_speed"],
                             "free_flight_second_difference": swap["free_flight_second_difference"]}
    if config.long_frames:
        long_latents = sample_latents(config.export_dir, n, config.long_frames, config.seed)
        long_clips = render(long_latents)
        first = clip_row(long_clips[:, :t], metadata.num_balls, None, None, speed_band=band)
        last = clip_row(long_clips[:, -t:], metadata.num_balls, None, None, speed_band=band)
        steps = [trajectory_statistics(window)["mean_step"]
                 for window in (long_latents[:, :t], long_latents[:, -t:])]
        report["long_video"] = {
            "num_frames": config.long_frames, "window": t, "first": first, "last": last,
            "relative_change": long_video_change(first, last),
            "latent_step": {"first": steps[0], "last": steps[1],
                            "relative_change": abs(steps[1] - steps[0]) / max(steps[0], 1e-9)}}
    if not balls:
        report["unavailable"] = NO_BALLS
    report["isomap"] = {"plot": plot_path, "n_neighbors": int(neighbors), "num_trajectories": embedded_trajectories,
                        "num_points": int(num_points)}
    selection, bias = selection_of_draw(config.export_dir, config.seed)
    if bias:
        report["selection_bias"] = bias
    report["settings"] = {
        **dataclasses.asdict(config), "selection": selection,
        "expected_balls": int(metadata.num_balls), "latent_dim": latent_dim,
        "frame_shape": list(frame_shape), "encoder": name, "encoder_seed": ENCODER_SEED,
        "scenes": {"encoder": [0, config.encoder_samples], "reference": [first_reference, first_held_out],
                   "real_row": [first_held_out, first_held_out + n]},
    }
    return report
