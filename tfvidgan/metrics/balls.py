"""Ball detection, tracking and physics statistics for bouncing-balls frames and clips.

Everything here is plain numpy/scipy and works on generated or real data alike:

* `detect_blobs` thresholds frames and labels connected components (`scipy.ndimage.label`), giving per
  frame the ball count, each blob's area (pixels) and its intensity-weighted centroid.
* `frame_statistics` summarises a set of frames for the frames-GAN evaluation (how often a frame shows
  exactly the expected number of balls, how consistent the ball sizes are).
* `clip_physics` summarises a set of clips for the video evaluation (is the ball count stable over time,
  do the tracked balls fly in straight lines at a steady speed between bounces).
* `consecutive_binarized_mse` is the frameGAN authors' smoothness metric.
* `motion_energy_cv` asks whether the motion is steady: how much the frame-difference energy varies in time.

Coordinates (the same as the ground truth written by `data_tools/bouncing_balls.py`): centroids are
`(row, col)` in pixels with pixel `[i, j]` covering `[i, i+1) x [j, j+1)`, i.e. centred at
`(i + 0.5, j + 0.5)`; the walls are at 0 and H (rows), 0 and W (cols).

Colour: a pixel's brightness is its brightest channel (`max` over C), so white balls in grayscale
frames and coloured balls in RGB frames (each palette colour has a channel at full intensity) are
thresholded alike.

Limitation (by construction): balls that touch or overlap form ONE connected blob, so the frame's count
drops and the merged blob's centroid lies between the balls. `clip_physics` therefore leaves steps with
a ball near another ball out of its motion statistics, and the count statistics report such frames as
having the wrong count (real data with touching balls does the same, which is why real-data numbers are
the reference to compare against, not the ideal 1.0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from tfvidgan.errors import ConfigError, DatasetError

__all__ = [
    "FrameBlobs",
    "binarize",
    "detect_blobs",
    "frame_statistics",
    "track_blobs",
    "clip_physics",
    "consecutive_binarized_mse",
    "consecutive_binarized_mse_per_clip",
    "motion_energy_cv",
    "motion_energy_cv_per_clip",
]


@dataclass(frozen=True)
class FrameBlobs:
    """The blobs found in one frame.

    Attributes:
      areas: `[n] float64`, blob areas in pixels (number of pixels above the threshold).
      centroids: `[n, 2] float64`, intensity-weighted `(row, col)` centres in pixels (pixel `[i, j]`
        is centred at `(i + 0.5, j + 0.5)`).
    """

    areas: np.ndarray
    centroids: np.ndarray

    @property
    def count(self) -> int:
        """Number of blobs in the frame."""
        return int(self.areas.shape[0])

    @property
    def radii(self) -> np.ndarray:
        """`[n] float64`: radius of the disc with the blob's area, `sqrt(area / pi)`, in pixels."""
        return np.sqrt(self.areas / np.pi)


def _check_connectivity(connectivity: int) -> np.ndarray:
    if connectivity == 4:
        return ndimage.generate_binary_structure(2, 1)
    if connectivity == 8:
        return ndimage.generate_binary_structure(2, 2)
    raise ConfigError(f"connectivity must be 4 or 8, got {connectivity!r}")


def _as_gray(frames: np.ndarray, name: str, rank: int) -> np.ndarray:
    """Checks `frames` has `rank` dims (last = channels) and returns the brightest channel, float64."""
    frames = np.asarray(frames)
    if frames.ndim != rank:
        raise DatasetError(f"{name} must have rank {rank} (last axis = channels), got shape {frames.shape}")
    if frames.shape[-1] < 1 or 0 in frames.shape:
        raise DatasetError(f"{name} must be non-empty with at least one channel, got shape {frames.shape}")
    if not np.all(np.isfinite(frames)):
        raise DatasetError(f"{name} contains NaN or infinite values")
    return frames.astype(np.float64).max(axis=-1)


def binarize(frames, threshold: float = 0.0) -> np.ndarray:
    """Foreground mask: pixels whose brightest channel is strictly above `threshold`.

    Args:
      frames: `[..., H, W, C]` float in [-1, 1] (background -1, balls toward +1).
      threshold: value in [-1, 1]; 0 is the half-way level of an anti-aliased edge.

    Returns:
      `[..., H, W] bool`.
    """
    frames = np.asarray(frames)
    if frames.ndim < 3:
        raise DatasetError(f"frames must have shape [..., H, W, C], got shape {frames.shape}")
    return frames.astype(np.float64).max(axis=-1) > threshold


