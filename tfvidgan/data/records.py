"""The one reader core of the sharded TFRecord datasets (bouncing balls, CUP pairs).

Both readers (`tfvidgan.data.readers`, `tfvidgan.data.cup_pairs`) go through this module, so they
behave the same way:

* **Shard listing** (`find_shards`): a directory (= its default shard glob), a glob or one file.
  Every shard that ``metadata.json`` lists and the pattern covers must exist, or the error names it;
  files that match the pattern but are not listed are ignored with a log warning.
* **Upfront scan** (`scan_shards`, once per file size/mtime (and inode/ctime for local files) per process): TFRecord framing, both
  CRC-32C checksums of every record (`google_crc32c`), the record count against ``metadata.json``
  and a format-specific content check of every record (for bouncing balls: every PNG frame is
  decoded). Problems become `BadRecord`s naming the file, record index and byte offset.
* **Bad records** (`checked_report`): raise `DatasetError` listing them, or with
  ``skip_bad_records`` log them and read only the good records (a damaged shard loses only its bad
  records: the good ones are cut out of the file by their scanned offsets).
* **Input pipelines** (`pipeline_records`): with ``input_context``, pipeline k reads files
  ``k, k + n, …`` when there are at least n shard files, otherwise every n-th record of a fixed
  order; the pipelines always see disjoint data. Shuffled (interleaved files, shuffle buffer) or
  in file order.
* **Arguments**: `check_positive` (batch sizes, buffers) and `resolve_seed`, raising `ConfigError`.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import fnmatch
import glob
import logging
import os
import random
import struct
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence

import google_crc32c
import numpy as np
import tensorflow as tf

from tfvidgan.errors import ConfigError, DatasetError

__all__ = [
    "RecordSpan",
    "FramingReport",
    "masked_crc32c",
    "scan_framing",
    "Listing",
    "dataset_directory",
    "find_shards",
    "BadRecord",
    "ShardScan",
    "ScanReport",
    "scan_shards",
    "checked_report",
    "pipeline_records",
    "check_positive",
    "resolve_seed",
    "finish",
]

_log = logging.getLogger(__name__)
_AUTOTUNE = tf.data.AUTOTUNE
_MAX_CYCLE = 16            # shard files read concurrently by one pipeline
_READ_BUFFER = 1 << 20     # TFRecordDataset read buffer per file
_MAX_SCAN_THREADS = 4      # shards scanned concurrently
_HEADER = 12               # uint64 length + masked CRC of the length


# ----------------------------------------------------------------------------------------------
# TFRecord framing.


def masked_crc32c(data: bytes) -> int:
    """The masked CRC-32C (Castagnoli, `google_crc32c`) that TFRecord files store after a length and a record."""
    crc = google_crc32c.value(bytes(data))
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


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
    """Walks the TFRecord framing of ``data`` (a whole file), checking every length and data CRC.

    A record is ``length (uint64 LE) | masked CRC-32C of length | data | masked CRC-32C of data``.
    """
    size = len(data)
    good, bad = [], []
    position, index = 0, 0
    while position < size:
        if position + _HEADER > size:
            return FramingReport(tuple(good), tuple(bad), f"truncated record header ({size - position} bytes left)",
                                 position)
        (length,) = struct.unpack_from("<Q", data, position)
        (length_crc,) = struct.unpack_from("<I", data, position + 8)
        if masked_crc32c(data[position:position + 8]) != length_crc:
            return FramingReport(tuple(good), tuple(bad), "corrupt record header (length CRC mismatch)", position)
        end = position + _HEADER + length + 4
        if end > size:
            return FramingReport(tuple(good), tuple(bad), f"truncated record ({length} data bytes announced, "
                                 f"{size - position - _HEADER} left)", position)
        (data_crc,) = struct.unpack_from("<I", data, end - 4)
        if masked_crc32c(data[position + _HEADER:end - 4]) == data_crc:
            good.append(RecordSpan(index, position + _HEADER, length))
        else:
            bad.append((index, position, "data CRC mismatch (corrupt record)"))
        position, index = end, index + 1
    return FramingReport(tuple(good), tuple(bad), "", 0)


# ----------------------------------------------------------------------------------------------
# Shard listing against metadata.json.


@dataclasses.dataclass(frozen=True)
class Listing:
    """What a dataset directory's metadata says about its shards.

    Attributes:
      metadata: the format's parsed metadata object (`DatasetMetadata`, `CupMetadata`).
      path: the metadata file, named in messages.
      counts: shard base name → number of records, for every shard the metadata lists.
    """

    metadata: object
    path: str
    counts: Mapping[str, int]


def dataset_directory(path_or_pattern: str) -> str:
    """The directory holding a dataset's metadata: the path itself when it is a directory, else the
    directory of the ``.json`` file, shard file or shard glob.

    Raises:
      DatasetError: naming the path when it has no glob characters and does not exist.
    """
    path = os.fspath(path_or_pattern)
    if tf.io.gfile.isdir(path):
        return path
    if not glob.has_magic(path) and not tf.io.gfile.exists(path):
        raise DatasetError(f"{path}: no such file or directory")
    return os.path.dirname(path) or "."


def find_shards(file_pattern: str, *, shard_glob: str, metadata_file: str, read_listing: Callable[[str], Listing]
                ) -> tuple[list[tuple[str, int, str]], dict[str, Listing]]:
    """The shards of ``file_pattern`` with their record counts from the metadata, sorted by path.

    Args:
      file_pattern: a dataset directory (= ``DIR/shard_glob``), a glob of shard files or one file.
      shard_glob: the format's shard glob, e.g. ``scenes-*.tfrecord``.
      metadata_file: the metadata's base name (``metadata.json``).
      read_listing: reads the metadata of a directory (raises `DatasetError` naming its file).
    Returns:
      ``([(path, expected_records, metadata_path)], {directory: Listing})``.
    Raises:
      DatasetError: nothing matches (naming the pattern), the metadata is missing or invalid, or a
        shard the metadata lists (and the pattern covers) is missing on disk (naming it).
    """
    pattern = os.fspath(file_pattern)
    is_directory = tf.io.gfile.isdir(pattern)
    if is_directory:
        pattern = os.path.join(pattern, shard_glob)
    try:
        matches = [m for m in tf.io.gfile.glob(pattern) if not m.endswith(".json") and not tf.io.gfile.isdir(m)]
    except tf.errors.OpError as e:
        raise DatasetError(f"{pattern}: cannot list files ({e.message})") from e
    directories = sorted({os.path.dirname(m) or "." for m in matches})
    parent = os.path.dirname(pattern) or "."
    if (not directories and glob.has_magic(pattern) and not glob.has_magic(parent)
            and tf.io.gfile.exists(os.path.join(parent, metadata_file))):
        directories = [parent]  # no shard left: the metadata tells which ones are missing
    if not directories:
        if is_directory:
            raise DatasetError(f"{file_pattern}: directory holds no {shard_glob} shard files")
        missing = "" if glob.has_magic(pattern) else " (no such file or directory)"
        raise DatasetError(f"{pattern}: no files match this pattern{missing}")
    listings = {d: read_listing(d) for d in directories}
    present = set(matches)
    shards, unlisted = [], []
    for directory, listing in listings.items():
        missing = []
        for name, count in listing.counts.items():
            path = os.path.join(directory, name)
            if path in present:
                shards.append((path, count, listing.path))
            elif fnmatch.fnmatchcase(path, pattern):
                missing.append(path)
        if missing:
            raise DatasetError(f"{missing[0]}: shard listed in {listing.path} is missing"
                               + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        unlisted += sorted(m for m in matches if (os.path.dirname(m) or ".") == directory
                           and os.path.basename(m) not in listing.counts)
    if unlisted:
        _log.warning("Ignoring %d file(s) that match %s but are not listed in the metadata: %s", len(unlisted),
                     pattern, ", ".join(unlisted[:5]) + (" …" if len(unlisted) > 5 else ""))
    if not shards:
        raise DatasetError(f"{pattern}: matches no shard listed in {next(iter(listings.values())).path}")
    return sorted(shards), listings


# ----------------------------------------------------------------------------------------------
# Upfront scan.


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
    good: tuple[RecordSpan, ...]
    bad: tuple[BadRecord, ...]

    @property
    def damaged(self) -> bool:
        return bool(self.bad)

    @property
    def num_bad_records(self) -> int:
        return sum(b.count for b in self.bad)


@dataclasses.dataclass(frozen=True)
class ScanReport:
    """Scan result of a set of shards (see `scan_shards`); ``metadata`` is the format's metadata object."""

    metadata: object
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


