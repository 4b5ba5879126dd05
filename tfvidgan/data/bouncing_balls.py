"""Bouncing balls: physics, anti-aliased rendering (vectorised with numpy over scenes) and dataset writing.

Physics (units: pixels and frames).
* The box is the frame, ``[0, size] × [0, size]`` in pixel coordinates ``(row, col)`` (pixel
  ``(i, j)`` is centred at ``(i + 0.5, j + 0.5)``). Ball k has centre ``p_k``, velocity ``v_k``
  (pixels per frame), radius ``r_k`` and mass ``m_k ∝ r_k²`` (mass proportional to area; with the
  single ``radius`` of `BouncingBallsConfig` all masses are equal).
* Balls move in straight lines at constant velocity. Walls reflect the normal velocity component
  (elastic: speed unchanged). Two balls that touch exchange the elastic impulse along the line of
  centres, which conserves total momentum and kinetic energy exactly (up to float rounding).
* Event-driven integration: every scene advances from event to event (the earliest wall contact
  or ball–ball contact, found analytically from the straight-line motion), so contacts happen at
  their exact times: fast balls cannot tunnel through each other or a wall, and balls never
  overlap. Each frame interval is cut into ``substeps`` slices; slices only bound the work of one
  vectorised pass (the trajectory is the same for any number, up to float rounding).
* Initial state: centres uniform in ``[r, size − r]²``, rejection-sampled so that no two balls
  overlap; speeds uniform in ``[min_speed, max_speed]`` with a uniform direction. Each scene draws
  from its own ``np.random.default_rng([seed, scene_index])``, so a scene depends only on
  ``(config, scene_index)`` — never on how scenes are batched, sharded or spread over processes.

Rendering: pixel coverage of a ball is ``clip(r + 0.5 − |pixel_centre − centre|, 0, 1)`` (a one
pixel wide linear edge), balls add up, the sum is clipped to 1; grayscale frames are that
coverage (white balls on black), RGB frames colour ball k with ``PALETTE[k % len(PALETTE)]``.
Stored as uint8 ``round(255 · value)``.

Dataset writing (`generate_dataset`): sharded TFRecords + ``metadata.json`` (format:
`tfvidgan.data.format`). Every scene depends only on ``(config, scene_index)`` (its own RNG), so
the records are byte-identical for a seed whatever the number of shards and workers. The command
line is ``python -m data_tools.make_bouncing_balls``::

    from tfvidgan.data.bouncing_balls import BouncingBallsConfig, generate_dataset
    metadata = generate_dataset(BouncingBallsConfig(num_scenes=2000, size=32), "data/bb32")
"""
from __future__ import annotations

import dataclasses
import glob
import itertools
import math
import multiprocessing
import os

import numpy as np

from tfvidgan.data import swap
from tfvidgan.data.format import (
    FORMAT_VERSION,
    FRAME_ENCODING,
    METADATA_FILENAME,
    SHARD_GLOB,
    encode_pngs,
    encode_scene_example,
    shard_name,
)
from tfvidgan.data.metadata import DatasetMetadata, ShardInfo, write_metadata
from tfvidgan.data.progress import ProgressBar
from tfvidgan.errors import ConfigError, check_whole_number, flag_error

__all__ = [
    "SUPPORTED_SIZES",
    "PALETTE",
    "BouncingBallsConfig",
    "max_radius",
    "SceneBatch",
    "initial_state",
    "simulate",
    "render",
    "generate_scenes",
    "render_scene_range",
    "generate_dataset",
]

SUPPORTED_SIZES = (30, 32, 64)
PALETTE = ((1.0, 0.3, 0.3), (0.3, 1.0, 0.3), (0.35, 0.5, 1.0), (1.0, 1.0, 0.3), (1.0, 0.35, 1.0),
           (0.3, 1.0, 1.0), (1.0, 0.65, 0.2), (0.8, 0.8, 0.8))
_MAX_FILL = 0.25          # balls may cover at most this fraction of the frame
_MAX_PLACEMENT_TRIES = 10_000
_MAX_EVENTS_PER_SLICE = 10_000


def max_radius(size: int, num_balls: int) -> float:
    """Largest radius accepted for ``num_balls`` balls in a ``size × size`` frame.

    The balls' total area may be at most a quarter of the frame, and one ball at most a quarter of
    its side in radius, which keeps random non-overlapping placement quick.
    """
    return min(math.sqrt(_MAX_FILL * size * size / (math.pi * num_balls)), size / 4.0)


