"""Simulates CUP measurements of bouncing-balls scenes and writes (sensed, scene) pairs.

Command line: ``python -m data_tools.make_cup_pairs --scenes=DIR_OR_GLOB --output_dir=DIR ...``
(flags = the fields of `CupPairsConfig`). For every source scene (read with `tfvidgan.data.readers.scenes_dataset`, frames ``[-1, 1]`` mapped
to intensities ``(x + 1) / 2``; colour frames are converted to luma) ``--clips_per_scene``
clips of ``--num_frames`` frames are cut at evenly spaced offsets, sensed with the CUP operator
(mask from ``--mask_seed``), made noisy (Poisson with ``--photons`` at sensed value 1.0, then
Gaussian ``--read_noise``; record ``i`` uses the stateless seed ``[--noise_seed, i]``, so the output
does not depend on batching), and written round-robin into ``--shards`` TFRecord shards with
``metadata.json`` and ``mask.npy`` (format: `tfvidgan.data.cup_pairs`).

The dataset is written to a scratch directory beside ``--output_dir`` and swapped in at the end
(`tfvidgan.data.swap`: a crash during the swap is finished by the next run). An existing non-empty
``--output_dir`` is refused unless ``--overwrite`` is given, and even then only if it is a CUP
pairs dataset (its dataset files are then replaced; other files stay).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
from collections.abc import Iterable

import numpy as np
import tensorflow as tf
from absl import logging

from tfvidgan.cup.operator import CupOperator, add_noise, make_mask
from tfvidgan.data import swap
from tfvidgan.data.cup_pairs import (
    FORMAT_NAME,
    MASK_FILE,
    METADATA_FILE,
    SHARD_GLOB,
    CupMetadata,
    encode_example,
    shard_name,
    write_cup_metadata,
)
from tfvidgan.errors import ConfigError, DatasetError

__all__ = ["CupPairsConfig", "clip_offsets", "scene_to_intensity", "generate_cup_pairs"]


@dataclasses.dataclass(frozen=True)
class CupPairsConfig:
    """What to simulate (field names are the flag names).

    Attributes:
      scenes: pattern of the bouncing-balls shards given to `readers.scenes_dataset`.
      num_frames: ``T`` frames per clip (<= scene length).
      clips_per_scene: clips per scene at evenly spaced distinct offsets (<= length − T + 1).
      mask_seed, mask_fill: the coding mask (`make_mask`).
      photons: photons at full scale (sensed value 1.0); 0 = no shot noise.
      read_noise: Gaussian read-noise sigma in sensed units; 0 = none.
      noise_seed: base seed of the per-record noise.
      shards: number of output shards (records are dealt round-robin).
      batch_size: clips simulated per TF call (speed only; the output does not depend on it).
    """

    scenes: str
    num_frames: int = 8
    clips_per_scene: int = 1
    mask_seed: int = 0
    mask_fill: float = 0.5
    photons: float = 0.0
    read_noise: float = 0.0
    noise_seed: int = 0
    shards: int = 4
    batch_size: int = 64

    def validate(self) -> None:
        """Raises `ConfigError` naming the flag that is out of range."""
        if not self.scenes:
            raise ConfigError("--scenes is required (pattern of bouncing-balls shards)")
        for name in ("num_frames", "clips_per_scene", "shards", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.mask_fill <= 1.0:
            raise ConfigError(f"--mask_fill must be in (0, 1], got {self.mask_fill}")
        if self.photons < 0:
            raise ConfigError(f"--photons must be >= 0 (0 = no shot noise), got {self.photons}")
        if self.read_noise < 0:
            raise ConfigError(f"--read_noise must be >= 0 (0 = no read noise), got {self.read_noise}")


def clip_offsets(scene_length: int, num_frames: int, clips_per_scene: int) -> tuple[int, ...]:
    """Evenly spaced distinct first frames of the clips, from 0 to ``scene_length − num_frames``.

    Raises:
      ConfigError: the clips do not fit (naming --num_frames / --clips_per_scene).
    """
    last = scene_length - num_frames
    if last < 0:
        raise ConfigError(f"--num_frames={num_frames} exceeds the scene length {scene_length}")
    if clips_per_scene > last + 1:
        raise ConfigError(
            f"--clips_per_scene={clips_per_scene} exceeds the {last + 1} distinct offsets of "
            f"{num_frames}-frame clips in {scene_length}-frame scenes"
        )
    if clips_per_scene == 1:
        return (0,)
    return tuple(int(round(i * last / (clips_per_scene - 1))) for i in range(clips_per_scene))


def scene_to_intensity(frames: np.ndarray) -> np.ndarray:
    """Bouncing-balls frames ``[L, H, W, C]`` in ``[-1, 1]`` -> intensities ``[L, H, W, 1]`` in ``[0, 1]``.

    ``(x + 1) / 2``; RGB frames (C = 3) are converted to luma ``0.299 R + 0.587 G + 0.114 B`` (as
    PIL's "L" mode); the result is clipped to ``[0, 1]``.
    """
    frames = np.asarray(frames, np.float32)
    if frames.shape[-1] == 3:
        frames = frames @ np.array([0.299, 0.587, 0.114], np.float32)[:, None]
    elif frames.shape[-1] != 1:
        raise DatasetError(f"scene frames must have 1 or 3 channels, got shape {frames.shape}")
    return np.clip((frames + 1.0) / 2.0, 0.0, 1.0)


def _prepare_output_dir(output_dir: str, overwrite: bool) -> None:
    if not os.path.exists(output_dir):
        return
    if not os.path.isdir(output_dir):
        raise ConfigError(f"--output_dir={output_dir} exists and is not a directory")
    if not os.listdir(output_dir):
        return
    if not overwrite:
        raise ConfigError(f"--output_dir={output_dir} already exists and is not empty; pass --overwrite to replace it")
    metadata_path = os.path.join(output_dir, METADATA_FILE)
    try:
        with open(metadata_path) as f:
            is_cup = json.load(f).get("format") == FORMAT_NAME
    except (OSError, ValueError, AttributeError):
        is_cup = False
    if not is_cup:
        raise ConfigError(
            f"--output_dir={output_dir} is not a CUP pairs dataset (no valid {METADATA_FILE}); "
            "refusing to replace it even with --overwrite"
        )


def _dataset_files(directory: str) -> list[str]:
    """Base names of the CUP pairs dataset files (metadata, mask, shards) in ``directory``."""
    if not os.path.isdir(directory):
        return []
    return sorted(n for n in os.listdir(directory)
                  if n in (METADATA_FILE, MASK_FILE) or fnmatch.fnmatchcase(n, SHARD_GLOB))


def _default_scenes(pattern: str) -> Iterable[dict]:
    from tfvidgan.data import readers  # imported here: only the CLI path needs the bouncing-balls reader

    return readers.scenes_dataset(pattern)


def generate_cup_pairs(
    config: CupPairsConfig,
    output_dir: str,
    *,
    overwrite: bool = False,
    scenes: Iterable[dict] | None = None,
) -> CupMetadata:
    """Writes a CUP pairs dataset; see the module docstring.

    Args:
      config: validated here.
      output_dir: the dataset directory to create.
      overwrite: replace an existing CUP pairs dataset in ``output_dir``.
      scenes: iterable of dicts with ``"frames"`` ``[L, H, W, C]`` in ``[-1, 1]`` (numpy or tensors);
        default `readers.scenes_dataset(config.scenes)`.

    Returns:
      The written `CupMetadata`.

    Raises:
      ConfigError: bad config or output directory. DatasetError: no scenes, or scenes of varying size.
    """
    config.validate()
    if os.path.isdir(os.path.dirname(os.path.abspath(output_dir))):
        swap.recover(output_dir)  # finish a swap a crash interrupted; remove stale scratch
    _prepare_output_dir(output_dir, overwrite)
    if scenes is None:
        scenes = _default_scenes(config.scenes)

    tmp_dir = swap.scratch_dir(output_dir)
    try:
        metadata = _write_pairs(config, tmp_dir, scenes)
    except BaseException:
        swap.release(tmp_dir)
        raise
    swap.swap_in(tmp_dir, output_dir, _dataset_files(output_dir), METADATA_FILE)
    return dataclasses.replace(metadata, directory=output_dir)


def _write_pairs(config: CupPairsConfig, directory: str, scenes: Iterable[dict]) -> CupMetadata:
    writers = [
        tf.io.TFRecordWriter(os.path.join(directory, shard_name(i, config.shards))) for i in range(config.shards)
    ]
    counts = [0] * config.shards
    operator = None
    simulate = None
    offsets: tuple[int, ...] = ()
    scene_shape = None
    pending: list[tuple[np.ndarray, int, int]] = []  # (clip [T,H,W,1], scene_index, offset)
    num_examples = 0
    num_scenes = 0

    def flush():
        nonlocal num_examples
        if not pending:
            return
        clips = np.stack([p[0] for p in pending])
        indices = np.arange(num_examples, num_examples + len(pending), dtype=np.int64)
        sensed = simulate(tf.constant(clips), tf.constant(indices)).numpy()
        for (clip, scene_index, offset), s, i in zip(pending, sensed, indices):
            shard = int(i) % config.shards
            writers[shard].write(encode_example(s, clip, scene_index, offset))
            counts[shard] += 1
        num_examples += len(pending)
        pending.clear()

    try:
        for scene_index, scene in enumerate(scenes):
            frames = scene["frames"]
            frames = frames.numpy() if hasattr(frames, "numpy") else np.asarray(frames)
            if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
                raise DatasetError(
                    f"{config.scenes}: scene {scene_index} has frames of shape {frames.shape}, expected [L, H, W, 1 or 3]"
                )
            if operator is None:
                scene_shape = frames.shape
                offsets = clip_offsets(frames.shape[0], config.num_frames, config.clips_per_scene)
                height, width = frames.shape[1:3]
                operator = CupOperator(make_mask(height, width, config.mask_seed, config.mask_fill), config.num_frames)
                simulate = _make_simulator(operator, config)
            elif frames.shape != scene_shape:
                raise DatasetError(
                    f"{config.scenes}: scene {scene_index} has shape {frames.shape}, but scene 0 has {scene_shape}"
                )
            intensity = scene_to_intensity(frames)
            for offset in offsets:
                pending.append((intensity[offset : offset + config.num_frames], scene_index, offset))
            num_scenes += 1
            if len(pending) >= config.batch_size:
                flush()
            if num_scenes % 500 == 0:
                logging.info("simulated %d scenes", num_scenes)
        flush()
    finally:
        for w in writers:
            w.close()
    if operator is None:
        raise DatasetError(f"{config.scenes}: no scenes to simulate")

    metadata = CupMetadata(
        num_frames=config.num_frames,
        height=operator.height,
        width=operator.width,
        mask=operator.mask_np,
        mask_seed=config.mask_seed,
        mask_fill=config.mask_fill,
        photons=config.photons,
        read_noise=config.read_noise,
        noise_seed=config.noise_seed,
        clips_per_scene=config.clips_per_scene,
        clip_offsets=offsets,
        num_scenes=num_scenes,
        num_examples=num_examples,
        shards=tuple(shard_name(i, config.shards) for i in range(config.shards)),
        examples_per_shard=tuple(counts),
        source_scenes=config.scenes,
    )
    write_cup_metadata(directory, metadata)
    return metadata


def _make_simulator(operator: CupOperator, config: CupPairsConfig):
    """clips ``[N, T, H, W, 1]`` in [0, 1], record indices ``[N]`` -> sensed ``[N, H + T − 1, W, 1]``."""

    @tf.function(reduce_retracing=True)
    def simulate(clips, indices):
        sensed = operator.forward(clips)
        if config.photons == 0 and config.read_noise == 0:
            return sensed
        seeds = tf.stack([tf.fill(tf.shape(indices), tf.constant(config.noise_seed, tf.int64)), indices], axis=1)
        return tf.map_fn(
            lambda args: add_noise(args[0], config.photons, config.read_noise, args[1]),
            (sensed, seeds),
            fn_output_signature=tf.float32,
        )

    return simulate