# A content check: serialised records → [(index into the list, problem)] for the bad ones.
RecordCheck = Callable[[Sequence[bytes]], list[tuple[int, str]]]

_SCAN_CACHE: dict[tuple, ShardScan] = {}
_SCAN_LOCK = threading.Lock()


def _local_identity(path: str) -> tuple | None:
    """(inode, mtime ns, ctime ns) of a local file, None for other filesystems. `tf.io.gfile.stat` has whole
    seconds only, so a shard rewritten (or re-copied with its old mtime) within the same second at the same
    size would otherwise hit a stale cached scan; the ctime changes on every write and cannot be copied."""
    if "://" in path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns


def _scan_shard(path: str, expected: int, listed_in: str, check: RecordCheck, check_key: Hashable) -> ShardScan:
    try:
        stat = tf.io.gfile.stat(path)
    except tf.errors.OpError as e:
        raise DatasetError(f"{path}: cannot read ({e.message})") from e
    key = (path, stat.length, _local_identity(path) or stat.mtime_nsec, expected, check_key)
    with _SCAN_LOCK:
        if key in _SCAN_CACHE:
            return _SCAN_CACHE[key]
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
    except tf.errors.OpError as e:
        raise DatasetError(f"{path}: cannot read ({e.message})") from e
    framing = scan_framing(data)
    bad = [BadRecord(path, i, offset, reason) for i, offset, reason in framing.bad]
    seen = framing.num_records_seen
    if framing.tail_problem:
        # Records lost after the problem, per metadata (0: trailing garbage after the last record).
        bad.append(BadRecord(path, seen, framing.tail_offset, framing.tail_problem + " — the rest of the file is "
                             "unreadable", count=max(expected - seen, 0)))
    elif seen < expected:
        bad.append(BadRecord(path, seen, len(data), f"file ends after {seen} records but {os.path.basename(listed_in)} lists "
                             f"{expected} (truncated)", count=expected - seen))
    elif seen > expected:
        raise DatasetError(f"{path}: holds {seen} records but {listed_in} lists {expected}; "
                           "the metadata does not belong to this shard")
    problems = check([data[s.offset:s.offset + s.length] for s in framing.good])
    bad_content = {i for i, _ in problems}
    for i, message in problems:
        span = framing.good[i]
        bad.append(BadRecord(path, span.index, span.offset - _HEADER, f"wrong content: {message}"))
    good = tuple(s for i, s in enumerate(framing.good) if i not in bad_content)
    result = ShardScan(path, good, tuple(sorted(bad, key=lambda b: b.index)))
    with _SCAN_LOCK:
        _SCAN_CACHE[key] = result
    return result


