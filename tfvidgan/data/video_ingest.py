"""Your own videos as a dataset: video files and folders of numbered images → the bouncing-balls format.

    from tfvidgan.data.video_ingest import VideoDatasetConfig, make_video_dataset
    result = make_video_dataset(VideoDatasetConfig(input="clips/", size=64, num_frames=40, fps=10.0,
                                                   channels=3, shards=8), "data/own_64")
    result.metadata      # the written DatasetMetadata (num_balls = 0, no positions/radii)
    result.summary       # JSON-able counts: scenes, files used/skipped per problem kind, timings

The command line is ``python -m data_tools.make_video_dataset`` (flags = `VideoDatasetConfig` fields).

**Sources.** ``input`` is a directory, a glob or one file. A directory is walked recursively (sorted;
hidden entries skipped): every file with a video extension (`VIDEO_EXTENSIONS`: MP4, AVI, WebM, GIF,
MOV, MKV, …) is one video, and every directory that directly holds image files (`IMAGE_EXTENSIONS`) is
one video whose frames are those images in natural order of their names (``frame2.png`` before
``frame10.png``). A glob's matches and a single file name given explicitly are used as they are
(an explicit file of another extension is tried as a video). Videos are decoded with PyAV (FFmpeg),
the optional extra ``pip install "tfvidgan[video]"``; images with Pillow.

**Per video, in this order.**

1. *Frame rate.* Source frame times come from the container (``frame.time``, seconds; image folders:
   image i is at ``i / image_fps``). Output frame k (k = 0, 1, …) is the source frame *on screen* at
   ``t0 + k / fps`` — the last source frame whose time is ≤ that instant (sample and hold) — while that
   instant is before the end of the last source frame (its time plus the last frame interval). So
   25 fps → 12.5 fps keeps every second frame, 10 fps → 20 fps shows every frame twice.
2. *Size.* The frame is converted to RGB (``channels=3``) or 8-bit luma (``channels=1``, Pillow's
   ITU-R 601-2 ``L``), **centre-cropped** to a square of side ``min(H, W)`` (the extra rows/columns
   split equally, the odd one at the bottom/right), then resized to ``size × size`` with Pillow's
   Lanczos filter (antialiased when shrinking; no resampling at all when the square is already
   ``size`` pixels). Nothing is padded.
3. *Scenes.* The output frames are cut into scenes of ``num_frames`` frames starting at 0, ``stride``,
   ``2·stride``, … (``stride`` defaults to ``num_frames``: back-to-back scenes); frames after the last
   full scene are dropped (counted in the summary as ``frames_unused``).

**Output.** The same sharded format and ``metadata.json`` as the bouncing balls
(`tfvidgan.data.format`, `tfvidgan.data.metadata`; swapped in crash-safely by `tfvidgan.data.swap`):
``num_balls`` = 0, ``radius`` = 0, ``seed`` = 0, and the Examples have no ``positions``/``radii``
feature. Scenes are numbered in source order (sources sorted by path), shard k holds consecutive
scenes; ``generator`` records the config, one entry per source (frames, scenes, first scene, source
frame rate) and every problem. ``generator["config"]["content_sha256"]`` hashes the records, so the
Fréchet-encoder caches of `tfvidgan.metrics` tell two ingests of different videos apart.

**Determinism.** The records are byte-identical for the same input files and config, whatever
``workers`` (files are decoded in parallel, results are written in source order).

**Bad input.** Each problem names the file and has a kind (`PROBLEM_KINDS`): an empty (0-byte) file,
a file that is not readable as a video or image, a container without a video stream, a codec this
FFmpeg cannot decode, data that fails to decode part-way or decodes to fewer than 90 % of the frames the
container announces (FFmpeg conceals most damage, so truncation is found this way), a frame of zero width or height, frames of
different sizes within one video (different videos may differ: each is cropped and resized on its own),
and a video too short for one scene. With ``on_error="skip"`` the file is skipped and counted in the
summary (per kind) and in the metadata; with ``on_error="fail"`` the first problem (in source order)
raises `DatasetError` before anything is written. A directory that already holds a dataset is
refused unless ``overwrite`` (as the other generators).

Memory: one video's output frames (uint8, ``size²·C`` bytes each) and PNGs are held at a time per
worker; scenes go through a spool file in the scratch directory before being split into shards.
"""
from __future__ import annotations

