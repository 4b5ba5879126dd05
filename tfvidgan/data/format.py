"""The bouncing-balls TFRecord format: encode a scene (numpy) and parse it back (TensorFlow).

One `tf.train.Example` per scene, in shards ``scenes-00000-of-00008.tfrecord`` beside a
``metadata.json`` (see `tfvidgan.data.metadata`). Features of one Example:

| key | type | content |
| --- | --- | --- |
| ``frames`` | bytes_list, T values | frame t as an 8-bit PNG, ``H × W``, grayscale (C = 1) or RGB (C = 3) |
| ``shape`` | int64_list, 4 values | ``[T, H, W, C]`` |
| ``positions`` | float_list, T·N·2 values | ball centres ``[T, N, 2]`` row-major, float32 pixel coordinates ``(row, col)`` |
| ``radii`` | float_list, N values | ball radii in pixels, float32 |
| ``scene_index`` | int64_list, 1 value | index of the scene in the dataset (0 … num_scenes − 1) |

Pixel coordinates: the frame covers the continuous square ``[0, H] × [0, W]``; pixel ``(i, j)`` is
the unit cell ``[i, i+1) × [j, j+1)`` with its centre at ``(i + 0.5, j + 0.5)``. Row grows downwards.

PNGs are written by `encode_pngs` (numpy + zlib; the generator's worker processes never import
TensorFlow), Examples by `encode_scene_example` (`tf.train.Example`, deterministic bytes) and
framed by `tf.io.TFRecordWriter` (the readers' checks of the framing are in
`tfvidgan.data.records`). Parsing (`parse_scene_records`, `check_scene_records`, `decode_frames`) is TensorFlow graph
code. TensorFlow is imported inside the functions that need it only.
"""
from __future__ import annotations

import dataclasses
import struct
import zlib
from typing import Sequence

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "FRAME_ENCODING",
    "SHARD_GLOB",
    "METADATA_FILENAME",
    "FEATURE_KEYS",
    "SceneSpec",
    "shard_name",
    "encode_pngs",
    "encode_scene_example",
    "parse_scene_records",
    "check_scene_records",
    "describe_scene_problems",
    "decode_frames",
    "to_unit_range",
]

FORMAT_VERSION = 1
FRAME_ENCODING = "png"
SHARD_GLOB = "scenes-*.tfrecord"
METADATA_FILENAME = "metadata.json"
FEATURE_KEYS = ("frames", "positions", "radii", "scene_index", "shape")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR_TYPE = {1: 0, 3: 2}  # channels -> PNG colour type (0 = grayscale, 2 = RGB)


@dataclasses.dataclass(frozen=True)
class SceneSpec:
    """Static shape of every scene in a dataset: T frames of H × W × C, N balls."""

    num_frames: int
    height: int
    width: int
    channels: int
    num_balls: int

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    @property
    def scene_shape(self) -> tuple[int, int, int, int]:
        return (self.num_frames, self.height, self.width, self.channels)


def shard_name(index: int, count: int) -> str:
    """``scenes-00003-of-00008.tfrecord`` for shard 3 of 8."""
    return f"scenes-{index:05d}-of-{count:05d}.tfrecord"


