"""tf.data pipelines over bouncing-balls shards (format: `tfvidgan.data.format`).

* `random_frames_dataset`: ``[B, H, W, C] float32 in [-1, 1]``, a random frame of a random scene
  each time (only that frame's PNG is decoded).
* `clips_dataset`: ``[B, L, H, W, C] float32 in [-1, 1]`` at random offsets (optionally with the
  ground-truth positions).
* `scenes_dataset`: whole scenes, unbatched, in file order (for CUP simulation and evaluation).

``file_pattern`` is a glob of shard files or a dataset directory (= ``DIR/scenes-*.tfrecord``);
``metadata.json`` must lie beside the shards. Listing, the upfront scan, bad-record handling and
per-worker sharding are the shared reader core's (`tfvidgan.data.records`, the same for the CUP
pairs reader): every listed shard must exist with its listed record count; framing and CRCs are
checked, and every record is parsed and checked against the metadata (frame count, sizes of
positions/radii, and every PNG frame is decoded) before any training starts. A bad shard raises
`tfvidgan.errors.DatasetError` naming the file, record and byte offset; with
``skip_bad_records=True`` only the bad records are skipped (counted in the log). A record that
nevertheless fails its size check while iterating (a file changed after the scan) raises an
`InvalidArgumentError` whose message names the file. ``batch_size`` is the batch of this input
pipeline (per replica).
"""
from __future__ import annotations

import functools
import os
import re

import numpy as np
import tensorflow as tf

from tfvidgan.data import format as fmt
from tfvidgan.data import records
from tfvidgan.data.metadata import DatasetMetadata, read_metadata
from tfvidgan.errors import ConfigError, DatasetError

__all__ = [
    "random_frames_dataset",
    "clips_dataset",
    "scenes_dataset",
    "read_metadata",
    "list_shards",
    "scan_shards",
]

_CHECK_BATCH = 256         # records per batch of the upfront content check


# ----------------------------------------------------------------------------------------------
# Shards, metadata, upfront scan.


def _listing(directory: str) -> records.Listing:
    metadata = read_metadata(directory)
    return records.Listing(metadata, os.path.join(directory, fmt.METADATA_FILENAME),
                           {s.file: s.num_records for s in metadata.shards})


def _find(file_pattern: str) -> tuple[list[tuple[str, int, str]], DatasetMetadata]:
    shards, listings = records.find_shards(file_pattern, shard_glob=fmt.SHARD_GLOB,
                                               metadata_file=fmt.METADATA_FILENAME, read_listing=_listing)
    (first_dir, first), *others = listings.items()
    for directory, other in others:
        if other.metadata.scene_spec != first.metadata.scene_spec:
            raise DatasetError(f"{other.path}: scene shape {other.metadata.scene_spec} differs from "
                               f"{first.metadata.scene_spec} in {first.path}")
    return shards, first.metadata


def list_shards(file_pattern: str) -> list[str]:
    """The shard files of ``file_pattern`` (a glob, one file, or a directory) listed in its metadata, sorted.

    Raises:
      DatasetError: naming the pattern when nothing matches, or a listed shard that is missing.
    """
    return [shard[0] for shard in _find(file_pattern)[0]]


@functools.lru_cache(maxsize=None)
def _check_function(spec: fmt.SceneSpec):
    return tf.function(lambda serialized: fmt.check_scene_records(serialized, spec),
                       input_signature=[tf.TensorSpec([None], tf.string)])


@functools.lru_cache(maxsize=None)
def _decode_function(spec: fmt.SceneSpec):
    return tf.function(lambda pngs: tf.shape(fmt.decode_frames(pngs, spec)),
                       input_signature=[tf.TensorSpec([None], tf.string)])


def _op_message(error: Exception) -> str:
    if isinstance(error, tf.errors.OpError):
        try:
            return re.sub(r"\{\{[^}]*\}\}\s*", "", error.message.splitlines()[0])
        except UnicodeDecodeError:
            pass
    return type(error).__name__