import dataclasses
import glob
import hashlib
import math
import multiprocessing
import os
import re
import time
from collections.abc import Iterator

import numpy as np

from tfvidgan.data import swap
from tfvidgan.data.bouncing_balls import _check_output_dir, _dataset_files
from tfvidgan.data.format import (
    FORMAT_VERSION,
    FRAME_ENCODING,
    METADATA_FILENAME,
    encode_pngs,
    encode_scene_example,
    shard_name,
)
from tfvidgan.data.metadata import DatasetMetadata, ShardInfo, write_metadata
from tfvidgan.data.progress import ProgressBar
from tfvidgan.errors import ConfigError, DatasetError, check_whole_number, flag_error

__all__ = [
    "VIDEO_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "PROBLEM_KINDS",
    "VideoDatasetConfig",
    "Source",
    "find_sources",
    "require_pyav",
    "crop_and_resize",
    "resample_indices",
    "scene_starts",
    "read_source",
    "IngestResult",
    "make_video_dataset",
]

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".gif", ".mpg", ".mpeg", ".ogv", ".flv",
                    ".wmv", ".ts", ".3gp", ".apng")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
PROBLEM_KINDS = ("empty_file", "unreadable", "no_video_stream", "unsupported_codec", "corrupt", "zero_size_frame",
                 "mixed_resolution", "too_short")
ON_ERROR = ("skip", "fail")
RESIZE_DESCRIPTION = ("centre crop to a square of side min(H, W), then Pillow Lanczos resize to size x size "
                      "(no resize when already that size); no padding")
RESAMPLE_DESCRIPTION = ("output frame k = the last source frame with time <= t0 + k/fps (sample and hold), "
                        "while t0 + k/fps is before the end of the last source frame")
_EPS = 1e-6   # seconds: timestamps closer than this count as equal
# FFmpeg conceals damaged data instead of failing; a video that decodes to fewer than this fraction of
# the frames its container announces is reported as corrupt (a frame or two lost is tolerated).
_MIN_DECODED_FRACTION = 0.9


@dataclasses.dataclass(frozen=True)
class VideoDatasetConfig:
    """What to ingest. Field names equal the flags of ``python -m data_tools.make_video_dataset``.

    Attributes:
      input: a directory (walked recursively), a glob, or one video file / image folder.
      size: output frame side H = W in pixels (the trainers take 30, 32 or 64).
      num_frames: T, frames per scene (≥ 2).
      fps: output frame rate, frames per second (> 0); sources are resampled to it.
      channels: 1 (grayscale) or 3 (RGB).
      shards: TFRecord shards (≥ 1); fewer when there are fewer scenes (one scene per shard at least).
      stride: output frames between the starts of consecutive scenes of a video; None → ``num_frames``
        (scenes back to back); smaller values overlap scenes.
      on_error: "skip" (skip and count a bad file) or "fail" (raise `DatasetError` naming it).
      image_fps: frame rate of image folders (image i is shown at ``i / image_fps``); None → ``fps``
        (each image is one output frame).
    Unset (None) fields are resolved on construction.
    """

    input: str = ""
    size: int = 64
    num_frames: int = 40
    fps: float = 10.0
    channels: int = 3
    shards: int = 8
    stride: int | None = None
    on_error: str = "skip"
    image_fps: float | None = None

    def __post_init__(self):
        def whole(field, minimum, maximum=None):
            check_whole_number(field, getattr(self, field), minimum, maximum)

        def rate(field, value):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise flag_error(field, value, "must be a number of frames per second")
            if not (math.isfinite(value) and value > 0):
                raise flag_error(field, value, "must be a positive, finite number of frames per second")
            return float(value)

        if not isinstance(self.input, str) or not self.input:
            raise flag_error("input", self.input,
                             "is required: a directory of videos / image folders, a glob or a file")
        whole("size", 4, 4096)
        whole("num_frames", 2)
        whole("shards", 1)
        if self.channels not in (1, 3):
            raise flag_error("channels", self.channels, "must be 1 (grayscale) or 3 (RGB)")
        if self.on_error not in ON_ERROR:
            raise flag_error("on_error", self.on_error, f"must be one of {ON_ERROR}")
        object.__setattr__(self, "fps", rate("fps", self.fps))
        object.__setattr__(self, "image_fps", self.fps if self.image_fps is None else rate("image_fps",
                                                                                          self.image_fps))
        if self.stride is None:
            object.__setattr__(self, "stride", self.num_frames)
        whole("stride", 1)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------------------------