def _detect_stack(gray: np.ndarray, threshold: float, min_area: int, connectivity: int) -> list[FrameBlobs]:
    """Detects blobs in every frame of `gray [N, H, W]` with one labelling call.

    The 3-D structuring element is empty outside the middle plane, so components never connect across
    frames; the first coordinate of each centroid is then exactly the frame index.
    """
    structure2d = _check_connectivity(connectivity)
    if min_area < 1:
        raise ConfigError(f"min_area must be >= 1 pixel, got {min_area!r}")
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = structure2d
    mask = gray > threshold
    labels, num = ndimage.label(mask, structure=structure)
    n_frames = gray.shape[0]
    if num == 0:
        return [FrameBlobs(np.zeros((0,)), np.zeros((0, 2))) for _ in range(n_frames)]
    index = np.arange(1, num + 1)
    areas = ndimage.sum_labels(mask, labels, index).astype(np.float64)
    # Centres: brightness above the background level, weighted over the blob plus a one-pixel ring of
    # background pixels around it (where the dim anti-aliased edge lies), so they are sub-pixel accurate.
    weights = np.clip((gray + 1.0) / 2.0, 0.0, None)
    ring = ndimage.grey_dilation(labels, footprint=np.ones((1, 3, 3), dtype=bool))
    grown = np.where(labels > 0, labels, ring)
    total = ndimage.sum_labels(weights, grown, index)
    centres = np.asarray(ndimage.center_of_mass(weights, grown, index), dtype=np.float64).reshape(num, 3)
    # A blob of pixels exactly at -1 cannot pass a threshold >= -1, but guard a zero weight anyway.
    flat = np.asarray(ndimage.center_of_mass(mask.astype(np.float64), labels, index)).reshape(num, 3)
    centres = np.where((total > 0)[:, None], centres, flat)
    frame_of_blob = np.rint(flat[:, 0]).astype(np.int64)
    keep = areas >= min_area
    # Labels are numbered in raster order, so blobs are sorted by frame: split them with one search
    # instead of scanning every blob for every frame (quadratic on noisy frames with many blobs).
    kept = np.flatnonzero(keep)
    bounds = np.searchsorted(frame_of_blob[kept], np.arange(n_frames + 1))
    result = []
    for f in range(n_frames):
        sel = kept[bounds[f]:bounds[f + 1]]
        # Index coordinates put pixel i at i; the convention here puts its centre at i + 0.5.
        result.append(FrameBlobs(areas=areas[sel], centroids=centres[sel, 1:] + 0.5))
    return result


def detect_blobs(frames, threshold: float = 0.0, min_area: int = 1, connectivity: int = 4) -> list[FrameBlobs]:
    """Finds the balls in each frame by thresholding and connected-component labelling.

    Args:
      frames: `[N, H, W, C]` float32 in [-1, 1]; the brightest channel is thresholded.
      threshold: a pixel is foreground when its value is strictly above this (in [-1, 1]).
      min_area: blobs with fewer pixels are ignored (e.g. 2 drops single-pixel specks).
      connectivity: 4 (edge neighbours) or 8 (also diagonal neighbours) for joining pixels.

    Returns:
      A list of `N` `FrameBlobs` (areas in pixels, centroids `(row, col)` in pixels).

    Raises:
      DatasetError: `frames` is not rank 4 or contains non-finite values.
      ConfigError: bad `min_area` or `connectivity`.
    """
    gray = _as_gray(frames, "frames", 4)
    return _detect_stack(gray, threshold, min_area, connectivity)