@dataclasses.dataclass(frozen=True)
class BouncingBallsConfig:
    """What to generate. Field names equal the flags of ``python -m data_tools.make_bouncing_balls``.

    Attributes:
      num_scenes: scenes to generate (≥ 1).
      num_frames: T, frames per scene (≥ 2).
      num_balls: N, balls per scene (1…16).
      size: frame side H = W in pixels: 30, 32 or 64.
      radius: ball radius in pixels; None → ``size / 10``. At most `max_radius(size, num_balls)`.
      channels: 1 (grayscale) or 3 (RGB, one colour per ball).
      shards: number of TFRecord shards (1 … num_scenes).
      seed: base seed (≥ 0); scene i uses ``np.random.default_rng([seed, i])``.
      min_speed, max_speed: ball speed range in pixels per frame; None → ``size/64`` and
        ``3·size/64`` (0.5 and 1.5 px/frame at 32×32).
      substeps: physics slices per frame; None → enough that no ball moves more than r/4 per slice
        (a ball's speed can never exceed ``max_speed·sqrt(N)`` with equal masses). Contacts are
        resolved at their exact times inside a slice, so this does not change the trajectory.
    Unset (None) fields are resolved on construction, so a built config is complete.
    """

    num_scenes: int = 50_000
    num_frames: int = 40
    num_balls: int = 3
    size: int = 32
    radius: float | None = None
    channels: int = 1
    shards: int = 8
    seed: int = 0
    min_speed: float | None = None
    max_speed: float | None = None
    substeps: int | None = None

    def __post_init__(self):
        def whole(field, minimum, maximum=None):
            check_whole_number(field, getattr(self, field), minimum, maximum)

        whole("num_scenes", 1)
        whole("num_frames", 2)
        whole("num_balls", 1, 16)
        whole("seed", 0)
        whole("shards", 1)
        if self.size not in SUPPORTED_SIZES:
            raise flag_error("size", self.size, f"must be one of {SUPPORTED_SIZES}")
        if self.channels not in (1, 3):
            raise flag_error("channels", self.channels, "must be 1 (grayscale) or 3 (RGB)")
        if self.shards > self.num_scenes:
            raise flag_error("shards", self.shards, f"more shards than scenes (--num_scenes={self.num_scenes})")
        radius = self.size / 10.0 if self.radius is None else float(self.radius)
        limit = max_radius(self.size, self.num_balls)
        if not (radius >= 1.0):
            raise flag_error("radius", self.radius, "must be at least 1 pixel")
        if radius > limit + 1e-9:
            raise flag_error("radius", self.radius,
                             f"too large to place {self.num_balls} non-overlapping balls in a "
                             f"{self.size}×{self.size} frame (balls may cover at most {_MAX_FILL:.0%} of it): "
                             f"use --radius ≤ {math.floor(limit * 100) / 100} or fewer --num_balls")
        min_speed = self.size / 64.0 if self.min_speed is None else float(self.min_speed)
        max_speed = 3.0 * self.size / 64.0 if self.max_speed is None else float(self.max_speed)
        if not (min_speed >= 0.0):
            raise flag_error("min_speed", self.min_speed, "must be ≥ 0")
        if not (max_speed > 0.0 and max_speed >= min_speed):
            raise flag_error("max_speed", self.max_speed, f"must be > 0 and ≥ --min_speed={min_speed}")
        if max_speed > self.size / 4.0:
            raise flag_error("max_speed", self.max_speed, f"must be ≤ size/4 = {self.size / 4} pixels per frame")
        bound = max_speed * math.sqrt(self.num_balls)  # equal masses: |v_k|² ≤ Σ|v|² ≤ N·max_speed²
        substeps = max(1, math.ceil(4.0 * bound / radius)) if self.substeps is None else self.substeps
        if isinstance(substeps, bool) or not isinstance(substeps, (int, np.integer)) or not 1 <= substeps <= 1000:
            raise flag_error("substeps", self.substeps, "must be an integer in [1, 1000]")
        object.__setattr__(self, "radius", radius)
        object.__setattr__(self, "min_speed", min_speed)
        object.__setattr__(self, "max_speed", max_speed)
        object.__setattr__(self, "substeps", int(substeps))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class SceneBatch:
    """Scenes ``start … start + S − 1``.

    Attributes:
      frames: ``[S, T, H, W, C] uint8``.
      positions: ``[S, T, N, 2] float32``, ball centres, pixel ``(row, col)``.
      velocities: ``[S, T, N, 2] float32``, pixels per frame, at each frame.
      radii: ``[S, N] float32``.
      start: index of the first scene.
    """

    frames: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray
    radii: np.ndarray
    start: int