# Sources.


@dataclasses.dataclass(frozen=True)
class Source:
    """One input video: a video file (``kind="video"``) or a folder of numbered images (``"images"``)."""

    path: str
    kind: str


def _natural_key(name: str):
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def _image_files(directory: str) -> list[str]:
    names = [n for n in os.listdir(directory) if not n.startswith(".") and n.lower().endswith(IMAGE_EXTENSIONS)
             and os.path.isfile(os.path.join(directory, n))]
    return [os.path.join(directory, n) for n in sorted(names, key=lambda n: (_natural_key(n), n))]


def _walk(directory: str) -> tuple[list[Source], int]:
    sources, ignored = [], 0
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files = sorted(f for f in files if not f.startswith("."))
        if any(f.lower().endswith(IMAGE_EXTENSIONS) for f in files):
            sources.append(Source(root, "images"))
        for name in files:
            lower = name.lower()
            if lower.endswith(VIDEO_EXTENSIONS):
                sources.append(Source(os.path.join(root, name), "video"))
            elif not lower.endswith(IMAGE_EXTENSIONS):
                ignored += 1
    return sources, ignored


def find_sources(pattern: str) -> tuple[list[Source], int]:
    """The videos of ``pattern`` (directory, glob or file), sorted by path, and the number of files ignored.

    Raises:
      ConfigError: naming ``--input`` when nothing matches or no video / image folder is found.
    """
    if os.path.isdir(pattern):
        sources, ignored = _walk(pattern)
    else:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else (
            [pattern] if os.path.exists(pattern) else [])
        if not matches:
            raise ConfigError(f"--input={pattern}: no such file or directory, and no file matches it as a glob")
        sources, ignored = [], 0
        for match in matches:
            if os.path.isdir(match):
                found, skipped = _walk(match)
                sources += found
                ignored += skipped
            elif match.lower().endswith(IMAGE_EXTENSIONS):
                ignored += 1   # single images are not videos; their folder is
            elif match.lower().endswith(VIDEO_EXTENSIONS) or not glob.has_magic(pattern):
                sources.append(Source(match, "video"))
            else:
                ignored += 1
    sources = sorted(set(sources), key=lambda s: (s.path, s.kind))
    if not sources:
        raise ConfigError(f"--input={pattern}: found no video file ({', '.join(VIDEO_EXTENSIONS)}) and no folder "
                          f"of images ({', '.join(IMAGE_EXTENSIONS)})" + (f"; ignored {ignored} other file(s)"
                                                                          if ignored else ""))
    return sources, ignored


def require_pyav():
    """Imports PyAV, or raises `ConfigError` saying how to install it (the ``video`` extra)."""
    try:
        import av  # noqa: PLC0415
    except ImportError as e:
        raise ConfigError("reading video files needs PyAV, which is not installed: "
                          "pip install \"tfvidgan[video]\" (or pip install av); "
                          "folders of images need only Pillow") from e
    return av


# ----------------------------------------------------------------------------------------------
# Frames: resampling, cropping, resizing, scene cutting (pure numpy / Pillow).


def crop_and_resize(frame: np.ndarray, size: int) -> np.ndarray:
    """Centre-crops ``[H, W, C] uint8`` (C = 1 or 3) to a square of side ``min(H, W)`` and resizes it
    to ``[size, size, C] uint8`` (Pillow Lanczos; unchanged pixels when the square is ``size`` already).

    The crop drops ``(H − side) // 2`` rows at the top (the odd remaining row at the bottom), the same
    for columns.
    """
    from PIL import Image

    height, width, channels = frame.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = frame[top:top + side, left:left + side]
    if side == size:
        return np.ascontiguousarray(square)
    image = Image.fromarray(square[..., 0] if channels == 1 else square)
    out = np.asarray(image.resize((size, size), Image.Resampling.LANCZOS), np.uint8)
    return out[..., None] if channels == 1 else out