# ----------------------------------------------------------------------------------------------
# PNG encoding (numpy + zlib). Measured against Pillow (`benchmarks/input_pipeline.py`, "codecs"):
# 13 µs vs 39 µs per 32×32 frame (3× faster; Pillow tries five row filters per row and pays its
# plugin machinery per image), which is most of the generator's encoding time, so this stays.
# Every PNG is decoded by libpng (`tf.io.decode_png`) in the readers' upfront check and the tests.


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_pngs(frames: np.ndarray) -> list[bytes]:
    """Encodes frames ``[F, H, W, C] uint8`` (C = 1 or 3) as F deterministic 8-bit PNGs.

    Filter type 0 on every row, one IDAT chunk, zlib level 6 with the run-length strategy (as small
    as the default strategy for these mostly-black frames, and about 2× faster).
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] not in _PNG_COLOR_TYPE:
        raise ValueError(f"frames must be uint8 [F, H, W, C] with C in (1, 3); got {frames.dtype} {frames.shape}")
    count, height, width, channels = frames.shape
    header = _PNG_SIGNATURE + _png_chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOR_TYPE[channels], 0, 0, 0))
    trailer = _png_chunk(b"IEND", b"")
    rows = np.zeros((count, height, 1 + width * channels), np.uint8)  # leading 0 = filter "None"
    rows[:, :, 1:] = frames.reshape(count, height, width * channels)
    out = []
    for i in range(count):
        compressor = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
        out.append(header + _png_chunk(b"IDAT", compressor.compress(rows[i].tobytes()) + compressor.flush())
                   + trailer)
    return out


# ----------------------------------------------------------------------------------------------
# Records: `tf.train.Example` (TensorFlow's protobuf class).


def encode_scene_example(frames_png: Sequence[bytes], shape: Sequence[int], positions: np.ndarray | None,
                         radii: np.ndarray | None, scene_index: int) -> bytes:
    """Serialises one scene as a `tf.train.Example` (deterministic bytes: map keys sorted).

    Args:
      frames_png: T PNG-encoded frames (see `encode_pngs`).
      shape: ``(T, H, W, C)``.
      positions: ``[T, N, 2]`` ball centres, pixel ``(row, col)``; stored as float32. None: no
        ``positions`` feature (scenes without balls, N = 0, e.g. `tfvidgan.data.video_ingest`).
      radii: ``[N]`` ball radii in pixels; stored as float32. None: no ``radii`` feature.
      scene_index: the scene's index in the dataset (≥ 0).
    Returns:
      The serialised Example.
    """
    import tensorflow as tf

    feature = tf.train.Feature
    features = {
        "frames": feature(bytes_list=tf.train.BytesList(value=list(frames_png))),
        "scene_index": feature(int64_list=tf.train.Int64List(value=[int(scene_index)])),
        "shape": feature(int64_list=tf.train.Int64List(value=[int(v) for v in shape])),
    }
    if positions is not None:
        features["positions"] = feature(float_list=tf.train.FloatList(
            value=np.asarray(positions, np.float32).reshape(-1)))
    if radii is not None:
        features["radii"] = feature(float_list=tf.train.FloatList(value=np.asarray(radii, np.float32).reshape(-1)))
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example.SerializeToString(deterministic=True)


# ----------------------------------------------------------------------------------------------
# Parsing (TensorFlow graph code).


def parse_scene_records(serialized, spec: SceneSpec, paths=None) -> dict:
    """Parses ``[B]`` serialised scene Examples at once (vectorised), without decoding PNGs.

    Args:
      serialized: ``[B] tf.string``.
      spec: the dataset's `SceneSpec`.
      paths: optional ``[B] tf.string``, the file of each record, named in the error message.
    Returns:
      ``{"frames_png": [B, T] string, "positions": [B, T, N, 2] float32 pixel (row, col),
      "radii": [B, N] float32, "scene_index": [B] int64 (−1 if absent)}``.
    Raises (when run):
      `tf.errors.InvalidArgumentError` naming the files and scenes if a record does not hold T
      frames, T·N·2 position values and N radii.
    """
    import tensorflow as tf

    t, n = spec.num_frames, spec.num_balls
    parsed = tf.io.parse_example(serialized, {
        "frames": tf.io.VarLenFeature(tf.string),
        "positions": tf.io.VarLenFeature(tf.float32),
        "radii": tf.io.VarLenFeature(tf.float32),
        "scene_index": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    })
    count = tf.shape(serialized, out_type=tf.int64)[0]

    def row_lengths(sparse):
        return tf.math.unsorted_segment_sum(tf.ones_like(sparse.indices[:, 0]), sparse.indices[:, 0], count)

    ok = (tf.equal(row_lengths(parsed["frames"]), t) & tf.equal(row_lengths(parsed["positions"]), t * n * 2)
          & tf.equal(row_lengths(parsed["radii"]), n))
    bad = tf.logical_not(ok)
    message = ["Bad bouncing-balls record(s): the sizes of frames/positions/radii differ from metadata.json"]
    if paths is not None:
        message += ["in", tf.boolean_mask(paths, bad)]
    message += ["scene_index", tf.boolean_mask(parsed["scene_index"], bad)]
    with tf.control_dependencies([tf.debugging.Assert(tf.reduce_all(ok), message)]):
        # Explicit batch size: with N = 0 (no balls) a -1 could not be inferred from empty values.
        return {
            "frames_png": tf.reshape(parsed["frames"].values, [-1, t]),
            "positions": tf.reshape(parsed["positions"].values, tf.stack([count, t, n, 2])),
            "radii": tf.reshape(parsed["radii"].values, tf.stack([count, n])),
            "scene_index": tf.identity(parsed["scene_index"]),
        }


def check_scene_records(serialized, spec: SceneSpec) -> dict:
    """Vectorised content check of K serialised records (no PNG is decoded).

    Args:
      serialized: ``[K] tf.string``.
      spec: the dataset's `SceneSpec`.
    Returns:
      Per record (``[K]``): ``num_frames``, ``num_shape``, ``shape`` (``[K, 4]``, −1 padded),
      ``num_positions``, ``num_radii`` (int64); per stored frame (``[F]``, all records
      concatenated): ``frame_record``, ``frame_index``, ``frame_height``, ``frame_width``,
      ``frame_depth``, ``frame_colour`` (int64, −1 when not a PNG), ``frame_png`` (string, the
      encoded frame; headers only are read here). `describe_scene_problems`
      turns this into messages. Raises `tf.errors.InvalidArgumentError` if a record is not an
      Example or a feature has the wrong type.
    """
    import tensorflow as tf

    parsed = tf.io.parse_example(serialized, {
        "frames": tf.io.VarLenFeature(tf.string),
        "shape": tf.io.VarLenFeature(tf.int64),
        "positions": tf.io.VarLenFeature(tf.float32),
        "radii": tf.io.VarLenFeature(tf.float32),
    })
    count = tf.shape(serialized, out_type=tf.int64)[0]

    def per_record(sparse):
        return tf.math.unsorted_segment_sum(tf.ones_like(sparse.indices[:, 0]), sparse.indices[:, 0], count)

    shape = tf.sparse.to_dense(parsed["shape"], default_value=-1)
    shape = tf.pad(shape, [[0, 0], [0, 4]], constant_values=-1)[:, :4]
    frames = parsed["frames"]
    pngs = frames.values
    head = tf.reshape(tf.io.decode_raw(tf.strings.substr(pngs, 0, 26), tf.uint8, fixed_length=26), [-1, 26])
    is_png = (tf.reduce_all(tf.equal(head[:, :8], tf.constant(list(_PNG_SIGNATURE), tf.uint8)), axis=1)
              & tf.reduce_all(tf.equal(head[:, 12:16], tf.constant(list(b"IHDR"), tf.uint8)), axis=1)
              & (tf.strings.length(pngs) >= 33))
    big_endian = tf.constant([1 << 24, 1 << 16, 1 << 8, 1], tf.int64)

    def field(values):
        return tf.where(is_png, values, tf.constant(-1, tf.int64))

    return {
        "num_frames": per_record(frames),
        "num_shape": per_record(parsed["shape"]),
        "shape": shape,
        "num_positions": per_record(parsed["positions"]),
        "num_radii": per_record(parsed["radii"]),
        "frame_record": frames.indices[:, 0],
        "frame_index": frames.indices[:, 1],
        "frame_width": field(tf.reduce_sum(tf.cast(head[:, 16:20], tf.int64) * big_endian, axis=1)),
        "frame_height": field(tf.reduce_sum(tf.cast(head[:, 20:24], tf.int64) * big_endian, axis=1)),
        "frame_depth": field(tf.cast(head[:, 24], tf.int64)),
        "frame_colour": field(tf.cast(head[:, 25], tf.int64)),
        "frame_png": pngs,
    }


def describe_scene_problems(check: dict, spec: SceneSpec) -> list[tuple[int, str]]:
    """``(record, message)`` for each record of a `check_scene_records` result that is wrong.

    ``check`` holds numpy arrays. Checks the frame count, the ``shape`` feature, the sizes of
    ``positions`` and ``radii``, and each PNG's signature, size, bit depth (8) and colour type.
    """
    t, h, w, c, n = spec.num_frames, spec.height, spec.width, spec.channels, spec.num_balls
    expected_shape = np.array(spec.scene_shape)
    frame_ok = ((check["frame_height"] == h) & (check["frame_width"] == w) & (check["frame_depth"] == 8)
                & (check["frame_colour"] == _PNG_COLOR_TYPE[c]))
    bad_frame_records = set(np.asarray(check["frame_record"])[~frame_ok].tolist())
    record_bad = ((check["num_frames"] != t) | (check["num_shape"] != 4)
                  | np.any(check["shape"] != expected_shape, axis=1)
                  | (check["num_positions"] != t * n * 2) | (check["num_radii"] != n))
    problems = []
    for i in sorted(set(np.flatnonzero(record_bad).tolist()) | bad_frame_records):
        parts = []
        if check["num_frames"][i] != t:
            parts.append(f"has {check['num_frames'][i]} frames, expected T = {t}")
        if check["num_shape"][i] != 4 or np.any(check["shape"][i] != expected_shape):
            parts.append(f"shape feature is {check['shape'][i][:check['num_shape'][i]].tolist()}, "
                         f"expected {list(spec.scene_shape)}")
        if check["num_positions"][i] != t * n * 2:
            parts.append(f"positions has {check['num_positions'][i]} values, expected T*N*2 = {t * n * 2}")
        if check["num_radii"][i] != n:
            parts.append(f"radii has {check['num_radii'][i]} values, expected N = {n}")
        if i in bad_frame_records:
            k = int(np.flatnonzero((check["frame_record"] == i) & ~frame_ok)[0])
            if check["frame_height"][k] < 0:
                got = "not a PNG"
            else:
                got = (f"{check['frame_height'][k]}x{check['frame_width'][k]}, depth {check['frame_depth'][k]}, "
                       f"colour type {check['frame_colour'][k]}")
            parts.append(f"frame {check['frame_index'][k]} is not a {h}x{w} 8-bit "
                         f"{'gray' if c == 1 else 'RGB'} PNG ({got})")
        problems.append((i, "; ".join(parts)))
    return problems


def decode_frames(frames_png, spec: SceneSpec):
    """Decodes ``[F] tf.string`` PNGs to ``[F, H, W, C] uint8`` in [0, 255] (F may be dynamic)."""
    import tensorflow as tf

    return tf.map_fn(lambda png: tf.ensure_shape(tf.io.decode_png(png, channels=spec.channels), spec.frame_shape),
                     frames_png, fn_output_signature=tf.TensorSpec(spec.frame_shape, tf.uint8), parallel_iterations=16)


def to_unit_range(frames_uint8):
    """Maps uint8 ``[0, 255]`` to float32 ``[-1, 1]`` (0 → −1, 255 → 1)."""
    import tensorflow as tf

    return tf.cast(frames_uint8, tf.float32) * (2.0 / 255.0) - 1.0
