r"""Generates a bouncing-balls dataset: sharded TFRecords + ``metadata.json``.

    python -m data_tools.make_bouncing_balls --output_dir=data/bb32 --num_scenes=50000 \
        --num_frames=40 --num_balls=3 --size=32 --shards=8 --seed=0 [--radius=3.2] [--channels=1] \
        [--workers=N] [--overwrite]

Every scene depends only on ``(config, scene_index)`` (its own RNG), so the records are
byte-identical for a seed whatever ``--shards`` and ``--workers`` are. The work is spread over
``--workers`` processes (default: one per CPU); a progress bar goes to stderr and a JSON summary to
stdout. An output directory that already holds a dataset is refused unless ``--overwrite``; the
new dataset is written into a temporary directory beside it and swapped in only when complete,
so a failure midway never loses the old data.

Library use (TensorFlow is not imported)::

    from data_tools.make_bouncing_balls import BouncingBallsConfig, generate_dataset
    metadata = generate_dataset(BouncingBallsConfig(num_scenes=2000, size=32), "data/bb32")
"""
from __future__ import annotations

import dataclasses
import glob
import json
import multiprocessing
import os
import secrets
import shutil
import sys
import time

from data_tools._progress import ProgressBar
from data_tools.bouncing_balls import BouncingBallsConfig, generate_scenes
from tfvidgan.data.format import (FORMAT_VERSION, FRAME_ENCODING, METADATA_FILENAME, SHARD_GLOB, encode_pngs,
                                  encode_scene_example, frame_records, shard_name)
from tfvidgan.data.metadata import DatasetMetadata, ShardInfo, write_metadata
from tfvidgan.errors import ConfigError

__all__ = ["BouncingBallsConfig", "generate_dataset", "encode_scene_range", "config_from_flags"]

_SCENES_PER_TASK = {30: 128, 32: 128, 64: 48}
_MIN_SCENES_PER_WORKER = 2000


def encode_scene_range(config: BouncingBallsConfig, start: int, stop: int) -> bytes:
    """Scenes ``start … stop − 1`` as TFRecord-framed serialised Examples (see `tfvidgan.data.format`)."""
    batch = generate_scenes(config, start, stop)
    shape = (config.num_frames, config.size, config.size, config.channels)
    records = [encode_scene_example(encode_pngs(batch.frames[k]), shape, batch.positions[k], batch.radii[k],
                                    start + k) for k in range(stop - start)]
    return frame_records(records)


def _encode_task(task: tuple[dict, int, int, int]) -> tuple[int, int, int, bytes]:
    config_fields, shard, start, stop = task
    return shard, start, stop, encode_scene_range(BouncingBallsConfig(**config_fields), start, stop)


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