def resample_indices(times: np.ndarray, end: float, fps: float) -> np.ndarray:
    """Which source frame each output frame shows.

    Args:
      times: ``[F]`` float source frame times in seconds, non-decreasing.
      end: when the last source frame stops being shown (seconds, > ``times[-1]``).
      fps: output frame rate.
    Returns:
      ``[K] int64`` source indices: output k shows the last frame with ``time ≤ times[0] + k / fps``,
      for every k with ``times[0] + k / fps < end``.
    """
    times = np.asarray(times, np.float64)
    count = max(int(math.ceil((end - times[0] - _EPS) * fps)), 0)
    targets = times[0] + np.arange(count) / fps
    return np.searchsorted(times, targets + _EPS, side="right").astype(np.int64) - 1


def scene_starts(num_output_frames: int, num_frames: int, stride: int) -> list[int]:
    """First frame of every full scene: ``0, stride, 2·stride, …`` while ``start + num_frames ≤ frames``."""
    return list(range(0, num_output_frames - num_frames + 1, stride)) if num_output_frames >= num_frames else []


class _Problem(Exception):
    """A bad input file (kind in `PROBLEM_KINDS`)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _to_channels(rgb: np.ndarray, channels: int) -> np.ndarray:
    """``[H, W, 3] uint8`` RGB → ``[H, W, channels] uint8`` (luma by Pillow's ``L`` conversion)."""
    if channels == 3:
        return rgb
    from PIL import Image
    return np.asarray(Image.fromarray(rgb).convert("L"), np.uint8)[..., None]


def _video_frames(path: str) -> Iterator[tuple[float, int, int, object, float]]:
    """``(time_seconds, height, width, to_rgb, stream_rate)`` per decoded frame of a video file, in
    presentation order (``stream_rate``: the container's mean frame rate, 0 if unknown)."""
    av = require_pyav()
    try:
        container = av.open(path)
    except Exception as e:  # noqa: BLE001 - FFmpeg's errors, OSError, UnicodeDecodeError …
        raise _Problem("unreadable", f"not readable as a video ({type(e).__name__}: {e})") from e
    with container:
        if not container.streams.video:
            raise _Problem("no_video_stream", "holds no video stream"
                           + (f" ({len(container.streams)} other stream(s))" if len(container.streams) else ""))
        stream = container.streams.video[0]
        try:
            context = stream.codec_context
        except Exception:  # noqa: BLE001 - some PyAV versions raise instead of returning None
            context = None
        if context is None:
            tag = getattr(stream, "codec_tag", "") or "?"
            raise _Problem("unsupported_codec", f"video codec (tag {tag!r}) has no decoder in this FFmpeg "
                           f"(PyAV {av.__version__}); re-encode it, e.g. ffmpeg -i {os.path.basename(path)} "
                           "-c:v libx264 out.mp4")
        rate = float(stream.average_rate) if stream.average_rate else 0.0
        previous = None
        index = -1
        try:
            for index, frame in enumerate(container.decode(stream)):
                t = frame.time
                if t is None:
                    t = (previous + 1.0 / rate) if (previous is not None and rate) else (
                        index / rate if rate else float(index))
                if previous is not None and t < previous:
                    t = previous  # presentation order: never step backwards
                previous = t
                yield t, frame.height, frame.width, (lambda f=frame: f.to_ndarray(format="rgb24")), rate
        except _Problem:
            raise
        except Exception as e:  # noqa: BLE001 - FFmpeg's InvalidDataError and friends
            raise _Problem("corrupt", f"decoding failed after {index + 1} frame(s) ({type(e).__name__}: {e})") from e
        if index < 0:
            raise _Problem("corrupt", "no frame could be decoded")
        announced = int(stream.frames or 0)   # 0 when the container does not say (MKV, WebM, GIF)
        if announced and index + 1 < _MIN_DECODED_FRACTION * announced:
            raise _Problem("corrupt", f"only {index + 1} of the {announced} frames its header announces decode "
                           "(truncated or damaged)")


def _png_header_size(path: str) -> tuple[int, int] | None:
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) == 24 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")
    return None


