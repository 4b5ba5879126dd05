"""The CUP (sensed, scene) pairs dataset: TFRecord schema, `metadata.json` + `mask.npy`, and reader.

A dataset directory (written by ``python -m data_tools.make_cup_pairs``) holds

* ``cup-pairs-XXXXX-of-YYYYY.tfrecord`` shards of `tf.train.Example`s with features
    - ``sensed``:       bytes, float32 little-endian ``[H + T − 1, W, 1]`` (sensed units: a fully bright
                        pixel in one frame behind an open mask pixel adds 1.0; noisy if noise was on),
    - ``sensed_shape``: int64 ×3,
    - ``scene``:        bytes, float32 ``[T, H, W, 1]`` in ``[0, 1]`` (the ground-truth clip),
    - ``scene_shape``:  int64 ×4,
    - ``scene_index``, ``clip_offset``: int64, where the clip came from in the source scenes;
* ``metadata.json``: sizes, mask (also as a nested list), mask seed/fill, noise settings, shards;
* ``mask.npy``: the ``[H, W] float32 {0, 1}`` coding mask.

`cup_pairs_dataset` yields ``(sensed [B, H + T − 1, W, 1], scene [B, T, H, W, 1])`` float32 batches
and plugs into ``strategy.distribute_datasets_from_function`` through ``input_context``. Listing,
the upfront scan, ``skip_bad_records`` and per-worker sharding are the shared reader core's
(`tfvidgan.data.records`): the same guarantees as the bouncing-balls reader.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfvidgan.cup.operator import CupOperator
from tfvidgan.data import records
from tfvidgan.errors import DatasetError

__all__ = [
    "CupMetadata",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "METADATA_FILE",
    "MASK_FILE",
    "shard_name",
    "encode_example",
    "parse_example",
    "read_cup_metadata",
    "write_cup_metadata",
    "scan_cup_shards",
    "cup_pairs_dataset",
]

FORMAT_NAME = "tfvidgan.cup_pairs"
FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
MASK_FILE = "mask.npy"
SHARD_GLOB = "cup-pairs-*.tfrecord"


def shard_name(index: int, count: int) -> str:
    """File name of shard ``index`` of ``count``: ``cup-pairs-00000-of-00004.tfrecord``."""
    return f"cup-pairs-{index:05d}-of-{count:05d}.tfrecord"


@dataclasses.dataclass(frozen=True, eq=False)
class CupMetadata:
    """Contents of a CUP pairs dataset's ``metadata.json`` (and its ``mask.npy``).

    Attributes:
      num_frames, height, width: scene size ``T, H, W``; sensed images are ``[H + T − 1, W, 1]``.
      mask: ``[H, W] float32 {0, 1}`` coding mask (identical in ``mask.npy`` and the JSON).
      mask_seed, mask_fill: how the mask was drawn (`tfvidgan.cup.operator.make_mask`).
      photons: photons at full scale (sensed value 1.0); 0 = no shot noise.
      read_noise: Gaussian read-noise sigma in sensed units; 0 = none.
      noise_seed: base seed; record ``i`` uses stateless seed ``[noise_seed, i]``.
      clips_per_scene, clip_offsets: clips cut from each source scene and their first frames.
      num_scenes, num_examples: source scenes read and records written (= scenes × clips).
      shards: shard file names (relative to the dataset directory).
      examples_per_shard: records in each shard, same order as ``shards``.
      source_scenes: the ``--scenes`` pattern the data came from.
      directory: where the metadata was read from ("" when built in memory).
    """

    num_frames: int
    height: int
    width: int
    mask: np.ndarray = dataclasses.field(repr=False)
    mask_seed: int
    mask_fill: float
    photons: float
    read_noise: float
    noise_seed: int
    clips_per_scene: int
    clip_offsets: tuple[int, ...]
    num_scenes: int
    num_examples: int
    shards: tuple[str, ...]
    examples_per_shard: tuple[int, ...]
    source_scenes: str
    directory: str = ""

    @property
    def sensed_height(self) -> int:
        return self.height + self.num_frames - 1

    @property
    def sensed_shape(self) -> tuple[int, int, int]:
        """``(H + T − 1, W, 1)``."""
        return (self.sensed_height, self.width, 1)

    @property
    def scene_shape(self) -> tuple[int, int, int, int]:
        """``(T, H, W, 1)``."""
        return (self.num_frames, self.height, self.width, 1)

    def operator(self) -> CupOperator:
        """The `CupOperator` that produced the sensed images."""
        return CupOperator(self.mask, self.num_frames)

    def to_json_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("mask", "directory")}
        d["clip_offsets"] = list(self.clip_offsets)
        d["shards"] = list(self.shards)
        d["examples_per_shard"] = list(self.examples_per_shard)
        d["sensed_height"] = self.sensed_height
        d["mask"] = self.mask.astype(int).tolist()
        d["mask_file"] = MASK_FILE
        return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **d}


def write_cup_metadata(directory: str, metadata: CupMetadata) -> None:
    """Writes ``metadata.json`` and ``mask.npy`` into ``directory`` (which must exist)."""
    np.save(os.path.join(directory, MASK_FILE), metadata.mask.astype(np.float32))
    with open(os.path.join(directory, METADATA_FILE), "w") as f:
        json.dump(metadata.to_json_dict(), f, indent=1)
        f.write("\n")


_INT_FIELDS = ("num_frames", "height", "width", "mask_seed", "noise_seed", "clips_per_scene", "num_scenes", "num_examples")
_FLOAT_FIELDS = ("mask_fill", "photons", "read_noise")


def read_cup_metadata(path_or_pattern: str) -> CupMetadata:
    """Reads and validates a CUP pairs dataset's ``metadata.json`` and ``mask.npy``.

    Args:
      path_or_pattern: the dataset directory, its ``metadata.json``, a shard file or a shard glob.
    Returns:
      `CupMetadata` with ``directory`` set.

    Raises:
      DatasetError: a file is missing or unreadable, a field is missing or invalid, or the two masks
        disagree (the message names the file and field). Listed shards are checked by the reader.
    """
    directory = records.dataset_directory(path_or_pattern)
    path = os.path.join(directory, METADATA_FILE)
    if not os.path.isfile(path):
        raise DatasetError(f"{path}: CUP pairs metadata not found (expected beside the shards)")
    try:
        with open(path) as f:
            raw = json.load(f)
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path}: cannot parse JSON: {e}") from e
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
        raise DatasetError(f"{path}: field 'format' must be {FORMAT_NAME!r} (is this a CUP pairs dataset?)")
    if raw.get("format_version") != FORMAT_VERSION:
        raise DatasetError(f"{path}: unsupported format_version {raw.get('format_version')!r}, expected {FORMAT_VERSION}")
    values = {}
    try:
        for name in _INT_FIELDS:
            values[name] = int(raw[name])
        for name in _FLOAT_FIELDS:
            values[name] = float(raw[name])
        values["clip_offsets"] = tuple(int(v) for v in raw["clip_offsets"])
        values["shards"] = tuple(str(v) for v in raw["shards"])
        values["examples_per_shard"] = tuple(int(v) for v in raw["examples_per_shard"])
        values["source_scenes"] = str(raw["source_scenes"])
        json_mask = np.asarray(raw["mask"], np.float32)
    except KeyError as e:
        raise DatasetError(f"{path}: missing field {e.args[0]!r}") from e
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{path}: invalid field value: {e}") from e
    for name in ("num_frames", "height", "width"):
        if values[name] < 1:
            raise DatasetError(f"{path}: field {name!r} must be >= 1, got {values[name]}")
    hw = (values["height"], values["width"])
    if json_mask.shape != hw:
        raise DatasetError(f"{path}: field 'mask' has shape {json_mask.shape}, expected {hw}")
    mask_path = os.path.join(directory, MASK_FILE)
    try:
        mask = np.load(mask_path)
    except (OSError, ValueError) as e:
        raise DatasetError(f"{mask_path}: cannot load the CUP mask: {e}") from e
    if mask.shape != hw:
        raise DatasetError(f"{mask_path}: mask has shape {mask.shape}, expected {hw} from {path}")
    if not np.array_equal(mask.astype(np.float32), json_mask):
        raise DatasetError(f"{mask_path}: mask differs from field 'mask' of {path}")
    if len(values["examples_per_shard"]) != len(values["shards"]):
        raise DatasetError(f"{path}: fields 'shards' and 'examples_per_shard' have different lengths")
    if any(n < 0 for n in values["examples_per_shard"]):
        raise DatasetError(f"{path}: field 'examples_per_shard' has a negative count")
    return CupMetadata(mask=mask.astype(np.float32), directory=directory, **values)


# -- records ----------------------------------------------------------------------------------


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _ints(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def encode_example(sensed: np.ndarray, scene: np.ndarray, scene_index: int, clip_offset: int) -> bytes:
    """Serialises one pair.

    Args:
      sensed: ``[H + T − 1, W, 1]`` float32.
      scene: ``[T, H, W, 1]`` float32 in ``[0, 1]``.
      scene_index, clip_offset: provenance of the clip in the source scenes.

    Returns:
      A serialised `tf.train.Example`.
    """
    sensed = np.asarray(sensed, "<f4")
    scene = np.asarray(scene, "<f4")
    if sensed.ndim != 3 or scene.ndim != 4:
        raise ValueError(f"encode_example: bad ranks, sensed {sensed.shape}, scene {scene.shape}")
    features = {
        "sensed": _bytes(sensed.tobytes()),
        "sensed_shape": _ints(sensed.shape),
        "scene": _bytes(scene.tobytes()),
        "scene_shape": _ints(scene.shape),
        "scene_index": _ints([scene_index]),
        "clip_offset": _ints([clip_offset]),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


_FEATURES = {
    "sensed": tf.io.FixedLenFeature([], tf.string),
    "sensed_shape": tf.io.FixedLenFeature([3], tf.int64),
    "scene": tf.io.FixedLenFeature([], tf.string),
    "scene_shape": tf.io.FixedLenFeature([4], tf.int64),
    "scene_index": tf.io.FixedLenFeature([], tf.int64),
    "clip_offset": tf.io.FixedLenFeature([], tf.int64),
}


def parse_example(serialized: tf.Tensor, metadata: CupMetadata) -> tuple[tf.Tensor, tf.Tensor]:
    """Parses one serialised record -> ``(sensed [H + T − 1, W, 1], scene [T, H, W, 1])`` float32.

    Records whose shapes disagree with ``metadata`` fail with an `InvalidArgumentError` at iteration
    time; the upfront scan of `cup_pairs_dataset` turns that into a `DatasetError` naming the file,
    record and byte offset before training starts.
    """
    ex = tf.io.parse_single_example(serialized, _FEATURES)
    checks = [
        tf.debugging.assert_equal(ex["sensed_shape"], tf.constant(metadata.sensed_shape, tf.int64),
                                  message="CUP record: sensed_shape disagrees with metadata.json"),
        tf.debugging.assert_equal(ex["scene_shape"], tf.constant(metadata.scene_shape, tf.int64),
                                  message="CUP record: scene_shape disagrees with metadata.json"),
    ]
    with tf.control_dependencies(checks):
        sensed = tf.reshape(tf.io.decode_raw(ex["sensed"], tf.float32, little_endian=True), metadata.sensed_shape)
        scene = tf.reshape(tf.io.decode_raw(ex["scene"], tf.float32, little_endian=True), metadata.scene_shape)
    return sensed, scene


# -- reader (on the shared core, `tfvidgan.data.records`) ----------------------------------------

_CHECK_BATCH = 1024


def _listing(directory: str) -> records.Listing:
    metadata = read_cup_metadata(directory)
    return records.Listing(metadata, os.path.join(directory, METADATA_FILE),
                           dict(zip(metadata.shards, metadata.examples_per_shard)))


@functools.lru_cache(maxsize=None)
def _summary_function():
    def summarize(serialized):
        ex = tf.io.parse_example(serialized, _FEATURES)
        return (ex["sensed_shape"], ex["scene_shape"], tf.strings.length(ex["sensed"]), tf.strings.length(ex["scene"]))

    return tf.function(summarize, input_signature=[tf.TensorSpec([None], tf.string)])


def _describe(metadata: CupMetadata, sensed_shape, scene_shape, n_sensed, n_scene) -> str:
    """"" if the summarised record fits ``metadata``, else what is wrong."""
    if (list(sensed_shape) == list(metadata.sensed_shape) and list(scene_shape) == list(metadata.scene_shape)
            and n_sensed == 4 * int(np.prod(metadata.sensed_shape)) and n_scene == 4 * int(np.prod(metadata.scene_shape))):
        return ""
    return (f"sensed_shape {list(sensed_shape)} / scene_shape {list(scene_shape)} ({n_sensed} / {n_scene} bytes), "
            f"expected {list(metadata.sensed_shape)} / {list(metadata.scene_shape)} from metadata.json")


def _one_record_problem(record: bytes, metadata: CupMetadata) -> str:
    try:
        tf.train.Example.FromString(record)
    except Exception:  # noqa: BLE001 - protobuf raises its own DecodeError (or others on garbage)
        return "not a tf.train.Example (does not parse as one)"
    try:
        summary = [v.numpy()[0] for v in _summary_function()(tf.constant([record], tf.string))]
    except (tf.errors.OpError, UnicodeDecodeError):
        return "not a CUP pairs Example (a feature is missing or has the wrong type)"
    return _describe(metadata, *summary)


def _content_problems(serialized: Sequence[bytes], metadata: CupMetadata) -> list[tuple[int, str]]:
    """``(index, problem)`` for records that do not parse or disagree with ``metadata``'s shapes."""
    found = []
    for start in range(0, len(serialized), _CHECK_BATCH):
        chunk = list(serialized[start:start + _CHECK_BATCH])
        try:
            columns = [v.numpy() for v in _summary_function()(tf.constant(chunk, tf.string))]
        except (tf.errors.OpError, UnicodeDecodeError):
            found += [(start + i, p) for i, r in enumerate(chunk) if (p := _one_record_problem(r, metadata))]
            continue
        found += [(start + i, p) for i, row in enumerate(zip(*columns)) if (p := _describe(metadata, *row))]
    return found