def _sibling_dir(output_dir: str, kind: str) -> str:
    """Creates an empty hidden directory beside ``output_dir`` (normal permissions, unlike mkdtemp)."""
    parent, name = os.path.split(output_dir)
    while True:
        path = os.path.join(parent, f".{name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue


def _swap_in(tmp_dir: str, output_dir: str) -> None:
    """Moves the finished dataset from ``tmp_dir`` to ``output_dir``, replacing an old one safely."""
    if not os.path.exists(output_dir):
        os.rename(tmp_dir, output_dir)
        return
    backup = _sibling_dir(output_dir, "old")
    old = _dataset_files(output_dir)
    old.sort(key=lambda name: name != METADATA_FILENAME)  # metadata first: the old set stops being a dataset
    moved_old, moved_new = [], []
    new = sorted(os.listdir(tmp_dir), key=lambda name: name == METADATA_FILENAME)  # metadata last
    try:
        for name in old:
            os.rename(os.path.join(output_dir, name), os.path.join(backup, name))
            moved_old.append(name)
        for name in new:
            os.rename(os.path.join(tmp_dir, name), os.path.join(output_dir, name))
            moved_new.append(name)
    except BaseException:
        for name in moved_new:  # roll back: new files out, old files in
            os.rename(os.path.join(output_dir, name), os.path.join(tmp_dir, name))
        for name in moved_old:
            os.rename(os.path.join(backup, name), os.path.join(output_dir, name))
        shutil.rmtree(backup, ignore_errors=True)
        raise
    shutil.rmtree(backup, ignore_errors=True)
    shutil.rmtree(tmp_dir, ignore_errors=True)


def generate_dataset(config: BouncingBallsConfig, output_dir: str, *, overwrite: bool = False,
                     workers: int | None = None, show_progress: bool = True) -> DatasetMetadata:
    """Generates ``config.num_scenes`` scenes into ``output_dir`` (shards + ``metadata.json``).

    Args:
      config: what to generate (validated on construction).
      output_dir: created if needed; must not hold a dataset unless ``overwrite``.
      overwrite: replace an existing dataset (atomically per file set; the old one survives failures).
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
    _check_output_dir(output_dir, overwrite)
    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    tasks = _plan(config)
    fields = config.to_dict()
    payloads = [(fields, shard, start, stop) for shard, start, stop in tasks]
    workers = min(workers, len(tasks))
    tmp_dir = _sibling_dir(output_dir, "tmp")
    progress = ProgressBar(config.num_scenes, label="bouncing balls", unit="scenes", enabled=show_progress)
    shard_bytes = [0] * config.shards
    shard_count = [0] * config.shards
    handle, handle_shard = None, -1
    try:
        if workers == 1:
            results = map(_encode_task, payloads)
            pool = None
        else:
            pool = multiprocessing.get_context("spawn").Pool(workers)
            results = pool.imap(_encode_task, payloads)
        try:
            for shard, start, stop, data in results:
                if shard != handle_shard:
                    if handle is not None:
                        handle.close()
                    handle = open(os.path.join(tmp_dir, shard_name(shard, config.shards)), "wb")
                    handle_shard = shard
                handle.write(data)
                shard_bytes[shard] += len(data)
                shard_count[shard] += stop - start
                progress.update(stop - start)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
        if handle is not None:
            handle.close()
            handle = None
        progress.close()
        shards = tuple(ShardInfo(file=shard_name(k, config.shards), num_records=shard_count[k],
                                 first_scene=k * config.num_scenes // config.shards, num_bytes=shard_bytes[k])
                       for k in range(config.shards))
        metadata = DatasetMetadata(
            format_version=FORMAT_VERSION, num_scenes=config.num_scenes, num_frames=config.num_frames,
            size=config.size, channels=config.channels, num_balls=config.num_balls, radius=config.radius,
            seed=config.seed, shards=shards, frame_encoding=FRAME_ENCODING,
            generator={
                "name": "data_tools.make_bouncing_balls",
                "config": fields,
                "physics": "event-driven elastic collisions; mass proportional to area (r^2), equal radii "
                           "give equal masses; walls at 0 and size",
                "rendering": "coverage clip(r + 0.5 - distance, 0, 1) per ball, summed, clipped; uint8",
                "positions": "pixel (row, col); pixel (i, j) is centred at (i + 0.5, j + 0.5)",
            })
        write_metadata(metadata, tmp_dir)
        _swap_in(tmp_dir, output_dir)
    except BaseException:
        if handle is not None:
            handle.close()
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return dataclasses.replace(metadata, directory=output_dir)


def config_from_flags(values) -> BouncingBallsConfig:
    """Builds the config from parsed absl flag values (raises `ConfigError` naming the flag)."""
    return BouncingBallsConfig(
        num_scenes=values.num_scenes, num_frames=values.num_frames, num_balls=values.num_balls,
        size=values.size, radius=values.radius, channels=values.channels, shards=values.shards,
        seed=values.seed, min_speed=values.min_speed, max_speed=values.max_speed)


def _define_flags(flags) -> None:
    flags.DEFINE_string("output_dir", None, "Directory for the shards and metadata.json (created if needed).")
    flags.DEFINE_integer("num_scenes", 50_000, "Scenes to generate.")
    flags.DEFINE_integer("num_frames", 40, "Frames per scene (T).")
    flags.DEFINE_integer("num_balls", 3, "Balls per scene (N).")
    flags.DEFINE_integer("size", 32, "Frame side in pixels: 30, 32 or 64.")
    flags.DEFINE_float("radius", None, "Ball radius in pixels; default size/10.")
    flags.DEFINE_integer("channels", 1, "1 = grayscale (white balls), 3 = RGB (one colour per ball).")
    flags.DEFINE_integer("shards", 8, "Number of TFRecord shards.")
    flags.DEFINE_integer("seed", 0, "Seed; scene i uses numpy default_rng([seed, i]).")
    flags.DEFINE_float("min_speed", None, "Slowest initial ball speed, pixels/frame; default size/64.")
    flags.DEFINE_float("max_speed", None, "Fastest initial ball speed, pixels/frame; default 3*size/64.")
    flags.DEFINE_integer("workers", None, "Processes; default one per CPU (at most one per 2000 scenes).")
    flags.DEFINE_bool("overwrite", False, "Replace a dataset already in --output_dir.")
    flags.DEFINE_bool("progress", True, "Show a progress bar on stderr.")
    flags.mark_flag_as_required("output_dir")


def main(argv) -> int:
    from absl import flags

    from tfvidgan.errors import TfvidganError

    values = flags.FLAGS
    try:
        if len(argv) > 1:
            raise ConfigError(f"unexpected positional arguments {argv[1:]} (flags are --name=value)")
        config = config_from_flags(values)
        started = time.monotonic()
        metadata = generate_dataset(config, values.output_dir, overwrite=values.overwrite, workers=values.workers,
                                    show_progress=values.progress)
    except TfvidganError as e:
        print(f"make_bouncing_balls: error: {e}", file=sys.stderr)
        return 2
    seconds = time.monotonic() - started
    total_bytes = sum(s.num_bytes for s in metadata.shards)
    print(json.dumps({"output_dir": metadata.directory, "num_scenes": metadata.num_scenes,
                      "shape": list(metadata.shape), "shards": metadata.num_shards, "seconds": round(seconds, 2),
                      "scenes_per_second": round(metadata.num_scenes / seconds, 1), "bytes": total_bytes}))
    return 0


if __name__ == "__main__":
    from absl import app, flags as absl_flags

    _define_flags(absl_flags)
    app.run(main)