def _image_frames(directory: str, image_fps: float) -> Iterator[tuple[float, int, int, object, float]]:
    from PIL import Image, UnidentifiedImageError

    files = _image_files(directory)
    for i, path in enumerate(files):
        name = os.path.basename(path)
        if os.path.getsize(path) == 0:
            raise _Problem("empty_file", f"image {name} is empty (0 bytes)")
        header = _png_header_size(path)
        if header is not None and 0 in header:
            raise _Problem("zero_size_frame", f"image {name} is {header[0]}x{header[1]} pixels (zero size)")
        try:
            with Image.open(path) as image:
                image.load()
                rgb = np.asarray(image.convert("RGB"), np.uint8)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise _Problem("unreadable", f"image {name} is not readable ({type(e).__name__}: {e})") from e
        yield i / image_fps, rgb.shape[0], rgb.shape[1], (lambda a=rgb: a), image_fps


def read_source(source: Source, config: VideoDatasetConfig) -> tuple[np.ndarray, dict]:
    """Decodes, resamples, crops and resizes one video.

    Returns:
      ``(frames [K, size, size, channels] uint8 in [0, 255], info)``; ``info`` holds
      ``source_frames`` (decoded), ``source_fps`` (mean rate of the source, or None) and
      ``height``/``width`` of the source frames.
    Raises:
      _Problem: the file is bad (kind in `PROBLEM_KINDS`, message without the file name).
    """
    if source.kind == "video" and os.path.isfile(source.path) and os.path.getsize(source.path) == 0:
        raise _Problem("empty_file", "is empty (0 bytes)")
    frames_iter = (_video_frames(source.path) if source.kind == "video"
                   else _image_frames(source.path, config.image_fps))
    times, out, shape = [], [], None
    pending = None  # the last decoded frame, not yet known how many outputs it covers
    next_k = 0
    t0 = None
    rate = 0.0

    def emit_until(limit: float, to_rgb) -> None:
        """Output frames k with t0 + k/fps < limit show ``to_rgb``'s frame (converted once)."""
        nonlocal next_k
        converted = None
        while t0 + next_k / config.fps < limit - _EPS:
            if converted is None:
                converted = crop_and_resize(_to_channels(to_rgb(), config.channels), config.size)
            out.append(converted)
            next_k += 1

    for t, height, width, to_rgb, rate in frames_iter:
        if height <= 0 or width <= 0:
            raise _Problem("zero_size_frame", f"frame {len(times)} is {height}x{width} pixels (zero size)")
        if shape is None:
            shape, t0 = (height, width), t
        elif (height, width) != shape:
            raise _Problem("mixed_resolution", f"frame {len(times)} is {height}x{width} but frame 0 is "
                           f"{shape[0]}x{shape[1]} (one video must keep one resolution)")
        if pending is not None:
            emit_until(t, pending)
        times.append(t)
        pending = to_rgb
    if not times:
        raise _Problem("corrupt" if source.kind == "video" else "unreadable", "holds no frame")
    intervals = np.diff(times)
    intervals = intervals[intervals > _EPS]
    if source.kind == "images":
        last = 1.0 / config.image_fps
    elif intervals.size:
        last = float(intervals[-1])
    else:
        last = 1.0 / (rate or config.fps)
    emit_until(times[-1] + last, pending)
    source_fps = (len(times) / (times[-1] + last - times[0])) if times[-1] + last > times[0] else None
    info = {"source_frames": len(times), "source_fps": None if source_fps is None else round(source_fps, 3),
            "height": shape[0], "width": shape[1]}
    empty = np.zeros((0, config.size, config.size, config.channels), np.uint8)
    return (np.stack(out) if out else empty), info


# ----------------------------------------------------------------------------------------------
# Worker task: one source → its scenes as PNGs, or its problem.