def frame_statistics(
    frames, expected_balls: int, threshold: float = 0.0, min_area: int = 1, connectivity: int = 4
) -> dict:
    """Frame-level statistics for evaluating a frames generator against real frames.

    Args:
      frames: `[N, H, W, C]` float32 in [-1, 1].
      expected_balls: number of balls every real frame contains.
      threshold, min_area, connectivity: see `detect_blobs`.

    Returns:
      A dict of plain Python numbers / lists:
        "num_frames": N.
        "fraction_expected_count": fraction of frames with exactly `expected_balls` blobs, in [0, 1].
        "count_mean": mean number of blobs per frame.
        "count_histogram": list `h` with `h[k]` = number of frames showing `k` blobs.
        "blob_area_mean", "blob_area_std": mean and standard deviation of all blob areas (pixels);
          NaN when no blob was found. A generator that draws balls of inconsistent size shows a
          larger spread than real frames.
        "blob_area_mean_expected_frames", "blob_area_std_expected_frames": the same restricted to
          frames with the expected count (so merged touching balls do not inflate the spread).
    """
    if int(expected_balls) < 0:
        raise ConfigError(f"expected_balls must be >= 0, got {expected_balls!r}")
    blobs = detect_blobs(frames, threshold, min_area, connectivity)
    counts = np.array([b.count for b in blobs], dtype=np.int64)
    all_areas = np.concatenate([b.areas for b in blobs])
    good_areas = np.concatenate([b.areas for b in blobs if b.count == expected_balls] + [np.zeros((0,))])

    def _mean_std(a):
        if a.size == 0:
            return float("nan"), float("nan")
        return float(a.mean()), float(a.std())

    area_mean, area_std = _mean_std(all_areas)
    good_mean, good_std = _mean_std(good_areas)
    return {
        "num_frames": int(counts.size),
        "fraction_expected_count": float(np.mean(counts == expected_balls)),
        "count_mean": float(counts.mean()),
        "count_histogram": np.bincount(counts).tolist(),
        "blob_area_mean": area_mean,
        "blob_area_std": area_std,
        "blob_area_mean_expected_frames": good_mean,
        "blob_area_std_expected_frames": good_std,
    }


def track_blobs(frame_blobs: list[FrameBlobs], max_match_distance: float | None = None) -> list[list[int]]:
    """Links blobs of consecutive frames into tracks by minimum-total-distance (Hungarian) matching.

    Between frames t and t+1 the centroids are matched one-to-one with
    `scipy.optimize.linear_sum_assignment` on the Euclidean distance matrix; a pair farther apart than
    `max_match_distance` (if given) is not linked. Unmatched blobs end a track (frame t) or start a new
    one (frame t+1), e.g. when two balls merge into one blob.

    Args:
      frame_blobs: the `T` `FrameBlobs` of one clip, in time order.
      max_match_distance: largest centre displacement (pixels per frame) still treated as the same ball.

    Returns:
      `track_of[t][i]`: the track id of blob `i` in frame `t` (ids are 0, 1, 2, ... in order of birth).
    """
    track_of: list[list[int]] = []
    next_id = 0
    for t, blobs in enumerate(frame_blobs):
        ids = [-1] * blobs.count
        if t > 0 and blobs.count and frame_blobs[t - 1].count:
            prev = frame_blobs[t - 1].centroids
            cost = np.linalg.norm(prev[:, None, :] - blobs.centroids[None, :, :], axis=-1)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if max_match_distance is None or cost[r, c] <= max_match_distance:
                    ids[c] = track_of[t - 1][r]
        for i in range(blobs.count):
            if ids[i] < 0:
                ids[i] = next_id
                next_id += 1
        track_of.append(ids)
    return track_of


def _free_mask(blobs: FrameBlobs, height: int, width: int, wall_margin: float, ball_margin: float) -> np.ndarray:
    """`[n] bool`: blob is farther than radius + wall_margin from every wall and farther than
    r_i + r_j + ball_margin from every other blob's centre."""
    if blobs.count == 0:
        return np.zeros((0,), dtype=bool)
    r = blobs.radii
    rows, cols = blobs.centroids[:, 0], blobs.centroids[:, 1]
    wall_dist = np.minimum.reduce([rows, height - rows, cols, width - cols])
    free = wall_dist > r + wall_margin
    if blobs.count > 1:
        d = np.linalg.norm(blobs.centroids[:, None, :] - blobs.centroids[None, :, :], axis=-1)
        near = d <= r[:, None] + r[None, :] + ball_margin
        np.fill_diagonal(near, False)
        free &= ~near.any(axis=1)
    return free


