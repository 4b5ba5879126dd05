"""The ``metadata.json`` written beside bouncing-balls shards: dataclass, read, write, validate.

Example (abridged)::

    {"format_version": 1, "num_scenes": 50000, "num_frames": 40, "size": 32, "channels": 1,
     "num_balls": 3, "radius": 3.2, "seed": 0, "frame_encoding": "png",
     "shards": [{"file": "scenes-00000-of-00008.tfrecord", "num_records": 6250,
                 "first_scene": 0, "num_bytes": 39421337}, ...],
     "generator": {...the BouncingBallsConfig fields and derived physics settings...}}

Reading needs no TensorFlow for local paths (the generator uses this module); paths with a
``scheme://`` go through `tf.io.gfile`.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import Any, Mapping

from tfvidgan.data.format import FORMAT_VERSION, FRAME_ENCODING, METADATA_FILENAME, SceneSpec
from tfvidgan.data.swap import journal_path
from tfvidgan.errors import DatasetError

__all__ = ["ShardInfo", "DatasetMetadata", "read_metadata", "write_metadata", "metadata_path"]


@dataclasses.dataclass(frozen=True)
class ShardInfo:
    """One shard file: its base name, record count, index of its first scene and size in bytes."""

    file: str
    num_records: int
    first_scene: int
    num_bytes: int


@dataclasses.dataclass(frozen=True)
class DatasetMetadata:
    """Contents of a bouncing-balls dataset's ``metadata.json``.

    Attributes:
      format_version: version of the record format (`tfvidgan.data.format.FORMAT_VERSION`).
      num_scenes: scenes in the whole dataset (sum of the shards' records).
      num_frames: T, frames per scene.
      size: H = W, frame side in pixels (30, 32 or 64 for generated data).
      channels: C, 1 (grayscale) or 3 (RGB).
      num_balls: N, balls per scene; 0 for datasets without balls (`tfvidgan.data.video_ingest`:
        their records have no ``positions``/``radii`` and readers refuse ``with_positions``).
      radius: ball radius in pixels.
      seed: generator seed.
      shards: the shard files in scene order.
      frame_encoding: "png".
      generator: the generator's full configuration (informational).
      directory: where the metadata was read from ("" when built in memory; not serialised).
    """

    format_version: int
    num_scenes: int
    num_frames: int
    size: int
    channels: int
    num_balls: int
    radius: float
    seed: int
    shards: tuple[ShardInfo, ...]
    frame_encoding: str = FRAME_ENCODING
    generator: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    directory: str = dataclasses.field(default="", compare=False)

    @property
    def height(self) -> int:
        return self.size

    @property
    def width(self) -> int:
        return self.size

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(T, H, W, C)`` of one scene."""
        return (self.num_frames, self.size, self.size, self.channels)

    @property
    def scene_spec(self) -> SceneSpec:
        return SceneSpec(self.num_frames, self.size, self.size, self.channels, self.num_balls)

    @property
    def num_shards(self) -> int:
        return len(self.shards)

    def shard(self, file_name: str) -> ShardInfo | None:
        """The `ShardInfo` for a shard's base name, or None if the metadata does not list it."""
        for info in self.shards:
            if info.file == file_name:
                return info
        return None

    def to_json_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out.pop("directory")
        out["shards"] = [dataclasses.asdict(s) for s in self.shards]
        out["generator"] = dict(self.generator)
        return out


def _is_remote(path: str) -> bool:
    return "://" in path


def _exists(path: str) -> bool:
    if _is_remote(path):
        import tensorflow as tf
        return tf.io.gfile.exists(path)
    return os.path.exists(path)


def _isdir(path: str) -> bool:
    if _is_remote(path):
        import tensorflow as tf
        return tf.io.gfile.isdir(path)
    return os.path.isdir(path)


def _read_text(path: str) -> str:
    if _is_remote(path):
        import tensorflow as tf
        with tf.io.gfile.GFile(path, "r") as f:
            return f.read()
    with open(path, encoding="utf-8") as f:
        return f.read()


def metadata_path(path_or_pattern: str) -> str:
    """Where the ``metadata.json`` of a dataset lies.

    ``path_or_pattern`` may be the dataset directory, the ``metadata.json`` itself, one shard file,
    or a glob of shard files (the metadata is expected in the directory of the pattern).
    Raises `DatasetError` naming ``path_or_pattern`` when it has no glob characters and does not exist.
    """
    path = str(path_or_pattern)
    if path.endswith(".json"):
        return path
    if _isdir(path):
        return os.path.join(path, METADATA_FILENAME)
    if not glob.has_magic(path) and not _exists(path):
        raise DatasetError(f"{path}: no such file or directory (expected a dataset directory, shard file or glob)")
    return os.path.join(os.path.dirname(path) or ".", METADATA_FILENAME)


def _require(raw: Mapping, key: str, kind: type | tuple, path: str, *, minimum: float | None = None):
    if key not in raw:
        raise DatasetError(f"{path}: field '{key}' is missing")
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise DatasetError(f"{path}: field '{key}' = {value!r} has the wrong type (expected {kind})")
    if minimum is not None and value < minimum:
        raise DatasetError(f"{path}: field '{key}' = {value!r} must be ≥ {minimum}")
    return value


def _from_json_dict(raw: Any, path: str) -> DatasetMetadata:
    if not isinstance(raw, dict):
        raise DatasetError(f"{path}: expected a JSON object at the top level")
    version = _require(raw, "format_version", int, path)
    if version != FORMAT_VERSION:
        raise DatasetError(f"{path}: field 'format_version' = {version} is not supported "
                           f"(this tfvidgan reads version {FORMAT_VERSION})")
    encoding = _require(raw, "frame_encoding", str, path)
    if encoding != FRAME_ENCODING:
        raise DatasetError(f"{path}: field 'frame_encoding' = {encoding!r}, expected {FRAME_ENCODING!r}")
    channels = _require(raw, "channels", int, path)
    if channels not in (1, 3):
        raise DatasetError(f"{path}: field 'channels' = {channels} must be 1 or 3")
    shards_raw = _require(raw, "shards", list, path)
    shards = []
    for i, s in enumerate(shards_raw):
        where = f"{path} (shards[{i}])"
        if not isinstance(s, dict):
            raise DatasetError(f"{where}: expected an object")
        shards.append(ShardInfo(file=_require(s, "file", str, where),
                                num_records=_require(s, "num_records", int, where, minimum=0),
                                first_scene=_require(s, "first_scene", int, where, minimum=0),
                                num_bytes=_require(s, "num_bytes", int, where, minimum=0)))
    if not shards:
        raise DatasetError(f"{path}: field 'shards' is empty")
    num_scenes = _require(raw, "num_scenes", int, path, minimum=1)
    if sum(s.num_records for s in shards) != num_scenes:
        raise DatasetError(f"{path}: field 'num_scenes' = {num_scenes} differs from the sum of the shards' "
                           f"num_records ({sum(s.num_records for s in shards)})")
    generator = raw.get("generator", {})
    if not isinstance(generator, dict):
        raise DatasetError(f"{path}: field 'generator' must be an object")
    return DatasetMetadata(
        format_version=version,
        num_scenes=num_scenes,
        num_frames=_require(raw, "num_frames", int, path, minimum=1),
        size=_require(raw, "size", int, path, minimum=1),
        channels=channels,
        num_balls=_require(raw, "num_balls", int, path, minimum=0),  # 0: no balls (ingested videos)
        radius=float(_require(raw, "radius", (int, float), path, minimum=0)),
        seed=_require(raw, "seed", int, path),
        shards=tuple(shards),
        frame_encoding=encoding,
        generator=generator,
        directory=os.path.dirname(path),
    )


def read_metadata(path_or_pattern: str) -> DatasetMetadata:
    """Reads and validates a dataset's ``metadata.json``.

    Args:
      path_or_pattern: the dataset directory, its ``metadata.json``, a shard file or a glob of shards.
    Raises:
      DatasetError: naming the file when it is missing, not JSON, or has a missing/invalid field.
    """
    path = metadata_path(path_or_pattern)
    if not _exists(path):
        hint = ""
        if not _is_remote(path) and not glob.has_magic(path) and not os.path.exists(os.path.dirname(path) or "."):
            hint = " (the directory does not exist)"
        elif not _is_remote(path) and os.path.exists(journal_path(os.path.dirname(path) or ".")):
            hint = (f" (a dataset swap was interrupted: {journal_path(os.path.dirname(path) or '.')}; "
                    "run the generator again to finish it)")
        raise DatasetError(f"{path}: dataset metadata not found{hint}; expected metadata.json beside the "
                           f"scenes-*.tfrecord shards (generate with `python -m data_tools.make_bouncing_balls`)")
    try:
        raw = json.loads(_read_text(path))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{path}: not readable as JSON ({e})") from e
    return _from_json_dict(raw, path)


def write_metadata(metadata: DatasetMetadata, directory: str) -> str:
    """Writes ``<directory>/metadata.json`` atomically (temp file + rename); returns its path."""
    path = os.path.join(directory, METADATA_FILENAME)
    text = json.dumps(metadata.to_json_dict(), indent=1, sort_keys=False) + "\n"
    if _is_remote(directory):
        import tensorflow as tf
        with tf.io.gfile.GFile(path, "w") as f:
            f.write(text)
        return path
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path
