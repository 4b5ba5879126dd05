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
and plugs into ``strategy.distribute_datasets_from_function`` through ``input_context``.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from tfvidgan.cup.operator import CupOperator
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
    "verify_shard",
    "cup_pairs_dataset",
]

FORMAT_NAME = "tfvidgan.cup_pairs"
FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
MASK_FILE = "mask.npy"


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


def read_cup_metadata(directory: str) -> CupMetadata:
    """Reads and validates ``<directory>/metadata.json`` and ``<directory>/mask.npy``.

    Returns:
      `CupMetadata` with ``directory`` set.

    Raises:
      DatasetError: a file is missing or unreadable, a field is missing or invalid, the two masks
        disagree, or a listed shard is missing (the message names the file and field).
    """
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
    for shard in values["shards"]:
        if not os.path.isfile(os.path.join(directory, shard)):
            raise DatasetError(f"{os.path.join(directory, shard)}: shard listed in {path} is missing")
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
    time; `verify_shard` (run by `cup_pairs_dataset` by default) turns that into a `DatasetError`
    naming the file before training starts.
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


def verify_shard(path: str, metadata: CupMetadata) -> int:
    """Reads every record of one shard (checksums, features, shapes, byte sizes).

    Returns:
      The number of records.

    Raises:
      DatasetError: naming ``path`` (and the record index when known) if anything is wrong.
    """
    sensed_bytes = 4 * int(np.prod(metadata.sensed_shape))
    scene_bytes = 4 * int(np.prod(metadata.scene_shape))

    def summarize(serialized):
        ex = tf.io.parse_example(serialized, _FEATURES)
        return (ex["sensed_shape"], ex["scene_shape"], tf.strings.length(ex["sensed"]), tf.strings.length(ex["scene"]))

    count = 0
    try:
        for sensed_shape, scene_shape, n_sensed, n_scene in (
            tf.data.TFRecordDataset(path).batch(1024).map(summarize)
        ):
            bad = (
                np.any(sensed_shape.numpy() != metadata.sensed_shape, axis=1)
                | np.any(scene_shape.numpy() != metadata.scene_shape, axis=1)
                | (n_sensed.numpy() != sensed_bytes)
                | (n_scene.numpy() != scene_bytes)
            )
            if bad.any():
                i = int(np.argmax(bad))
                raise DatasetError(
                    f"{path}: record {count + i} has sensed_shape {sensed_shape.numpy()[i].tolist()} / scene_shape "
                    f"{scene_shape.numpy()[i].tolist()} ({int(n_sensed.numpy()[i])} / {int(n_scene.numpy()[i])} bytes), "
                    f"expected {list(metadata.sensed_shape)} / {list(metadata.scene_shape)} from metadata.json"
                )
            count += len(bad)
    except tf.errors.OpError as e:
        raise DatasetError(f"{path}: corrupt or unreadable CUP record near record {count}: {e.message}") from e
    return count


def cup_pairs_dataset(
    pattern: str,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int | None = None,
    repeat: bool = True,
    input_context: tf.distribute.InputContext | None = None,
    verify: bool = True,
    skip_bad_records: bool = False,
    shuffle_buffer: int = 1024,
) -> tf.data.Dataset:
    """Batches of CUP pairs.

    Args:
      pattern: glob of shard files, e.g. ``"data/cup/cup-pairs-*.tfrecord"`` (a directory means all
        its shards). All shards must sit in one directory with its ``metadata.json``/``mask.npy``.
      batch_size: size of the batches THIS pipeline yields, i.e. the PER-REPLICA batch when used
        under ``distribute_datasets_from_function`` (the trainers' convention: global // replicas).
      shuffle: shuffle shard order and records (buffer ``shuffle_buffer``).
      seed: shuffle seed (``None`` = non-deterministic order when shuffling).
      repeat: repeat forever; batches then have a static batch size (``drop_remainder=True``).
        With ``repeat=False`` one pass is made and the last batch may be smaller.
      input_context: from ``distribute_datasets_from_function``; shards are split between input
        pipelines by file (``shard i`` goes to pipeline ``i mod num_input_pipelines``).
      verify: read every record of this pipeline's shards once up front (`verify_shard`) so that
        bad files fail here with a `DatasetError` naming the file rather than mid-training.
      skip_bad_records: instead of failing, silently drop records that do not parse or have the
        wrong shape (a corrupt checksum ends the rest of that shard); implies no verification.

    Returns:
      `tf.data.Dataset` of ``(sensed [B, H + T − 1, W, 1] float32, scene [B, T, H, W, 1] float32 in
      [0, 1])``.

    Raises:
      DatasetError: no file matches, shards span several directories, metadata is missing/invalid,
        fewer shards than input pipelines, or (with ``verify``) a record is corrupt or mis-shaped.
    """
    if batch_size < 1:
        raise DatasetError(f"batch_size must be >= 1, got {batch_size}")
    if os.path.isdir(pattern):
        pattern = os.path.join(pattern, "cup-pairs-*.tfrecord")
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise DatasetError(f"{pattern}: no CUP pairs shards match this pattern")
    directories = {os.path.dirname(os.path.abspath(f)) for f in files}
    if len(directories) != 1:
        raise DatasetError(f"{pattern}: shards come from several directories {sorted(directories)}; use one dataset")
    metadata = read_cup_metadata(directories.pop())
    if input_context is not None:
        n = input_context.num_input_pipelines
        files = files[input_context.input_pipeline_id :: n]
        if not files:
            raise DatasetError(f"{pattern}: fewer shards than the {n} input pipelines; regenerate with more --shards")
    if verify and not skip_bad_records:
        for f in files:
            verify_shard(f, metadata)

    deterministic = (not shuffle) or seed is not None
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)

    def read_file(path):
        pairs = tf.data.TFRecordDataset(path).map(lambda r: parse_example(r, metadata))
        return pairs.ignore_errors() if skip_bad_records else pairs

    ds = ds.interleave(
        read_file,
        cycle_length=min(len(files), 4),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=repeat)
    return ds.prefetch(tf.data.AUTOTUNE)