def tracked_centres(blobs: list[FrameBlobs], height: int, width: int, expected_balls: int, wall_margin: float,
                    ball_margin: float, max_match_distance: float | None = None) -> dict[int, dict]:
    """The blobs of one clip's frames linked over time (`track_blobs`): `{track: {frame: (centre [2] in
    pixels, free)}}`, `free` the *free* test of `clip_physics` (the frame shows exactly `expected_balls` blobs,
    and the blob keeps `radius + wall_margin` from the walls and `r_i + r_j + ball_margin` from other blobs)."""
    track_of = track_blobs(blobs, max_match_distance)
    tracks: dict[int, dict[int, tuple[np.ndarray, bool]]] = {}
    for k, fb in enumerate(blobs):
        free = _free_mask(fb, height, width, wall_margin, ball_margin)
        if fb.count != expected_balls:
            free[:] = False  # a merged, missing or spurious blob makes the frame's centres unreliable
        for j, tid in enumerate(track_of[k]):
            tracks.setdefault(tid, {})[k] = (fb.centroids[j], bool(free[j]))
    return tracks


def clip_physics(
    clips,
    expected_balls: int,
    threshold: float = 0.0,
    min_area: int = 1,
    connectivity: int = 4,
    wall_margin: float = 1.5,
    ball_margin: float = 3.0,
    max_match_distance: float | None = None,
    speed_band: tuple[float, float] | None = None,
    min_flight_speed: float = 0.25,
    per_clip: bool = False,
) -> dict:
    """Clip-level physics statistics: stable ball count, straight free flight, speed.

    Per clip, blobs are detected in every frame (`detect_blobs`) and linked over time (`track_blobs`).
    A tracked centre `p_t` is *free* at time t when frame t shows exactly `expected_balls` blobs (so no
    two balls are merged into one blob), and the blob is farther than `radius + wall_margin` from every
    wall and farther than `r_i + r_j + ball_margin` from every other blob (radius from the blob's
    area). Balls in free flight move in straight lines at constant speed, so their second difference
    `|p_{t+1} - 2 p_t + p_{t-1}|` is ~0 (a few hundredths of a pixel from anti-aliasing); a ball that
    jumps, wobbles or changes speed gives a large value. A triple counts as *in flight* only when the
    ball moves at least `min_flight_speed` in one of its two steps: a ball that does not move is not
    flying, so a frozen clip has no free-flight triples (second difference NaN, which fails every check)
    instead of a perfect 0, while a stutter (steps 0 and 2v) or a wobble in place (steps +1, −1) still
    counts and shows its large second difference.

    Args:
      clips: `[B, T, H, W, C]` float32 in [-1, 1].
      expected_balls: number of balls in every real clip.
      threshold, min_area, connectivity: see `detect_blobs`.
      wall_margin: extra pixels beyond the radius that a ball must keep from the walls to count as free.
        Set it >= the dataset's largest speed (pixels/frame): a ball closer than `r + speed` at frame t
        can bounce before t+1 and still look free at both frames. The default suits 30/32-pixel data
        (max speed 1.5); use 3 for 64-pixel data.
      ball_margin: extra pixels beyond `r_i + r_j` between two centres for both to count as free. Set it
        >= twice the largest speed (the largest approach speed of two balls); default 3.0.
      max_match_distance: if set, matches farther apart than this (pixels/frame) break the track.
      speed_band: `(low, high)` pixels/frame, the band of plausible speeds (use the real clips'
        `speed_band`, their 5th and 95th percentile of free-step speeds); None = this set's own band.
      min_flight_speed: pixels/frame (>= 0) a ball must move in one step of a triple for the triple to
        count in the second difference; default 0.25, half the slowest real speed at 32 pixels
        (size / 64); anti-aliasing moves a still ball's centroid by a few hundredths.
      per_clip: also return "per_clip" (below).

    Returns:
      A dict of plain Python numbers:
        "num_clips": B.
        "fraction_expected_count_frames": fraction of all frames with exactly `expected_balls` blobs.
        "fraction_expected_count_first_frame": fraction of clips whose FIRST frame has exactly
          `expected_balls` blobs (a generator's start, which its dynamics may not have settled yet; real
          clips start mid-flight and score like their other frames).
        "fraction_stable_count": fraction of clips whose blob count never changes over time.
        "fraction_always_expected_count": fraction of clips with the expected count in every frame.
        "mean_count_changes": mean over clips of the number of t with count(t) != count(t-1).
        "free_flight_second_difference": mean of `|p_{t+1} - 2 p_t + p_{t-1}|` (pixels/frame^2) over
          all tracked triples that are free at t-1, t and t+1 and in flight (NaN when there are none).
        "free_flight_second_difference_max": the largest such value (NaN when none).
        "mean_speed": mean `|p_{t+1} - p_t|` (pixels/frame) over tracked steps free at both ends
          (NaN when none); "speed_std": the spread of those step lengths.
        "num_free_triples", "num_free_steps": how many terms the means above average over.
        "speed_band": `[5th, 95th]` percentile of this set's free-step speeds (NaN when none).
        "fraction_steps_in_speed_band": free steps whose speed lies in `speed_band`, divided by ALL
          potential steps `B · (T − 1) · expected_balls`. A frozen clip (speed 0), a stuttering one
          (alternating 0 and 2×), a ball that vanishes or is lost by the tracker all lower it, so
          unlike the second difference and the binarised MSE it cannot be passed by not moving. Real
          clips score below 1 (steps near walls or other balls are not free); compare with the real row.
        "per_clip" (only with `per_clip=True`): `{column: float64 [B]}`, each of "fraction_expected_count_frames",
          "mean_count_changes", "free_flight_second_difference", "mean_speed" and
          "fraction_steps_in_speed_band" computed on each clip alone (NaN where a clip has no free triple or
          step), for distribution comparisons (`tfvidgan.metrics.targets.distribution_distance`).
    """
    if int(expected_balls) < 0:
        raise ConfigError(f"expected_balls must be >= 0, got {expected_balls!r}")
    if wall_margin < 0 or ball_margin < 0:
        raise ConfigError(f"wall_margin and ball_margin must be >= 0, got {wall_margin!r}, {ball_margin!r}")
    if not min_flight_speed >= 0:
        raise ConfigError(f"min_flight_speed must be >= 0, got {min_flight_speed!r}")
    gray = _as_gray(clips, "clips", 5)
    b, t, h, w = gray.shape
    flat_blobs = _detect_stack(gray.reshape(b * t, h, w), threshold, min_area, connectivity)

    counts = np.array([fb.count for fb in flat_blobs], dtype=np.int64).reshape(b, t)
    changes = np.sum(counts[:, 1:] != counts[:, :-1], axis=1)
    second_diffs: list[float] = []
    step_lengths: list[float] = []
    triple_clip: list[int] = []  # the clip of each second difference / step length
    step_clip: list[int] = []
    for i in range(b):
        blobs = flat_blobs[i * t : (i + 1) * t]
        tracks = tracked_centres(blobs, h, w, expected_balls, wall_margin, ball_margin, max_match_distance)
        for points in tracks.values():
            for k, (p, free) in points.items():
                nxt = points.get(k + 1)
                if free and nxt is not None and nxt[1]:
                    step_lengths.append(float(np.linalg.norm(nxt[0] - p)))
                    step_clip.append(i)
                prv = points.get(k - 1)
                if free and nxt is not None and prv is not None and nxt[1] and prv[1] and max(
                        np.linalg.norm(nxt[0] - p), np.linalg.norm(p - prv[0])) >= min_flight_speed:
                    second_diffs.append(float(np.linalg.norm(nxt[0] - 2.0 * p + prv[0])))
                    triple_clip.append(i)

    def _mean(values):
        return float(np.mean(values)) if values else float("nan")

    own_band = ([float(np.percentile(step_lengths, 5)), float(np.percentile(step_lengths, 95))]
                if step_lengths else [float("nan"), float("nan")])
    low, high = speed_band if speed_band is not None else own_band
    speeds = np.asarray(step_lengths, dtype=np.float64)
    in_band = int(np.sum((speeds >= low) & (speeds <= high))) if speeds.size and np.isfinite(low) else 0
    potential = b * (t - 1) * max(int(expected_balls), 1)

    stats = {
        "num_clips": int(b),
        "fraction_expected_count_frames": float(np.mean(counts == expected_balls)),
        "fraction_expected_count_first_frame": float(np.mean(counts[:, 0] == expected_balls)),
        "fraction_stable_count": float(np.mean(changes == 0)),
        "fraction_always_expected_count": float(np.mean(np.all(counts == expected_balls, axis=1))),
        "mean_count_changes": float(np.mean(changes)),
        "free_flight_second_difference": _mean(second_diffs),
        "free_flight_second_difference_max": float(np.max(second_diffs)) if second_diffs else float("nan"),
        "mean_speed": _mean(step_lengths),
        "speed_std": float(np.std(step_lengths)) if step_lengths else float("nan"),
        "num_free_triples": len(second_diffs),
        "num_free_steps": len(step_lengths),
        "speed_band": own_band,
        "fraction_steps_in_speed_band": in_band / potential if potential else float("nan"),
    }
    if per_clip:
        steps_of = np.asarray(step_clip, dtype=np.int64)
        in_band_per_clip = (np.bincount(steps_of[(speeds >= low) & (speeds <= high)], minlength=b)
                            if speeds.size and np.isfinite(low) else np.zeros(b))
        stats["per_clip"] = {
            "fraction_expected_count_frames": np.mean(counts == expected_balls, axis=1).astype(np.float64),
            "mean_count_changes": changes.astype(np.float64),
            "free_flight_second_difference": _per_clip_mean(second_diffs, triple_clip, b),
            "mean_speed": _per_clip_mean(step_lengths, step_clip, b),
            "fraction_steps_in_speed_band": (in_band_per_clip / (potential / b) if potential
                                             else np.full(b, np.nan)),
        }
    return stats