def _check_one(record: bytes, spec: fmt.SceneSpec) -> list[str]:
    """Problems of one record, found the slow way (used when a batch check fails)."""
    try:
        tf.train.Example.FromString(record)
    except Exception:  # noqa: BLE001 - protobuf raises its own DecodeError (or others on garbage)
        return ["not a tf.train.Example (does not parse as one)"]
    try:
        result = {k: v.numpy() for k, v in _check_function(spec)(tf.constant([record], tf.string)).items()}
    except (tf.errors.OpError, UnicodeDecodeError) as e:
        return [f"not a bouncing-balls Example ({_op_message(e)})"]
    found = [m for _, m in fmt.describe_scene_problems(result, spec)]
    if not found:
        found = _undecodable_frames(result["frame_png"], result["frame_index"], spec)
    return found


def _undecodable_frames(pngs, frame_index, spec: fmt.SceneSpec) -> list[str]:
    """Frames whose pixel data do not decode (PNG header already checked)."""
    try:
        _decode_function(spec)(tf.constant(pngs, tf.string))
        return []
    except (tf.errors.OpError, UnicodeDecodeError):
        pass
    for png, t in zip(pngs, frame_index):
        try:
            _decode_function(spec)(tf.constant([png], tf.string))
        except (tf.errors.OpError, UnicodeDecodeError) as e:
            return [f"frame {t} does not decode as a PNG ({_op_message(e)})"]
    return []


def _content_problems(serialized: list[bytes], spec: fmt.SceneSpec) -> list[tuple[int, str]]:
    """``(index, problem)`` for records that do not parse, disagree with ``spec`` or hold a frame that
    does not decode (every PNG is decoded in full, by the decoder the pipelines use)."""
    check = _check_function(spec)
    found = []
    for start in range(0, len(serialized), _CHECK_BATCH):
        chunk = serialized[start:start + _CHECK_BATCH]
        try:
            result = {k: v.numpy() for k, v in check(tf.constant(chunk, tf.string)).items()}
        except (tf.errors.OpError, UnicodeDecodeError):  # e.g. not an Example: find which records, one by one
            found += [(start + i, "; ".join(p)) for i, record in enumerate(chunk) if (p := _check_one(record, spec))]
            continue
        problems = fmt.describe_scene_problems(result, spec)
        found += [(start + i, m) for i, m in problems]
        bad = {i for i, _ in problems}
        keep = ~np.isin(result["frame_record"], sorted(bad))
        try:
            _decode_function(spec)(tf.constant(result["frame_png"][keep], tf.string))
        except (tf.errors.OpError, UnicodeDecodeError):
            for i in sorted(set(range(len(chunk))) - bad):
                mine = result["frame_record"] == i
                problem = _undecodable_frames(result["frame_png"][mine], result["frame_index"][mine], spec)
                if problem:
                    found.append((start + i, problem[0]))
    return found


def scan_shards(file_pattern: str) -> records.ScanReport:
    """Checks every shard of ``file_pattern`` and reports the usable and the bad records.

    Checks (`tfvidgan.data.records`): the listed shards against ``metadata.json``, TFRecord framing
    (lengths, truncation, header and data CRC-32C), record counts, and each record's content against
    the metadata's scene shape, decoding every PNG frame. Cached per (file, size, mtime) in this process.
    Raises:
      DatasetError: when no shard matches, the metadata is missing/invalid, a listed shard is missing,
        or a shard is unreadable.
    """
    shards, metadata = _find(file_pattern)
    spec = metadata.scene_spec
    return records.scan_shards(shards, metadata, lambda serialized: _content_problems(serialized, spec),
                               ("bouncing_balls", spec))


def _checked_report(file_pattern: str, skip_bad_records: bool) -> records.ScanReport:
    return records.checked_report(scan_shards(file_pattern), file_pattern, skip_bad_records)


# ----------------------------------------------------------------------------------------------
# Decoding.


def _decode_many(pngs, spec: fmt.SceneSpec):
    """``[K] string`` PNGs → ``[K, H, W, C] float32 in [-1, 1]``."""
    return fmt.to_unit_range(fmt.decode_frames(pngs, spec))


