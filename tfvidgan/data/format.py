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

Encoding needs only numpy and zlib (the generator's worker processes never import TensorFlow):
PNGs are written by `encode_png`, Examples are serialised by hand in protobuf wire format by
`encode_scene_example` (byte-for-byte deterministic: features in sorted key order) and framed as
TFRecords by `frame_records` (length, masked CRC-32C of the length, data, masked CRC-32C of the
data). `scan_framing` walks that framing in Python and checks every CRC, which is how the readers
find truncated and corrupt shards and name them. Parsing (`parse_scene_records`,
`check_scene_records`, `decode_frames`) is TensorFlow graph code; TensorFlow is imported inside those functions only.
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
    "encode_png",
    "encode_pngs",
    "encode_scene_example",
    "crc32c",
    "crc32c_many",
    "masked_crc32c",
    "frame_records",
    "RecordSpan",
    "FramingReport",
    "scan_framing",
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
# PNG (numpy + zlib): filter type 0 on every row, one IDAT chunk, zlib level 6 (run-length strategy).


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_pngs(frames: np.ndarray) -> list[bytes]:
    """Encodes frames ``[F, H, W, C] uint8`` (C = 1 or 3) as F deterministic 8-bit PNGs."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] not in _PNG_COLOR_TYPE:
        raise ValueError(f"frames must be uint8 [F, H, W, C] with C in (1, 3); got {frames.dtype} {frames.shape}")
    count, height, width, channels = frames.shape
    header = _PNG_SIGNATURE + _png_chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOR_TYPE[channels], 0, 0, 0))
    trailer = _png_chunk(b"IEND", b"")
    rows = np.zeros((count, height, 1 + width * channels), np.uint8)  # leading 0 = filter "None"
    rows[:, :, 1:] = frames.reshape(count, height, width * channels)
    return [header + _png_chunk(b"IDAT", _deflate(rows[i].tobytes())) + trailer for i in range(count)]


def _deflate(data: bytes) -> bytes:
    # Run-length strategy: as small as the default for these mostly-black frames, and ~2× faster.
    compressor = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    return compressor.compress(data) + compressor.flush()


def encode_png(image: np.ndarray) -> bytes:
    """Encodes one image ``[H, W, C] uint8`` (C = 1 or 3) as an 8-bit PNG."""
    return encode_pngs(np.asarray(image)[None])[0]


# ----------------------------------------------------------------------------------------------
# tf.train.Example in protobuf wire format (no TensorFlow needed).


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _bytes_feature(values: Sequence[bytes]) -> bytes:
    return _field(1, b"".join(_field(1, v) for v in values))  # Feature.bytes_list{value}


def _float_feature(values: np.ndarray) -> bytes:
    packed = np.ascontiguousarray(values, dtype="<f4").tobytes()
    return _field(2, _field(1, packed) if packed else b"")  # Feature.float_list{packed value}


def _int64_feature(values: Sequence[int]) -> bytes:
    if any(v < 0 for v in values):
        raise ValueError("only non-negative int64 features are supported")
    packed = b"".join(_varint(int(v)) for v in values)
    return _field(3, _field(1, packed) if packed else b"")  # Feature.int64_list{packed value}


def encode_scene_example(frames_png: Sequence[bytes], shape: Sequence[int], positions: np.ndarray,
                         radii: np.ndarray, scene_index: int) -> bytes:
    """Serialises one scene as a `tf.train.Example` (wire format, deterministic bytes).

    Args:
      frames_png: T PNG-encoded frames (see `encode_pngs`).
      shape: ``(T, H, W, C)``.
      positions: ``[T, N, 2]`` ball centres, pixel ``(row, col)``; stored as float32.
      radii: ``[N]`` ball radii in pixels; stored as float32.
      scene_index: the scene's index in the dataset (≥ 0).
    Returns:
      The serialised Example; `tf.train.Example.FromString` reads it back.
    """
    features = {
        "frames": _bytes_feature(frames_png),
        "positions": _float_feature(np.asarray(positions, np.float32).reshape(-1)),
        "radii": _float_feature(np.asarray(radii, np.float32).reshape(-1)),
        "scene_index": _int64_feature([scene_index]),
        "shape": _int64_feature(list(shape)),
    }
    entries = b"".join(_field(1, _field(1, key.encode()) + _field(2, value))  # map<string, Feature> entry
                       for key, value in sorted(features.items()))
    return _field(1, entries)  # Example.features


# ----------------------------------------------------------------------------------------------
# CRC-32C (Castagnoli), vectorised with numpy, and TFRecord framing.

_POLY = 0x82F63B78
_BLOCK = 512


def _byte_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(_POLY), table >> 1).astype(np.uint32)
    return table


_TABLE = _byte_table()


def _shift_zero_byte(state: np.ndarray) -> np.ndarray:
    """The (linear) effect on a CRC register of one more zero byte."""
    return _TABLE[state & 0xFF] ^ (state >> 8)


def _position_tables() -> tuple[np.ndarray, np.ndarray]:
    """Tables for the block method.

    CRC without initial/final inversion is linear over GF(2): byte b at distance k from the end of a
    block contributes ``S^k(table[b])`` where S shifts in a zero byte. ``positions[k, b]`` holds that
    contribution; ``advance[q, v]`` is ``S^BLOCK(v << 8q)``, so that advancing a register over a
    whole block is four lookups.
    """
    positions = np.empty((_BLOCK, 256), np.uint32)
    positions[0] = _TABLE
    for k in range(1, _BLOCK):
        positions[k] = _shift_zero_byte(positions[k - 1])
    basis = (np.arange(256, dtype=np.uint32)[None, :] << (8 * np.arange(4, dtype=np.uint32)[:, None]))
    advance = basis.astype(np.uint32)
    for _ in range(_BLOCK):
        advance = _shift_zero_byte(advance)
    # Row r of the flattened gather table is used for the byte at column j of a block, r = BLOCK-1-j.
    return positions[::-1].reshape(-1).copy(), advance


_POSITIONS, _ADVANCE = _position_tables()
_COLUMN_OFFSETS = (np.arange(_BLOCK, dtype=np.int32) * 256)[None, :]


def crc32c_many(messages: Sequence[bytes]) -> np.ndarray:
    """CRC-32C of each message, as ``uint32 [len(messages)]`` (vectorised; ~GB/s scale in numpy)."""
    count = len(messages)
    result = np.zeros(count, np.uint32)
    if count == 0:
        return result
    lengths = np.fromiter((len(m) for m in messages), np.int64, count)
    # Initial register 0xFFFFFFFF == zero register with the first 4 bytes inverted; messages shorter
    # than 4 bytes are handled byte by byte below.
    long_ones = np.flatnonzero(lengths >= 4)
    for i in np.flatnonzero(lengths < 4):
        state = np.array([0xFFFFFFFF], np.uint32)
        for byte in messages[i]:
            state = _TABLE[(state ^ np.uint32(byte)) & 0xFF] ^ (state >> 8)
        result[i] = state[0] ^ np.uint32(0xFFFFFFFF)
    if long_ones.size == 0:
        return result
    blocks_per = -(-lengths[long_ones] // _BLOCK)
    pieces = []
    for i, nb in zip(long_ones, blocks_per):
        m = messages[i]
        pieces.append(bytes(nb * _BLOCK - len(m)))  # zero padding in front leaves a zero register
        pieces.append(bytes(b ^ 0xFF for b in m[:4]))
        pieces.append(m[4:])
    blocks = np.frombuffer(b"".join(pieces), np.uint8).reshape(-1, _BLOCK)
    contributions = np.empty(blocks.shape[0], np.uint32)
    step = 2048
    for start in range(0, blocks.shape[0], step):
        chunk = blocks[start:start + step].astype(np.int32) + _COLUMN_OFFSETS
        contributions[start:start + step] = np.bitwise_xor.reduce(_POSITIONS[chunk], axis=1)
    first_block = np.concatenate([[0], np.cumsum(blocks_per)[:-1]])
    max_blocks = int(blocks_per.max())
    state = np.zeros(long_ones.size, np.uint32)
    for k in range(max_blocks):
        # Messages are right-aligned: message i starts at step max_blocks - blocks_per[i].
        active = np.flatnonzero(k >= max_blocks - blocks_per)
        s = state[active]
        advanced = (_ADVANCE[0][s & 0xFF] ^ _ADVANCE[1][(s >> 8) & 0xFF]
                    ^ _ADVANCE[2][(s >> 16) & 0xFF] ^ _ADVANCE[3][s >> 24])
        block_index = first_block[active] + k - (max_blocks - blocks_per[active])
        state[active] = advanced ^ contributions[block_index]
    result[long_ones] = state ^ np.uint32(0xFFFFFFFF)
    return result


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``; ``crc32c(b"123456789") == 0xE3069283``."""
    return int(crc32c_many([bytes(data)])[0])


def _mask(crc: np.ndarray) -> np.ndarray:
    crc = crc.astype(np.uint64)
    return ((((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF).astype(np.uint32)


def masked_crc32c(data: bytes) -> int:
    """The masked CRC-32C that TFRecord files store."""
    return int(_mask(crc32c_many([bytes(data)]))[0])


def frame_records(records: Sequence[bytes]) -> bytes:
    """Frames serialised records as TFRecord bytes (readable by `tf.data.TFRecordDataset`)."""
    if not records:
        return b""
    length_bytes = [struct.pack("<Q", len(r)) for r in records]
    length_crcs = _mask(crc32c_many(length_bytes))
    data_crcs = _mask(crc32c_many(records))
    out = []
    for header, header_crc, record, data_crc in zip(length_bytes, length_crcs, records, data_crcs):
        out += [header, struct.pack("<I", int(header_crc)), record, struct.pack("<I", int(data_crc))]
    return b"".join(out)


@dataclasses.dataclass(frozen=True)
class RecordSpan:
    """Where record ``index`` of a TFRecord file lies: its data is ``file[offset : offset + length]``."""

    index: int
    offset: int
    length: int


@dataclasses.dataclass(frozen=True)
class FramingReport:
    """Result of `scan_framing` on one file's bytes.

    Attributes:
      good: records whose header and data CRCs are both correct, in file order.
      bad: ``(index, byte_offset, reason)`` for records with a wrong data CRC.
      tail_problem: why reading stopped before the end of the file ("" if it did not): a truncated
        record or a corrupt length header, after which record boundaries are unknown.
      tail_offset: byte offset where that problem starts.
    """

    good: tuple[RecordSpan, ...]
    bad: tuple[tuple[int, int, str], ...]
    tail_problem: str
    tail_offset: int

    @property
    def num_records_seen(self) -> int:
        """Records whose boundaries are known (good + bad data CRC)."""
        return len(self.good) + len(self.bad)


def scan_framing(data: bytes) -> FramingReport:
    """Walks TFRecord framing in ``data`` (a whole file), checking every length and data CRC."""
    view = memoryview(data)
    size = len(data)
    offsets, lengths = [], []
    position = 0
    tail_problem, tail_offset = "", 0
    while position < size:
        if position + 12 > size:
            tail_problem, tail_offset = f"truncated record header ({size - position} bytes left)", position
            break
        (length,) = struct.unpack_from("<Q", view, position)
        end = position + 12 + length + 4
        if end > size:
            # Either truncated, or the length itself is corrupt; the header CRC tells which.
            header_ok = _mask(crc32c_many([bytes(view[position:position + 8])]))[0] == \
                struct.unpack_from("<I", view, position + 8)[0]
            tail_problem = (f"truncated record ({length} data bytes announced, {size - position - 12} left)"
                            if header_ok else "corrupt record header (length CRC mismatch)")
            tail_offset = position
            break
        offsets.append(position)
        lengths.append(length)
        position = end
    if offsets:
        headers = [bytes(view[o:o + 8]) for o in offsets]
        stored = np.array([struct.unpack_from("<I", view, o + 8)[0] for o in offsets], np.uint32)
        header_bad = np.flatnonzero(_mask(crc32c_many(headers)) != stored)
        if header_bad.size:
            first = int(header_bad[0])
            tail_problem = "corrupt record header (length CRC mismatch)"
            tail_offset = offsets[first]
            offsets, lengths = offsets[:first], lengths[:first]
    good, bad = [], []
    if offsets:
        payloads = [bytes(view[o + 12:o + 12 + n]) for o, n in zip(offsets, lengths)]
        stored = np.array([struct.unpack_from("<I", view, o + 12 + n)[0] for o, n in zip(offsets, lengths)],
                          np.uint32)
        ok = _mask(crc32c_many(payloads)) == stored
        for i, (o, n) in enumerate(zip(offsets, lengths)):
            if ok[i]:
                good.append(RecordSpan(i, o + 12, n))
            else:
                bad.append((i, o, "data CRC mismatch (corrupt record)"))
    return FramingReport(tuple(good), tuple(bad), tail_problem, tail_offset)


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
        return {
            "frames_png": tf.reshape(parsed["frames"].values, [-1, t]),
            "positions": tf.reshape(parsed["positions"].values, [-1, t, n, 2]),
            "radii": tf.reshape(parsed["radii"].values, [-1, n]),
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
      ``frame_depth``, ``frame_colour`` (int64, −1 when not a PNG). `describe_scene_problems`
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