def _per_clip_mean(values: list, clip_of: list, num_clips: int) -> np.ndarray:
    """float64 `[num_clips]`: the mean of `values` whose clip index (`clip_of`) is each clip; NaN for none."""
    clip_of = np.asarray(clip_of, dtype=np.int64)
    totals = np.bincount(clip_of, weights=np.asarray(values, dtype=np.float64), minlength=num_clips)
    counts = np.bincount(clip_of, minlength=num_clips)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def consecutive_binarized_mse(clips, threshold: float = 0.0) -> float:
    """The frameGAN authors' temporal-smoothness metric: MSE between consecutive binarised frames.

    Each frame is binarised to {0, 1} (brightest channel > `threshold`); per clip the mean over time steps
    of the mean squared difference (i.e. the fraction of pixels that flip) between frames t and t+1 is
    taken, then the mean over clips. Static clips give 0; large values mean flicker or jumps. Compare
    against the same number on real clips (moving balls give a small non-zero value).

    Args:
      clips: `[B, T, H, W, C]` float in [-1, 1], T >= 2.
      threshold: binarisation level in [-1, 1].

    Returns:
      A Python float in [0, 1].
    """
    return float(consecutive_binarized_mse_per_clip(clips, threshold).mean())


def consecutive_binarized_mse_per_clip(clips, threshold: float = 0.0) -> np.ndarray:
    """`consecutive_binarized_mse` of each clip alone: float64 `[B]` in [0, 1] (same arguments)."""
    clips = np.asarray(clips)
    if clips.ndim != 5 or clips.shape[1] < 2 or clips.shape[0] < 1:
        raise DatasetError(f"clips must have shape [B, T>=2, H, W, C], got shape {clips.shape}")
    binary = binarize(clips, threshold).astype(np.float64)  # [B, T, H, W]
    return np.mean((binary[:, 1:] - binary[:, :-1]) ** 2, axis=(1, 2, 3))