def _source_task(payload: tuple[int, str, str, dict]) -> dict:
    index, path, kind, fields = payload
    config = VideoDatasetConfig(**fields)
    try:
        frames, info = read_source(Source(path, kind), config)
        starts = scene_starts(len(frames), config.num_frames, config.stride)
        if not starts:
            raise _Problem("too_short", f"gives {len(frames)} frame(s) at --fps={config.fps:g} "
                           f"(from {info['source_frames']} source frame(s)); a scene needs --num_frames="
                           f"{config.num_frames}")
        used = starts[-1] + config.num_frames
        pngs = [encode_pngs(frames[s:s + config.num_frames]) for s in starts]
        return {"index": index, "path": path, "kind": kind, "problem": None, "scenes": pngs,
                "info": {**info, "output_frames": len(frames), "frames_unused": len(frames) - used,
                         "scenes": len(starts)}}
    except _Problem as p:
        return {"index": index, "path": path, "kind": kind, "problem": (p.kind, str(p)), "scenes": [], "info": {}}


# ----------------------------------------------------------------------------------------------
# Dataset writing.


@dataclasses.dataclass(frozen=True)
class IngestResult:
    """What `make_video_dataset` wrote: the metadata and a JSON-able summary (see the module doc)."""

    metadata: DatasetMetadata
    summary: dict