def _batch_seed(base: int, counts):
    """Seed for a batch's random choices: the pipeline's seed and the batch's first record count."""
    return tf.stack([tf.constant(base + 2, tf.int64), counts[0]])


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
    batch_size = records.check_positive("batch_size", batch_size)
    shuffle_buffer = records.check_positive("shuffle_buffer", shuffle_buffer)
    report = _checked_report(file_pattern, skip_bad_records)
    spec = report.metadata.scene_spec
    base, deterministic = records.resolve_seed(seed, input_context)
    stream = records.pipeline_records(report, seed=base, shuffle=True, shuffle_buffer=shuffle_buffer,
                                      repeat=repeat, input_context=input_context, deterministic=deterministic)

    def pick_frames(counts, element):
        paths, serialized = element
        scenes = fmt.parse_scene_records(serialized, spec, paths)
        index = tf.random.stateless_uniform([batch_size], seed=_batch_seed(base, counts), maxval=spec.num_frames,
                                            dtype=tf.int32)
        pngs = tf.gather(scenes["frames_png"], index, batch_dims=1)
        return tf.ensure_shape(_decode_many(pngs, spec), (batch_size,) + spec.frame_shape)

    batches = stream.enumerate().batch(batch_size, drop_remainder=True)
    return records.finish(batches.map(pick_frames, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic),
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
      ConfigError: clip_length outside [1, T]. DatasetError: as `random_frames_dataset`, or
        ``with_positions`` on a dataset without balls (``num_balls`` = 0).
    """
    batch_size = records.check_positive("batch_size", batch_size)
    shuffle_buffer = records.check_positive("shuffle_buffer", shuffle_buffer)
    report = _checked_report(file_pattern, skip_bad_records)
    spec = report.metadata.scene_spec
    if with_positions and spec.num_balls == 0:
        raise DatasetError(f"{os.fspath(file_pattern)}: with_positions needs ball positions, but this dataset has "
                           "none (num_balls = 0 in its metadata.json: scenes made from videos by "
                           "data_tools.make_video_dataset); use with_positions=False")
    length = spec.num_frames if clip_length is None else records.check_positive("clip_length", clip_length)
    if length > spec.num_frames:
        raise ConfigError(f"clip_length={length} is longer than the scenes of {os.fspath(file_pattern)} "
                          f"(T = {spec.num_frames})")
    base, deterministic = records.resolve_seed(seed, input_context)
    stream = records.pipeline_records(report, seed=base, shuffle=True, shuffle_buffer=shuffle_buffer,
                                      repeat=repeat, input_context=input_context, deterministic=deterministic)

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

    batches = stream.enumerate().batch(batch_size, drop_remainder=True)
    return records.finish(batches.map(cut_clips, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic),
                   deterministic)


def scenes_dataset(file_pattern: str, *, skip_bad_records: bool = False) -> tf.data.Dataset:
    """Every scene once, unbatched, in deterministic order (shards sorted by name, then records).

    Args:
      file_pattern: glob of shards or dataset directory.
      skip_bad_records: skip (and log) bad records instead of raising `DatasetError`.
    Returns:
      Dataset of dicts ``{"frames": [T, H, W, C] float32 in [-1, 1], "positions": [T, N, 2]
      float32 pixel (row, col), "radii": [N] float32}`` (N = 0: empty positions/radii for datasets
      without balls).
    Raises:
      DatasetError: as `random_frames_dataset`.
    """
    report = _checked_report(file_pattern, skip_bad_records)
    spec = report.metadata.scene_spec

    def decode_scene(path, record):
        scene = {k: v[0] for k, v in fmt.parse_scene_records(record[None], spec, path[None]).items()}
        frames = tf.ensure_shape(_decode_many(scene["frames_png"], spec), spec.scene_shape)
        return {"frames": frames, "positions": scene["positions"], "radii": scene["radii"]}

    scenes = records.pipeline_records(report, seed=0, shuffle=False, shuffle_buffer=1, repeat=False,
                                      input_context=None, deterministic=True)
    return records.finish(scenes.map(decode_scene, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True), True)
