"""tf.data pipelines over bouncing-balls shards (format: `tfvidgan.data.format`).

* `random_frames_dataset`: ``[B, H, W, C] float32 in [-1, 1]``, a random frame of a random scene
  each time (only that frame's PNG is decoded).
* `clips_dataset`: ``[B, L, H, W, C] float32 in [-1, 1]`` at random offsets (optionally with the
  ground-truth positions).
* `scenes_dataset`: whole scenes, unbatched, in file order (for CUP simulation and evaluation).

``file_pattern`` is a glob of shard files or a dataset directory (= ``DIR/scenes-*.tfrecord``);
``metadata.json`` must lie beside the shards. Building a dataset first scans every shard once
(`scan_shards`, cached per file size/mtime within the process): TFRecord framing and all CRCs are
checked in Python/numpy and every record is parsed and checked against the metadata (frame count,
PNG sizes, positions/radii sizes) by a TensorFlow function. A bad shard then raises
`tfvidgan.errors.DatasetError` naming the file and record, before any training starts; with
``skip_bad_records=True`` the bad records are skipped instead (their count is logged and reported
by `scan_shards`), and the good records of a damaged shard are still read. Healthy shards stream
through `tf.data.TFRecordDataset` with parallel interleaving; a record that nevertheless fails its
size check while iterating raises an `InvalidArgumentError` whose message names the file.

Per-worker sharding (``input_context``, a `tf.distribute.InputContext`): when there are at least as
many shard files as input pipelines, pipeline k reads files ``k, k + n, …``; otherwise every
pipeline reads all files in a fixed order and keeps records ``k, k + n, …``. Either way the
pipelines see disjoint data. ``batch_size`` is the batch of this pipeline (per replica).
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import logging
import os
import random
import re
import threading

import numpy as np
import tensorflow as tf

from tfvidgan.data import format as fmt
from tfvidgan.data.metadata import DatasetMetadata, read_metadata
from tfvidgan.errors import ConfigError, DatasetError

__all__ = [
    "random_frames_dataset",
    "clips_dataset",
    "scenes_dataset",
    "read_metadata",
    "list_shards",
    "scan_shards",
    "ScanReport",
    "ShardScan",
    "BadRecord",
]

_log = logging.getLogger(__name__)
_AUTOTUNE = tf.data.AUTOTUNE
_MAX_CYCLE = 16            # shard files read concurrently by one pipeline
_CHECK_BATCH = 512         # records per batch of the upfront content check
_READ_BUFFER = 1 << 20     # TFRecordDataset read buffer per file
_MAX_SCAN_THREADS = 4      # shards scanned concurrently


# ----------------------------------------------------------------------------------------------
# Shards, metadata, upfront scan.


def list_shards(file_pattern: str) -> list[str]:
    """The shard files of ``file_pattern`` (a glob, one file, or a directory), sorted.

    Raises:
      DatasetError: naming the pattern when nothing matches or the directory holds no shards.
    """
    pattern = os.fspath(file_pattern)
    if tf.io.gfile.isdir(pattern):
        matches = tf.io.gfile.glob(os.path.join(pattern, fmt.SHARD_GLOB))
        if not matches:
            raise DatasetError(f"{pattern}: directory holds no {fmt.SHARD_GLOB} shard files")
    else:
        try:
            matches = tf.io.gfile.glob(pattern)
        except tf.errors.OpError as e:
            raise DatasetError(f"{pattern}: cannot list files ({e.message})") from e
        if not matches:
            missing = "" if any(ch in pattern for ch in "*?[") else " (no such file or directory)"
            raise DatasetError(f"{pattern}: no files match this pattern{missing}")
    files = sorted(m for m in matches if not m.endswith(".json") and not tf.io.gfile.isdir(m))
    if not files:
        raise DatasetError(f"{pattern}: matches no shard files (only directories or .json files)")
    return files


@dataclasses.dataclass(frozen=True)
class BadRecord:
    """A record that cannot be used.

    Attributes:
      path: the shard file.
      index: record index within the file (the first lost one for an unreadable tail).
      offset: byte offset of the record in the file.
      reason: what is wrong.
      count: how many records this entry stands for (> 1 for an unreadable tail, per metadata;
        0 for trailing garbage after the last record).
    """

    path: str
    index: int
    offset: int
    reason: str
    count: int = 1

    def describe(self) -> str:
        what = {0: f"after record {self.index - 1}", 1: f"record {self.index}"}.get(
            self.count, f"records {self.index}… ({self.count} records)")
        return f"{self.path}: {what} at byte {self.offset}: {self.reason}"


@dataclasses.dataclass(frozen=True)
class ShardScan:
    """Scan result of one shard: the readable records and the bad ones."""

    path: str
    good: tuple[fmt.RecordSpan, ...]
    bad: tuple[BadRecord, ...]

    @property
    def damaged(self) -> bool:
        return bool(self.bad)

    @property
    def num_bad_records(self) -> int:
        return sum(b.count for b in self.bad)


@dataclasses.dataclass(frozen=True)
class ScanReport:
    """Scan result of a set of shards (see `scan_shards`)."""

    metadata: DatasetMetadata
    shards: tuple[ShardScan, ...]

    @property
    def num_good_records(self) -> int:
        return sum(len(s.good) for s in self.shards)

    @property
    def num_bad_records(self) -> int:
        return sum(s.num_bad_records for s in self.shards)

    @property
    def bad_records(self) -> tuple[BadRecord, ...]:
        return tuple(b for s in self.shards for b in s.bad)

    def summary(self, limit: int = 5) -> str:
        bad = self.bad_records
        lines = [b.describe() for b in bad[:limit]]
        if len(bad) > limit:
            lines.append(f"… and {len(bad) - limit} more")
        return "; ".join(lines)


def _metadata_by_directory(paths: list[str]) -> dict[str, DatasetMetadata]:
    """The metadata of each shard directory; they must all agree on the scene shape."""
    by_dir: dict[str, DatasetMetadata] = {}
    for path in paths:
        directory = os.path.dirname(path) or "."
        if directory not in by_dir:
            by_dir[directory] = read_metadata(directory)
    (first_dir, first), *others = by_dir.items()
    for directory, other in others:
        if other.scene_spec != first.scene_spec:
            raise DatasetError(f"{os.path.join(directory, fmt.METADATA_FILENAME)}: scene shape {other.scene_spec} "
                               f"differs from {first.scene_spec} in {os.path.join(first_dir, fmt.METADATA_FILENAME)}")
    return by_dir


@functools.lru_cache(maxsize=None)
def _check_function(spec: fmt.SceneSpec):
    return tf.function(lambda records: fmt.check_scene_records(records, spec),
                       input_signature=[tf.TensorSpec([None], tf.string)])


def _content_problems(records: list[bytes], spec: fmt.SceneSpec) -> list[tuple[int, str]]:
    """``(index, problem)`` for records that do not parse or disagree with ``spec``."""
    check = _check_function(spec)
    found = []
    for start in range(0, len(records), _CHECK_BATCH):
        chunk = records[start:start + _CHECK_BATCH]
        try:
            result = {k: v.numpy() for k, v in check(tf.constant(chunk, tf.string)).items()}
            found += [(start + i, m) for i, m in fmt.describe_scene_problems(result, spec)]
        except tf.errors.OpError:  # e.g. a feature of the wrong type: find which records, one by one
            for i, record in enumerate(chunk):
                try:
                    result = {k: v.numpy() for k, v in check(tf.constant([record], tf.string)).items()}
                    found += [(start + i, m) for _, m in fmt.describe_scene_problems(result, spec)]
                except tf.errors.OpError as e:
                    detail = re.sub(r"\{\{[^}]*\}\}\s*", "", e.message.splitlines()[0])
                    found.append((start + i, f"not a bouncing-balls Example ({detail})"))
    return found


_SCAN_CACHE: dict[tuple, ShardScan] = {}
_SCAN_LOCK = threading.Lock()


def _scan_shard(path: str, metadata: DatasetMetadata) -> ShardScan:
    try:
        stat = tf.io.gfile.stat(path)
        key = (path, stat.length, stat.mtime_nsec, metadata.scene_spec, metadata.shard(os.path.basename(path)))
    except tf.errors.OpError as e:
        raise DatasetError(f"{path}: cannot read ({e.message})") from e
    with _SCAN_LOCK:
        if key in _SCAN_CACHE:
            return _SCAN_CACHE[key]
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
    except tf.errors.OpError as e:
        raise DatasetError(f"{path}: cannot read ({e.message})") from e
    framing = fmt.scan_framing(data)
    bad = [BadRecord(path, i, offset, reason) for i, offset, reason in framing.bad]
    info = metadata.shard(os.path.basename(path))
    seen = framing.num_records_seen
    if framing.tail_problem:
        # Records lost after the problem, per metadata (0: trailing garbage after the last record).
        lost = max(info.num_records - seen, 0) if info is not None else 1
        bad.append(BadRecord(path, seen, framing.tail_offset, framing.tail_problem + " — the rest of the file is "
                             "unreadable", count=lost))
    elif info is not None and seen < info.num_records:
        bad.append(BadRecord(path, seen, len(data), f"file ends after {seen} records but metadata.json lists "
                             f"{info.num_records} (truncated)", count=info.num_records - seen))
    elif info is not None and seen > info.num_records:
        raise DatasetError(f"{path}: holds {seen} records but metadata.json lists {info.num_records}; "
                           "the metadata does not belong to this shard")
    problems = _content_problems([data[s.offset:s.offset + s.length] for s in framing.good], metadata.scene_spec)
    bad_content = {i for i, _ in problems}
    for i, message in problems:
        span = framing.good[i]
        bad.append(BadRecord(path, span.index, span.offset - 12, f"wrong content: {message}"))
    good = tuple(s for i, s in enumerate(framing.good) if i not in bad_content)
    result = ShardScan(path, good, tuple(sorted(bad, key=lambda b: b.index)))
    with _SCAN_LOCK:
        _SCAN_CACHE[key] = result
    return result


def scan_shards(file_pattern: str) -> ScanReport:
    """Checks every shard of ``file_pattern`` and reports the usable and the bad records.

    Checks: TFRecord framing (lengths, truncation, header and data CRC-32C), record count against
    ``metadata.json``, and each record's content against the metadata's scene shape. Results are
    cached per (file, size, mtime) in this process.
    Raises:
      DatasetError: when no shard matches, the metadata is missing/invalid, or a shard is unreadable.
    """
    paths = list_shards(file_pattern)
    by_dir = _metadata_by_directory(paths)

    def scan(path):
        return _scan_shard(path, by_dir[os.path.dirname(path) or "."])

    metadata = next(iter(by_dir.values()))
    threads = max(1, min(len(paths), os.cpu_count() or 1, _MAX_SCAN_THREADS))
    if threads == 1:
        return ScanReport(metadata, tuple(scan(p) for p in paths))
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:  # numpy and TF release the GIL
        return ScanReport(metadata, tuple(pool.map(scan, paths)))


def _checked_report(file_pattern: str, skip_bad_records: bool) -> ScanReport:
    report = scan_shards(file_pattern)
    if report.bad_records:
        if not skip_bad_records:
            raise DatasetError(f"bad data in {os.fspath(file_pattern)} ({report.num_bad_records} unusable record(s)): "
                               f"{report.summary()}. Pass skip_bad_records=True (--skip_bad_records) to skip them")
        _log.warning("Skipping %d bad record(s) in %d shard(s): %s", report.num_bad_records,
                     sum(s.damaged for s in report.shards), report.summary())
    if report.num_good_records == 0:
        raise DatasetError(f"{os.fspath(file_pattern)}: no readable records")
    return report


# ----------------------------------------------------------------------------------------------
# Record streams: (path, serialised record) pairs.


def _file_records(path):
    return tf.data.TFRecordDataset(path, buffer_size=_READ_BUFFER).map(lambda record: (path, record))


def _damaged_file_records(shard: ShardScan) -> tf.data.Dataset:
    """The good records of a damaged shard, cut out of the file by the scanned offsets."""
    offsets = tf.constant([s.offset for s in shard.good], tf.int64)
    lengths = tf.constant([s.length for s in shard.good], tf.int64)
    path = tf.constant(shard.path)
    return (tf.data.Dataset.from_tensors(path)
            .map(tf.io.read_file)
            .flat_map(lambda content: tf.data.Dataset.from_tensor_slices(tf.strings.substr(content, offsets, lengths)))
            .map(lambda record: (path, record)))


def _concatenate(datasets: list[tf.data.Dataset]) -> tf.data.Dataset:
    out = datasets[0]
    for ds in datasets[1:]:
        out = out.concatenate(ds)
    return out


def _ordered_records(shards: list[ShardScan]) -> tf.data.Dataset:
    """All good records in file order, then record order."""
    segments, run = [], []
    for shard in shards:
        if shard.damaged:
            if run:
                segments.append(tf.data.Dataset.from_tensor_slices(run).flat_map(_file_records))
                run = []
            segments.append(_damaged_file_records(shard))
        else:
            run.append(shard.path)
    if run:
        segments.append(tf.data.Dataset.from_tensor_slices(run).flat_map(_file_records))
    return _concatenate(segments)


def _mixed_records(shards: list[ShardScan], *, file_seed: int | None, mix_seed: int,
                   deterministic: bool) -> tf.data.Dataset:
    """All good records once: healthy shards interleaved (their order shuffled per pass when
    ``file_seed`` is given), mixed with the good records of damaged shards (seeded by ``mix_seed``)."""
    healthy = [s.path for s in shards if not s.damaged]
    damaged = [s for s in shards if s.damaged]
    streams, weights = [], []
    if healthy:
        files = tf.data.Dataset.from_tensor_slices(healthy)
        if file_seed is not None:
            files = files.shuffle(len(healthy), seed=file_seed, reshuffle_each_iteration=True)
        streams.append(files.interleave(_file_records, cycle_length=min(len(healthy), _MAX_CYCLE), block_length=1,
                                        num_parallel_calls=_AUTOTUNE, deterministic=deterministic))
        weights.append(sum(len(s.good) for s in shards if not s.damaged))
    if damaged:
        streams.append(_concatenate([_damaged_file_records(s) for s in damaged]))
        weights.append(sum(len(s.good) for s in damaged))
    if len(streams) == 1:
        return streams[0]
    total = float(sum(weights))
    return tf.data.Dataset.sample_from_datasets(streams, weights=[w / total for w in weights],
                                                seed=mix_seed, stop_on_empty_dataset=False)


def _pipeline_records(report: ScanReport, *, seed: int, shuffle_buffer: int, repeat: bool,
                      input_context, deterministic: bool) -> tf.data.Dataset:
    """Shuffled (and repeated) ``(path, record)`` pairs for this input pipeline."""
    shards = [s for s in report.shards if s.good]
    n = input_context.num_input_pipelines if input_context is not None else 1
    k = input_context.input_pipeline_id if input_context is not None else 0
    if n > 1 and len(shards) >= n:
        records = _mixed_records(shards[k::n], file_seed=seed, mix_seed=seed, deterministic=deterministic)
    elif n > 1:
        # Too few files: every pipeline reads the same fixed order and keeps every n-th record.
        records = _mixed_records(shards, file_seed=None, mix_seed=0, deterministic=True).shard(n, k)
    else:
        records = _mixed_records(shards, file_seed=seed, mix_seed=seed, deterministic=deterministic)
    records = records.shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)
    return records.repeat() if repeat else records


# ----------------------------------------------------------------------------------------------
# Decoding.


def _decode_many(pngs, spec: fmt.SceneSpec):
    """``[K] string`` PNGs → ``[K, H, W, C] float32 in [-1, 1]``."""
    return fmt.to_unit_range(fmt.decode_frames(pngs, spec))


def _batch_seed(base: int, counts):
    """Seed for a batch's random choices: the pipeline's seed and the batch's first record count."""
    return tf.stack([tf.constant(base + 2, tf.int64), counts[0]])