def initial_state(config: BouncingBallsConfig, scene_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-overlapping start of scene ``scene_index``: ``(positions [N,2], velocities [N,2], radii [N])``.

    Positions are pixel ``(row, col)``, velocities pixels per frame, all float64.
    """
    rng = np.random.default_rng([config.seed, scene_index])
    n, size = config.num_balls, float(config.size)
    radii = np.full(n, config.radius, np.float64)
    positions = np.empty((n, 2), np.float64)
    placed, tries = 0, 0
    while placed < n:
        tries += 1
        if tries > _MAX_PLACEMENT_TRIES:  # unreachable within max_radius; kept as a guard
            raise ConfigError(f"--radius={config.radius}: could not place {n} balls in scene {scene_index}")
        candidate = rng.uniform(radii[placed], size - radii[placed], size=2)
        gaps = np.sqrt(((positions[:placed] - candidate) ** 2).sum(-1)) - (radii[:placed] + radii[placed])
        if np.all(gaps > 0.0):
            positions[placed] = candidate
            placed += 1
    speeds = rng.uniform(config.min_speed, config.max_speed, size=n)
    angles = rng.uniform(0.0, 2.0 * np.pi, size=n)
    velocities = np.stack([speeds * np.sin(angles), speeds * np.cos(angles)], axis=-1)
    return positions, velocities, radii


def _next_events(pos, vel, radii, first, second, size):
    """Time until each scene's next event from now, and which event it is.

    Events are numbered: ``2k + axis`` is ball k reaching a wall along ``axis`` (0 = row, 1 = col),
    ``2N + p`` is pair p (balls ``first[p]``, ``second[p]``) touching. Returns
    ``(time [S], event [S])``; time is inf when nothing happens.
    """
    s, n, _ = pos.shape
    low = radii[..., None]
    high = size - low
    with np.errstate(divide="ignore", invalid="ignore"):
        wall = np.where(vel > 0.0, (high - pos) / vel, np.where(vel < 0.0, (low - pos) / vel, np.inf))
    wall = np.maximum(wall, 0.0).reshape(s, 2 * n)
    if first.size == 0:
        return wall.min(-1), wall.argmin(-1)
    d = pos[:, first] - pos[:, second]                                   # [S, P, 2]
    v = vel[:, first] - vel[:, second]
    reach = radii[:, first] + radii[:, second]
    a = (v * v).sum(-1)
    dv = (d * v).sum(-1)
    c = (d * d).sum(-1) - reach * reach
    disc = dv * dv - a * c
    approaching = (dv < 0.0) & (disc >= 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        meet = np.where(approaching, np.maximum((-dv - np.sqrt(np.maximum(disc, 0.0))) / a, 0.0), np.inf)
    times = np.concatenate([wall, meet], axis=-1)
    return times.min(-1), times.argmin(-1)


def _apply_events(pos, vel, radii, masses, first, second, size, rows, events) -> None:
    """Applies event ``events[i]`` (see `_next_events`) in scene ``rows[i]`` (in place)."""
    n = pos.shape[1]
    is_wall = events < 2 * n
    if is_wall.any():
        r, e = rows[is_wall], events[is_wall]
        k, axis = e // 2, e % 2
        going_up = vel[r, k, axis] > 0.0
        # Land exactly on the wall and turn the normal velocity: speed is unchanged.
        pos[r, k, axis] = np.where(going_up, size - radii[r, k], radii[r, k])
        vel[r, k, axis] = -vel[r, k, axis]
    if (~is_wall).any():
        r, p = rows[~is_wall], events[~is_wall] - 2 * n
        i, j = first[p], second[p]
        normal = pos[r, i] - pos[r, j]
        normal /= np.sqrt((normal * normal).sum(-1, keepdims=True))
        mi, mj = masses[r, i][:, None], masses[r, j][:, None]
        approach = ((vel[r, i] - vel[r, j]) * normal).sum(-1, keepdims=True)
        # Elastic impulse along the line of centres: conserves momentum and kinetic energy.
        impulse = np.where(approach < 0.0, 2.0 * mi * mj / (mi + mj) * approach, 0.0) * normal
        vel[r, i] = vel[r, i] - impulse / mi
        vel[r, j] = vel[r, j] + impulse / mj


def _advance(pos, vel, radii, masses, first, second, size, duration) -> None:
    """Moves every scene forward by ``duration``, resolving all contacts at their exact times."""
    remaining = np.full(pos.shape[0], duration)
    rows = np.arange(pos.shape[0])
    for _ in range(_MAX_EVENTS_PER_SLICE):
        p, v, rad = pos[rows], vel[rows], radii[rows]
        when, event = _next_events(p, v, rad, first, second, size)
        happens = when < remaining[rows]
        step = np.where(happens, when, remaining[rows])
        pos[rows] = p + v * step[:, None, None]
        remaining[rows] -= step
        rows, event = rows[happens], event[happens]
        if rows.size == 0:
            return
        _apply_events(pos, vel, radii, masses, first, second, size, rows, event)
    raise RuntimeError(f"more than {_MAX_EVENTS_PER_SLICE} contacts in one physics slice; balls jammed?")


def simulate(positions: np.ndarray, velocities: np.ndarray, radii: np.ndarray, *, size: float,
             num_frames: int, substeps: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Runs the physics for S scenes at once (event-driven: exact contact times).

    Each frame interval is cut into ``substeps`` slices; within a slice every scene advances from
    event to event (the earliest wall or ball contact, found analytically), so no contact is
    missed at any speed and balls never overlap. The slices only bound how many events one
    vectorised pass handles; the trajectory does not depend on them (up to float rounding).

    Args:
      positions: ``[S, N, 2]`` start centres, pixel ``(row, col)``, non-overlapping, inside the box.
      velocities: ``[S, N, 2]`` pixels per frame.
      radii: ``[S, N]`` pixels; masses are ``radii²``.
      size: box side in pixels.
      num_frames: T; frame 0 is the start state.
      substeps: slices per frame (≥ 1).
    Returns:
      ``(positions [S, T, N, 2], velocities [S, T, N, 2])`` float64 at each frame.
    """
    pos = np.array(positions, np.float64)
    vel = np.array(velocities, np.float64)
    radii = np.asarray(radii, np.float64)
    masses = radii * radii
    pairs = list(itertools.combinations(range(pos.shape[1]), 2))
    first = np.array([i for i, _ in pairs], np.int64)
    second = np.array([j for _, j in pairs], np.int64)
    out_pos = np.empty((pos.shape[0], num_frames) + pos.shape[1:], np.float64)
    out_vel = np.empty_like(out_pos)
    for frame in range(num_frames):
        out_pos[:, frame], out_vel[:, frame] = pos, vel
        if frame == num_frames - 1:
            break
        for _ in range(substeps):
            _advance(pos, vel, radii, masses, first, second, float(size), 1.0 / substeps)
    return out_pos, out_vel


def render(positions: np.ndarray, radii: np.ndarray, *, size: int, channels: int = 1,
           max_frames_per_block: int = 512) -> np.ndarray:
    """Draws anti-aliased balls.

    Args:
      positions: ``[S, T, N, 2]`` centres, pixel ``(row, col)``.
      radii: ``[S, N]`` pixels.
      size: frame side H = W.
      channels: 1 (white balls) or 3 (ball k coloured ``PALETTE[k % 8]``).
    Returns:
      ``[S, T, size, size, channels] uint8`` in [0, 255].
    """
    positions = np.asarray(positions, np.float64)
    s, t, n, _ = positions.shape
    centres = positions.reshape(s * t, n, 2)
    frame_radii = np.repeat(np.asarray(radii, np.float64), t, axis=0)  # [S*T, N]
    r_max = float(frame_radii.max())
    window = int(math.ceil(2.0 * r_max + 3.0))
    pad = window
    side = size + 2 * pad
    offsets = np.arange(window)
    colours = np.asarray([PALETTE[k % len(PALETTE)] for k in range(n)], np.float64)  # [N, 3]
    out = np.empty((s * t, size, size, channels), np.uint8)
    for start in range(0, s * t, max_frames_per_block):
        c = centres[start:start + max_frames_per_block]            # [F, N, 2]
        r = frame_radii[start:start + max_frames_per_block]        # [F, N]
        f = c.shape[0]
        corner = np.floor(c - r_max - 1.0).astype(np.int64)          # [F, N, 2]
        rows = corner[..., 0, None] + offsets                       # [F, N, w]
        cols = corner[..., 1, None] + offsets
        dr2 = (rows + 0.5 - c[..., 0, None]) ** 2
        dc2 = (cols + 0.5 - c[..., 1, None]) ** 2
        dist = np.sqrt(dr2[..., :, None] + dc2[..., None, :])        # [F, N, w, w]
        cover = np.clip(r[..., None, None] + 0.5 - dist, 0.0, 1.0)
        flat = (np.arange(f)[:, None, None, None] * (side * side)
                + (rows[..., :, None] + pad) * side + (cols[..., None, :] + pad))
        for ch in range(channels):
            weights = cover if channels == 1 else cover * colours[None, :, ch, None, None]
            canvas = np.bincount(flat.ravel(), weights=weights.ravel(), minlength=f * side * side)
            canvas = canvas.reshape(f, side, side)[:, pad:pad + size, pad:pad + size]
            out[start:start + f, :, :, ch] = np.round(np.clip(canvas, 0.0, 1.0) * 255.0).astype(np.uint8)
    return out.reshape(s, t, size, size, channels)


def generate_scenes(config: BouncingBallsConfig, start: int, stop: int) -> SceneBatch:
    """Simulates and renders scenes ``start … stop − 1`` (each from its own seeded RNG)."""
    states = [initial_state(config, i) for i in range(start, stop)]
    pos0 = np.stack([s[0] for s in states])
    vel0 = np.stack([s[1] for s in states])
    radii = np.stack([s[2] for s in states])
    positions, velocities = simulate(pos0, vel0, radii, size=float(config.size), num_frames=config.num_frames,
                                     substeps=config.substeps)
    frames = render(positions, radii, size=config.size, channels=config.channels)
    return SceneBatch(frames=frames, positions=positions.astype(np.float32),
                      velocities=velocities.astype(np.float32), radii=radii.astype(np.float32), start=start)


# ----------------------------------------------------------------------------------------------
# Dataset writing.

_SCENES_PER_TASK = {30: 128, 32: 128, 64: 48}
_MIN_SCENES_PER_WORKER = 2000


def render_scene_range(config: BouncingBallsConfig, start: int, stop: int) -> tuple[list[list[bytes]], SceneBatch]:
    """Scenes ``start … stop − 1``: their frames as PNGs (``[S][T]`` bytes, `format.encode_pngs`) and the batch.

    Needs numpy and zlib only (runs in the generator's worker processes, which never import TensorFlow).
    """
    batch = generate_scenes(config, start, stop)
    return [encode_pngs(batch.frames[k]) for k in range(stop - start)], batch


def _render_task(task: tuple[dict, int, int, int]):
    config_fields, shard, start, stop = task
    pngs, batch = render_scene_range(BouncingBallsConfig(**config_fields), start, stop)
    return shard, start, stop, pngs, batch.positions, batch.radii


def _dataset_files(directory: str) -> list[str]:
    """Base names of the dataset files (metadata + shards) present in ``directory``."""
    names = [os.path.basename(p) for p in glob.glob(os.path.join(directory, SHARD_GLOB))]
    if os.path.exists(os.path.join(directory, METADATA_FILENAME)):
        names.append(METADATA_FILENAME)
    return sorted(names)


def _check_output_dir(output_dir: str, overwrite: bool) -> None:
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ConfigError(f"--output_dir={output_dir}: exists and is not a directory")
    if os.path.isdir(output_dir):
        existing = _dataset_files(output_dir)
        if existing and not overwrite:
            raise ConfigError(f"--output_dir={output_dir}: already holds a dataset ({len(existing)} files, e.g. "
                              f"{existing[0]}); pass --overwrite to replace it")


def _plan(config: BouncingBallsConfig) -> list[tuple[int, int, int]]:
    """``(shard, start, stop)`` tasks; shard k holds scenes ``[k·n // S, (k+1)·n // S)``."""
    per_task = _SCENES_PER_TASK.get(config.size, 64)
    tasks = []
    for shard in range(config.shards):
        lo = shard * config.num_scenes // config.shards
        hi = (shard + 1) * config.num_scenes // config.shards
        tasks += [(shard, s, min(s + per_task, hi)) for s in range(lo, hi, per_task)]
    return tasks


def generate_dataset(config: BouncingBallsConfig, output_dir: str, *, overwrite: bool = False,
                     workers: int | None = None, show_progress: bool = True) -> DatasetMetadata:
    """Generates ``config.num_scenes`` scenes into ``output_dir`` (shards + ``metadata.json``).

    Args:
      config: what to generate (validated on construction).
      output_dir: created if needed; must not hold a dataset unless ``overwrite``.
      overwrite: replace an existing dataset. The new one is written beside it and swapped in at the end
        (`tfvidgan.data.swap`): a failure before the swap keeps the old data, a crash during it is
        finished by the next run; other files in ``output_dir`` are kept.
      workers: processes to use; 1 → in this process; None → one per CPU but at most one per 2000
        scenes. Worker processes are started with "spawn" and so import the caller's ``__main__``
        module (but never TensorFlow on their own).
      show_progress: draw a progress bar on stderr.
    Returns:
      The written metadata (``directory`` = ``output_dir``).
    Raises:
      ConfigError: bad ``workers`` or ``output_dir`` (checked before any work).
    """
    if not isinstance(config, BouncingBallsConfig):
        raise ConfigError(f"config must be a BouncingBallsConfig, got {type(config).__name__}")
    if workers is None:  # a process per CPU, but small jobs stay in this process (spawning costs seconds)
        workers = max(1, min(os.cpu_count() or 1, config.num_scenes // _MIN_SCENES_PER_WORKER))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers={workers}: must be a positive integer")
    output_dir = os.path.abspath(output_dir)
    if os.path.isdir(os.path.dirname(output_dir)):
        swap.recover(output_dir)  # finish a swap a crash interrupted; remove stale scratch
    _check_output_dir(output_dir, overwrite)
    tasks = _plan(config)
    fields = config.to_dict()
    payloads = [(fields, shard, start, stop) for shard, start, stop in tasks]
    workers = min(workers, len(tasks))
    tmp_dir = swap.scratch_dir(output_dir)
    progress = ProgressBar(config.num_scenes, label="bouncing balls", unit="scenes", enabled=show_progress)
    shard_count = [0] * config.shards
    shape = (config.num_frames, config.size, config.size, config.channels)
    writer, writer_shard = None, -1
    try:
        import tensorflow as tf  # records are built here, in this process; workers only simulate and draw

        if workers == 1:
            results = map(_render_task, payloads)
            pool = None
        else:
            pool = multiprocessing.get_context("spawn").Pool(workers)
            results = pool.imap(_render_task, payloads)
        try:
            for shard, start, stop, pngs, positions, radii in results:
                if shard != writer_shard:
                    if writer is not None:
                        writer.close()
                    writer = tf.io.TFRecordWriter(os.path.join(tmp_dir, shard_name(shard, config.shards)))
                    writer_shard = shard
                for k in range(stop - start):
                    writer.write(encode_scene_example(pngs[k], shape, positions[k], radii[k], start + k))
                shard_count[shard] += stop - start
                progress.update(stop - start)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
        if writer is not None:
            writer.close()
            writer = None
        progress.close()
        shards = tuple(ShardInfo(file=shard_name(k, config.shards), num_records=shard_count[k],
                                 first_scene=k * config.num_scenes // config.shards,
                                 num_bytes=os.path.getsize(os.path.join(tmp_dir, shard_name(k, config.shards))))
                       for k in range(config.shards))
        metadata = DatasetMetadata(
            format_version=FORMAT_VERSION, num_scenes=config.num_scenes, num_frames=config.num_frames,
            size=config.size, channels=config.channels, num_balls=config.num_balls, radius=config.radius,
            seed=config.seed, shards=shards, frame_encoding=FRAME_ENCODING,
            generator={
                "name": "tfvidgan.data.bouncing_balls",
                "config": fields,
                "physics": "event-driven elastic collisions; mass proportional to area (r^2), equal radii "
                           "give equal masses; walls at 0 and size",
                "rendering": "coverage clip(r + 0.5 - distance, 0, 1) per ball, summed, clipped; uint8",
                "positions": "pixel (row, col); pixel (i, j) is centred at (i + 0.5, j + 0.5)",
            })
        write_metadata(metadata, tmp_dir)
    except BaseException:
        if writer is not None:
            writer.close()
        swap.release(tmp_dir)
        raise
    swap.swap_in(tmp_dir, output_dir, _dataset_files(output_dir) if os.path.isdir(output_dir) else [],
                 METADATA_FILENAME)
    return dataclasses.replace(metadata, directory=output_dir)