def motion_energy_cv(clips) -> float:
    """Steadiness of motion: the mean over clips of `motion_energy_cv_per_clip`, over clips that move.

    Returns:
      A Python float >= 0 (NaN when no clip moves: a static or collapsed set cannot pass by standing still).
      Real bouncing-balls clips score about 0.1: balls keep their speed between collisions, and a wall
      bounce keeps the frames changing by the same amount; stalls, spurts and flicker raise it.
    """
    values = motion_energy_cv_per_clip(clips)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def motion_energy_cv_per_clip(clips) -> np.ndarray:
    """Coefficient of variation over time of each clip's motion energy: float64 `[B]`.

    With `e_t = mean over pixels and channels of (x_{t+1} − x_t)²` (t < T − 1), a clip's value is
    `std_t(e) / mean_t(e)`; NaN for a clip whose frames never change (mean 0). The training regulariser
    `tfvidgan.training.video_task.motion_energy_variation` is its square (with a small epsilon).

    Args:
      clips: `[B, T, H, W, C]` float in [-1, 1], T >= 3.
    """
    clips = np.asarray(clips, dtype=np.float64)
    if clips.ndim != 5 or clips.shape[1] < 3 or clips.shape[0] < 1:
        raise DatasetError(f"clips must have shape [B, T>=3, H, W, C], got shape {clips.shape}")
    energy = np.mean((clips[:, 1:] - clips[:, :-1]) ** 2, axis=(2, 3, 4))  # [B, T - 1]
    mean = energy.mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mean > 0, energy.std(axis=1) / np.where(mean > 0, mean, 1.0), np.nan)