def scan_shards(shards: Sequence[tuple[str, int, str]], metadata: object, check: RecordCheck,
                check_key: Hashable) -> ScanReport:
    """Scans ``[(path, expected_records, metadata_path)]`` (from `find_shards`): framing, CRCs, counts,
    and ``check`` on every record.

    ``check_key`` identifies the check (results are cached per file, size, mtime and check).
    Raises `DatasetError` when a file is unreadable or holds more records than listed.
    """
    threads = max(1, min(len(shards), os.cpu_count() or 1, _MAX_SCAN_THREADS))

    def scan(item):
        return _scan_shard(*item, check, check_key)

    if threads == 1:
        return ScanReport(metadata, tuple(scan(s) for s in shards))
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:  # CRC, zlib and TF release the GIL
        return ScanReport(metadata, tuple(pool.map(scan, shards)))


def checked_report(report: ScanReport, file_pattern: str, skip_bad_records: bool) -> ScanReport:
    """Raises `DatasetError` on bad records unless ``skip_bad_records`` (then logs them); and when nothing is left."""
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


def pipeline_records(report: ScanReport, *, seed: int, shuffle: bool, shuffle_buffer: int, repeat: bool,
                     input_context, deterministic: bool) -> tf.data.Dataset:
    """``(path, record)`` string pairs of the good records for this input pipeline.

    Shuffled (files interleaved, then a shuffle buffer) or, with ``shuffle=False``, in file order;
    repeated forever with ``repeat``. Pipelines of an ``input_context`` get disjoint records.
    """
    shards = [s for s in report.shards if s.good]
    n = input_context.num_input_pipelines if input_context is not None else 1
    k = input_context.input_pipeline_id if input_context is not None else 0
    by_files = n > 1 and len(shards) >= n
    if by_files:
        shards = shards[k::n]
    if not shuffle:
        records = _ordered_records(shards)
    elif n > 1 and not by_files:
        # Too few files: every pipeline reads the same fixed order and keeps every n-th record.
        records = _mixed_records(shards, file_seed=None, mix_seed=0, deterministic=True)
    else:
        records = _mixed_records(shards, file_seed=seed, mix_seed=seed, deterministic=deterministic)
    if n > 1 and not by_files:
        records = records.shard(n, k)
    if shuffle:
        records = records.shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)
    return records.repeat() if repeat else records


# ----------------------------------------------------------------------------------------------
# Arguments and options.


def check_positive(name: str, value) -> int:
    """``value`` as an int, or `ConfigError` naming ``name`` unless it is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer")
    return int(value)


def resolve_seed(seed: int | None, input_context) -> tuple[int, bool]:
    """A concrete base seed (per input pipeline) and whether the order must be deterministic."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ConfigError(f"seed={seed!r} must be an integer or None")
    deterministic = seed is not None
    base = int(seed) if seed is not None else random.SystemRandom().randrange(2 ** 31)
    if input_context is not None:
        base = base * 1_000_003 + input_context.input_pipeline_id
    return base % (2 ** 31 - 8), deterministic


def finish(dataset: tf.data.Dataset, deterministic: bool) -> tf.data.Dataset:
    """Sets the determinism option and prefetches."""
    options = tf.data.Options()
    options.deterministic = deterministic
    return dataset.with_options(options).prefetch(_AUTOTUNE)