def scan_cup_shards(pattern: str) -> records.ScanReport:
    """The upfront check of every shard of ``pattern`` (directory, glob or file): listed shards
    against ``metadata.json``, framing, CRC-32C, record counts and each record's features and shapes.

    Raises:
      DatasetError: nothing matches, shards from several directories, missing/invalid metadata, a
        listed shard missing, or an unreadable shard.
    """
    shards, listings = records.find_shards(pattern, shard_glob=SHARD_GLOB, metadata_file=METADATA_FILE,
                                           read_listing=_listing)
    if len(listings) != 1:
        raise DatasetError(f"{pattern}: shards come from several directories {sorted(listings)}; use one dataset")
    metadata = next(iter(listings.values())).metadata
    key = ("cup_pairs", metadata.sensed_shape, metadata.scene_shape)
    return records.scan_shards(shards, metadata, lambda serialized: _content_problems(serialized, metadata), key)


def cup_pairs_dataset(
    pattern: str,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int | None = None,
    repeat: bool = True,
    input_context: tf.distribute.InputContext | None = None,
    skip_bad_records: bool = False,
    shuffle_buffer: int = 1024,
) -> tf.data.Dataset:
    """Batches of CUP pairs, read through the shared reader core (`tfvidgan.data.records`).

    Args:
      pattern: the dataset directory (= its ``cup-pairs-*.tfrecord``), a glob of shard files or one
        file, beside its ``metadata.json``/``mask.npy``.
      batch_size: size of the batches THIS pipeline yields, i.e. the PER-REPLICA batch when used
        under ``distribute_datasets_from_function`` (the trainers' convention: global // replicas).
      shuffle: shuffle shard order and records (buffer ``shuffle_buffer``); False: file order.
      seed: shuffle seed (``None`` = non-deterministic order when shuffling).
      repeat: repeat forever; batches then have a static batch size (``drop_remainder=True``).
        With ``repeat=False`` one pass is made and the last batch may be smaller.
      input_context: from ``distribute_datasets_from_function``: pipeline k reads shards ``k, k + n, …``
        (or every n-th record when there are fewer shards than pipelines): disjoint data.
      skip_bad_records: skip (and count in the log) only the bad records instead of raising.
      shuffle_buffer: records held in the shuffle buffer.

    Returns:
      `tf.data.Dataset` of ``(sensed [B, H + T − 1, W, 1] float32, scene [B, T, H, W, 1] float32 in
      [0, 1])``.

    Raises:
      ConfigError: batch_size/shuffle_buffer not positive integers, bad seed. DatasetError: nothing
        matches, missing/invalid metadata, a listed shard missing, or bad records (file, record and
        byte offset named) unless skipped.
    """
    batch_size = records.check_positive("batch_size", batch_size)
    shuffle_buffer = records.check_positive("shuffle_buffer", shuffle_buffer)
    report = records.checked_report(scan_cup_shards(pattern), pattern, skip_bad_records)
    metadata = report.metadata
    base, deterministic = records.resolve_seed(seed, input_context)
    deterministic = deterministic or not shuffle
    stream = records.pipeline_records(report, seed=base, shuffle=shuffle, shuffle_buffer=shuffle_buffer,
                                      repeat=repeat, input_context=input_context, deterministic=deterministic)
    pairs = stream.map(lambda path, record: parse_example(record, metadata), num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=deterministic)
    return records.finish(pairs.batch(batch_size, drop_remainder=repeat), deterministic)