def _resolve_seed(seed: int | None, input_context) -> tuple[int, bool]:
    """A concrete base seed (per input pipeline) and whether the order must be deterministic."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ConfigError(f"seed={seed!r} must be an integer or None")
    deterministic = seed is not None
    base = int(seed) if seed is not None else random.SystemRandom().randrange(2 ** 31)
    if input_context is not None:
        base = base * 1_000_003 + input_context.input_pipeline_id
    return base % (2 ** 31 - 8), deterministic


def _check_positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer")
    return int(value)


def _finish(dataset: tf.data.Dataset, deterministic: bool) -> tf.data.Dataset:
    options = tf.data.Options()
    options.deterministic = deterministic
    return dataset.with_options(options).prefetch(_AUTOTUNE)


# ----------------------------------------------------------------------------------------------
# Public pipelines.


def random_frames_dataset(file_pattern: str, batch_size: int, *, seed: int | None = None,
                          shuffle_buffer: int = 2048, skip_bad_records: bool = False, input_context=None,
                          repeat: bool = True) -> tf.data.Dataset:
    """Batches of single frames picked at random: a random scene, then a random frame of it.

    Args:
      file_pattern: glob of shards or dataset directory (``metadata.json`` beside the shards).
      batch_size: B, frames per batch of this pipeline (batches are full: drop_remainder=True).
      seed: makes the stream reproducible (same seed → same batches); None → random each time.
      shuffle_buffer: scenes held in the shuffle buffer.
      skip_bad_records: skip (and log) bad records instead of raising `DatasetError`.
      input_context: `tf.distribute.InputContext` for per-worker sharding, or None.
      repeat: loop forever (True) or make one pass with one frame from each scene (False).
    Returns:
      Dataset of ``[B, H, W, C] float32 in [-1, 1]``.
    Raises:
      DatasetError: no shards, missing/invalid metadata, or bad records (when not skipped).
    """
    batch_size = _check_positive("batch_size", batch_size)
    shuffle_buffer = _check_positive("shuffle_buffer", shuffle_buffer)
    report = _checked_report(file_pattern, skip_bad_records)
    spec = report.metadata.scene_spec
    base, deterministic = _resolve_seed(seed, input_context)
    records = _pipeline_records(report, seed=base, shuffle_buffer=shuffle_buffer, repeat=repeat,
                                input_context=input_context, deterministic=deterministic)

    def pick_frames(counts, element):
        paths, serialized = element
        scenes = fmt.parse_scene_records(serialized, spec, paths)
        index = tf.random.stateless_uniform([batch_size], seed=_batch_seed(base, counts), maxval=spec.num_frames,
                                            dtype=tf.int32)
        pngs = tf.gather(scenes["frames_png"], index, batch_dims=1)
        return tf.ensure_shape(_decode_many(pngs, spec), (batch_size,) + spec.frame_shape)

    batches = records.enumerate().batch(batch_size, drop_remainder=True)
    return _finish(batches.map(pick_frames, num_parallel_calls=_AUTOTUNE, deterministic=deterministic),
                   deterministic)


def clips_dataset(file_pattern: str, batch_size: int, *, clip_length: int | None = None, seed: int | None = None,
                  shuffle_buffer: int = 1024, skip_bad_records: bool = False, input_context=None,
                  repeat: bool = True, with_positions: bool = False) -> tf.data.Dataset:
    """Batches of clips of L consecutive frames at random offsets of random scenes.

    Args:
      file_pattern: glob of shards or dataset directory.
      batch_size: B, clips per batch of this pipeline (drop_remainder=True).
      clip_length: L in [1, T]; None → T (whole scenes, offset 0).
      seed: reproducible stream when given; None → random.
      shuffle_buffer: scenes held in the shuffle buffer.
      skip_bad_records: skip (and log) bad records instead of raising `DatasetError`.
      input_context: `tf.distribute.InputContext` for per-worker sharding, or None.
      repeat: loop forever, or one pass with one clip per scene.
      with_positions: return a dict with the ground truth instead of the clips alone.
    Returns:
      Dataset of ``[B, L, H, W, C] float32 in [-1, 1]``, or with ``with_positions`` of dicts
      ``{"frames": [B, L, H, W, C] float32 in [-1, 1], "positions": [B, L, N, 2] float32 pixel
      (row, col), "radii": [B, N] float32, "offset": [B] int32 (first frame's index in its scene),
      "scene_index": [B] int64}``.
    Raises:
      ConfigError: clip_length outside [1, T]. DatasetError: as `random_frames_dataset`.
    """
    batch_size = _check_positive("batch_size", batch_size)
    shuffle_buffer = _check_positive("shuffle_buffer", shuffle_buffer)
    report = _checked_report(file_pattern, skip_bad_records)
    spec = report.metadata.scene_spec
    length = spec.num_frames if clip_length is None else _check_positive("clip_length", clip_length)
    if length > spec.num_frames:
        raise ConfigError(f"clip_length={length} is longer than the scenes of {os.fspath(file_pattern)} "
                          f"(T = {spec.num_frames})")
    base, deterministic = _resolve_seed(seed, input_context)
    records = _pipeline_records(report, seed=base, shuffle_buffer=shuffle_buffer, repeat=repeat,
                                input_context=input_context, deterministic=deterministic)

    def cut_clips(counts, element):
        paths, serialized = element
        scenes = fmt.parse_scene_records(serialized, spec, paths)
        offset = tf.random.stateless_uniform([batch_size], seed=_batch_seed(base, counts),
                                             maxval=spec.num_frames - length + 1, dtype=tf.int32)
        steps = offset[:, None] + tf.range(length)[None, :]                                   # [B, L]
        pngs = tf.gather(scenes["frames_png"], steps, batch_dims=1)
        frames = tf.reshape(_decode_many(tf.reshape(pngs, [-1]), spec), (batch_size, length) + spec.frame_shape)
        if not with_positions:
            return frames
        return {"frames": frames, "positions": tf.gather(scenes["positions"], steps, batch_dims=1),
                "radii": scenes["radii"], "offset": offset, "scene_index": scenes["scene_index"]}

    batches = records.enumerate().batch(batch_size, drop_remainder=True)
    return _finish(batches.map(cut_clips, num_parallel_calls=_AUTOTUNE, deterministic=deterministic),
                   deterministic)


def scenes_dataset(file_pattern: str, *, skip_bad_records: bool = False) -> tf.data.Dataset:
    """Every scene once, unbatched, in deterministic order (shards sorted by name, then records).

    Args:
      file_pattern: glob of shards or dataset directory.
      skip_bad_records: skip (and log) bad records instead of raising `DatasetError`.
    Returns:
      Dataset of dicts ``{"frames": [T, H, W, C] float32 in [-1, 1], "positions": [T, N, 2]
      float32 pixel (row, col), "radii": [N] float32}``.
    Raises:
      DatasetError: as `random_frames_dataset`.
    """
    report = _checked_report(file_pattern, skip_bad_records)
    spec = report.metadata.scene_spec

    def decode_scene(path, record):
        scene = {k: v[0] for k, v in fmt.parse_scene_records(record[None], spec, path[None]).items()}
        frames = tf.ensure_shape(_decode_many(scene["frames_png"], spec), spec.scene_shape)
        return {"frames": frames, "positions": scene["positions"], "radii": scene["radii"]}

    scenes = _ordered_records([s for s in report.shards if s.good])
    return _finish(scenes.map(decode_scene, num_parallel_calls=_AUTOTUNE, deterministic=True), True)