def make_video_dataset(config: VideoDatasetConfig, output_dir: str, *, overwrite: bool = False,
                       workers: int | None = None, show_progress: bool = True) -> IngestResult:
    """Ingests ``config.input`` into ``output_dir`` (shards + ``metadata.json``; see the module doc).

    Args:
      config: what to read and how (validated on construction).
      output_dir: created if needed; must not hold a dataset unless ``overwrite`` (the new one is
        written beside it and swapped in at the end, `tfvidgan.data.swap`; other files are kept).
      overwrite: replace an existing dataset.
      workers: processes decoding files in parallel; 1 → in this process; None → one per CPU, at most
        one per file. Workers are started with "spawn" and never import TensorFlow.
      show_progress: draw a progress bar (files) on stderr.
    Returns:
      `IngestResult`: ``metadata`` (``directory`` = ``output_dir``) and ``summary`` with ``num_scenes``,
      ``shape``, ``shards``, ``sources``, ``sources_used``, ``skipped`` (count per problem kind),
      ``problems`` (``[{file, kind, message}]``), ``ignored_files``, ``source_frames``,
      ``output_frames``, ``frames_unused``, ``bytes``, ``seconds``, ``scenes_per_second``,
      ``source_frames_per_second``.
    Raises:
      ConfigError: bad ``workers``, ``output_dir`` or ``input``, or PyAV missing while videos are to be read.
      DatasetError: a bad file with ``on_error="fail"`` (naming it), or no file gave a scene.
    """
    if not isinstance(config, VideoDatasetConfig):
        raise ConfigError(f"config must be a VideoDatasetConfig, got {type(config).__name__}")
    started = time.monotonic()
    sources, ignored = find_sources(config.input)
    if workers is None:
        workers = max(1, min(os.cpu_count() or 1, len(sources)))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers={workers}: must be a positive integer")
    if any(s.kind == "video" for s in sources):
        require_pyav()
    output_dir = os.path.abspath(output_dir)
    if os.path.isdir(os.path.dirname(output_dir)):
        swap.recover(output_dir)
    _check_output_dir(output_dir, overwrite)
    fields = config.to_dict()
    payloads = [(i, s.path, s.kind, fields) for i, s in enumerate(sources)]
    workers = min(workers, len(sources))
    tmp_dir = swap.scratch_dir(output_dir)
    spool_path = os.path.join(tmp_dir, ".spool.tfrecord")
    progress = ProgressBar(len(sources), label="video ingest", unit="files", enabled=show_progress)
    shape = (config.num_frames, config.size, config.size, config.channels)
    digest = hashlib.sha256()
    problems, used, pool, spool = [], [], None, None
    totals = {"source_frames": 0, "output_frames": 0, "frames_unused": 0}
    num_scenes = 0
    try:
        import tensorflow as tf  # records are built here; workers only decode and encode PNGs

        if workers == 1:
            results = map(_source_task, payloads)
        else:
            pool = multiprocessing.get_context("spawn").Pool(workers)
            results = pool.imap(_source_task, payloads)
        spool = tf.io.TFRecordWriter(spool_path)
        for result in results:
            progress.update(1)
            if result["problem"] is not None:
                kind, message = result["problem"]
                if config.on_error == "fail":
                    raise DatasetError(f"{result['path']}: {message} [{kind}] (--on_error=fail; pass "
                                       "--on_error=skip to skip such files)")
                problems.append({"file": result["path"], "kind": kind, "message": message})
                continue
            info = result["info"]
            used.append({"file": result["path"], "kind": result["kind"], "first_scene": num_scenes, **info})
            for k in ("source_frames", "output_frames", "frames_unused"):
                totals[k] += info[k]
            for pngs in result["scenes"]:
                record = encode_scene_example(pngs, shape, None, None, num_scenes)
                digest.update(record)
                spool.write(record)
                num_scenes += 1
        spool.close()
        spool = None
        progress.close()
        if pool is not None:
            pool.close()
            pool.join()
            pool = None
        if num_scenes == 0:
            raise DatasetError(f"--input={config.input}: no file gave a full scene of --num_frames="
                               f"{config.num_frames} frames at --fps={config.fps:g} ({len(problems)} of "
                               f"{len(sources)} skipped: "
                               + "; ".join(f"{p['file']}: {p['message']}" for p in problems[:3]) + ")")
        num_shards = min(config.shards, num_scenes)
        counts = [(k + 1) * num_scenes // num_shards - k * num_scenes // num_shards for k in range(num_shards)]
        records = iter(tf.data.TFRecordDataset(spool_path).as_numpy_iterator())
        for k, count in enumerate(counts):
            with tf.io.TFRecordWriter(os.path.join(tmp_dir, shard_name(k, num_shards))) as writer:
                for _ in range(count):
                    writer.write(next(records))
        os.remove(spool_path)
        shards = tuple(ShardInfo(file=shard_name(k, num_shards), num_records=counts[k],
                                 first_scene=k * num_scenes // num_shards,
                                 num_bytes=os.path.getsize(os.path.join(tmp_dir, shard_name(k, num_shards))))
                       for k in range(num_shards))
        metadata = DatasetMetadata(
            format_version=FORMAT_VERSION, num_scenes=num_scenes, num_frames=config.num_frames, size=config.size,
            channels=config.channels, num_balls=0, radius=0.0, seed=0, shards=shards, frame_encoding=FRAME_ENCODING,
            generator={
                "name": "tfvidgan.data.video_ingest",
                "config": {**fields, "content_sha256": digest.hexdigest()},
                "resize": RESIZE_DESCRIPTION,
                "frame_rate": RESAMPLE_DESCRIPTION,
                "positions": "none: scenes from videos have no ball positions or radii (num_balls = 0)",
                "sources": used,
                "problems": problems,
            })
        write_metadata(metadata, tmp_dir)
    except BaseException:
        if spool is not None:
            spool.close()
        if pool is not None:
            pool.terminate()
            pool.join()
        swap.release(tmp_dir)
        raise
    swap.swap_in(tmp_dir, output_dir, _dataset_files(output_dir) if os.path.isdir(output_dir) else [],
                 METADATA_FILENAME)
    seconds = time.monotonic() - started
    skipped = {kind: sum(p["kind"] == kind for p in problems) for kind in PROBLEM_KINDS}
    summary = {
        "output_dir": output_dir, "num_scenes": num_scenes, "shape": list(shape), "shards": num_shards,
        "sources": len(sources), "sources_used": len(used), "sources_skipped": len(problems),
        "skipped": {k: v for k, v in skipped.items() if v}, "problems": problems, "ignored_files": ignored,
        **totals, "bytes": sum(s.num_bytes for s in shards), "seconds": round(seconds, 3),
        "scenes_per_second": round(num_scenes / seconds, 1),
        "source_frames_per_second": round(totals["source_frames"] / seconds, 1),
        "workers": workers,
    }
    return IngestResult(dataclasses.replace(metadata, directory=output_dir), summary)
