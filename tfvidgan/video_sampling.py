"""Sampling videos from a video export, optionally rendered by a DIFFERENT frames generator.

Swapping the frames generator (e.g. one trained on 1 ball under a sequence model trained with a 3-ball
FG) takes the exported latent trajectories (`sample_latents` signature) and renders them with the other
FG's `generate` signature; both exports are plain SavedModels.
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np
import tensorflow as tf

from tfvidgan.batching import map_batches
from tfvidgan.errors import ConfigError, ExportKindError
from tfvidgan.export import (
    FRAMES_GENERATOR,
    VIDEO_GENERATOR,
    load_frame_discriminators,
    load_signature,
    read_description,
)
from tfvidgan.metrics.plotting import save_gif, save_strip_png
from tfvidgan.models.frames_generator import render_paths

RENDER_CHUNK = 64  # clips per rendering call (bounds memory)


FrameRenderer = Callable[[tf.Tensor], tf.Tensor]


def load_frame_renderer(export_dir: str, frames_generator: str = "",
                        latent_dim: int | None = None) -> tuple[FrameRenderer, int, tuple]:
    """A differentiable function rendering single latents into frames, with its latent size and frame shape.

    Without `frames_generator` the video export's own `render` signature draws each latent as a one-frame
    trajectory (its frames generator, possibly fine-tuned by the video training, renders every frame on its
    own, so this is what the export draws inside a clip); with it, the frames export's `generate` signature
    (the FG swap). Gradients flow from the frames back to the latents (the loaded SavedModel is kept alive).

    Args:
      export_dir: video export (`--export_dir`; may be empty when `frames_generator` is given).
      frames_generator: optional frames export (`--frames_generator`); its latent size must be `latent_dim`
        (if given), else a ConfigError naming the flag is raised.
      latent_dim: Z of the latents to render, when the caller knows it.

    Returns:
      `(render_frames, Z, (H, W, C))` where `render_frames(z [n, Z] float32 tf.Tensor) -> [n, H, W, C]`
      float32 in [-1, 1]. ExportKindError (naming the flag) when a directory is not the export kind it is given as.
    """
    if not frames_generator:
        read_description(export_dir, VIDEO_GENERATOR, "export_dir")  # ExportKindError if not a video export
        signature = load_signature(export_dir, "render", "export_dir", inputs={"latents"})
        size = int(signature.structured_input_signature[1]["latents"].shape[-1])
        frame_shape = tuple(signature.structured_outputs["videos"].shape[2:])
        return (lambda z: signature(latents=z[:, None])["videos"][:, 0]), size, frame_shape
    read_description(frames_generator, FRAMES_GENERATOR, "frames_generator")  # ExportKindError if not one
    signature = load_signature(frames_generator, "generate", "frames_generator", inputs={"z"})
    size = int(signature.structured_input_signature[1]["z"].shape[-1])
    if latent_dim is not None and size != latent_dim:
        raise ConfigError(f"--frames_generator={frames_generator!r} takes latents of size {size}, but "
                          f"the sequence model of --export_dir={export_dir!r} emits {latent_dim}; swap only "
                          f"FGs of the same latent size")
    return (lambda z: signature(z=z)["frames"]), size, tuple(signature.structured_outputs["frames"].shape[1:])


def load_renderer(export_dir: str, frames_generator: str = "", latent_dim: int | None = None,
                  batch: int = RENDER_CHUNK) -> tuple[Callable[[np.ndarray], np.ndarray], tuple]:
    """A function rendering latent trajectories into clips, and the `(H, W, C)` of its frames.

    Built on `load_frame_renderer` (the same two sources, the same checks): every step of every trajectory
    is rendered as one frame, time folded into the batch sample-major, so clip b is made only from
    latents[b].

    Args:
      export_dir: video export (`--export_dir`).
      frames_generator: optional frames export (`--frames_generator`); its latent size must be
        `latent_dim` (if given), else a ConfigError naming the flag is raised.
      latent_dim: Z of the trajectories to render.
      batch: clips per signature call (bounds memory).

    Returns:
      `(render, (H, W, C))` where `render(latents [N, T, Z] float) -> [N, T, H, W, C] float32 in [-1, 1]`.
    """
    render_frames, _, frame_shape = load_frame_renderer(export_dir, frames_generator, latent_dim)

    def render_chunk(latents):
        return render_paths(render_frames, latents).numpy()

    def render(latents) -> np.ndarray:
        latents = np.asarray(latents, dtype=np.float32)
        if latents.ndim != 3 or (latent_dim is not None and latents.shape[-1] != latent_dim):
            raise ConfigError(f"latents must have shape [N, T, {latent_dim or 'Z'}], got {latents.shape}")
        return map_batches(render_chunk, latents, batch)

    return render, frame_shape


def load_latent_sampler(export_dir: str) -> Callable[[int, int, int], np.ndarray]:
    """The video export's `sample_latents` signature, loaded once, as
    `(num_samples, num_frames, seed) → latents [N, T, Z]` float32 (seeded)."""
    signature = load_signature(export_dir, "sample_latents", "export_dir",
                               inputs={"num_samples", "num_frames", "seed"})

    def draw(num_samples: int, num_frames: int, seed: int) -> np.ndarray:
        return signature(num_samples=tf.constant(num_samples, tf.int32), num_frames=tf.constant(num_frames, tf.int32),
                         seed=tf.constant(seed, tf.int32))["latents"].numpy()

    return draw


def sample_latents(export_dir: str, num_samples: int, num_frames: int, seed: int) -> np.ndarray:
    """Latent trajectories `[N, T, Z]` from a video export's `sample_latents` signature (seeded)."""
    return load_latent_sampler(export_dir)(num_samples, num_frames, seed)


def clip_rejection_sampler(export_dir: str, num_frames: int, acceptance: float, seed: int = 0):
    """A `tfvidgan.rejection.ClipRejectionSampler` for a video export: candidate trajectories from its
    `sample_latents`, rendered by its own FG and scored by the frame discriminators of the frames export it
    was trained on (its description's `frames_generator`).

    Raises:
      ConfigError / ExportKindError: bad acceptance, or that frames export is missing or carries no
        discriminators (the message names `--export_dir` and the frames export).
    """
    from tfvidgan.rejection import CLIP_CALIBRATION_SAMPLES, ClipRejectionSampler, RejectionConfig

    config = RejectionConfig(acceptance=acceptance, calibration_samples=CLIP_CALIBRATION_SAMPLES)
    _, description = read_description(export_dir, VIDEO_GENERATOR, "export_dir")
    source = description.get("frames_generator")
    needs = (f"--export_dir={export_dir!r}: clip rejection sampling needs the discriminators of the frames "
             f"export it was trained on ({source!r})")
    if not source:
        raise ExportKindError(f"{needs}: its description names no frames export")
    try:
        discriminators = load_frame_discriminators(source, flag="frames_generator")
    except ExportKindError as e:
        raise ExportKindError(f"{needs}: {e}") from e
    render, _ = load_renderer(export_dir, latent_dim=int(description["latent_dim"]))
    draw = load_latent_sampler(export_dir)
    return ClipRejectionSampler(lambda n, s: draw(n, num_frames, s), render, discriminators, config, seed=seed)


def sample_videos(export_dir: str, num_samples: int, num_frames: int, seed: int,
                  frames_generator: str | None = None,
                  rejection_acceptance: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """`(videos [N, T, H, W, C] in [-1, 1], latents [N, T, Z])` from a video export.

    With `frames_generator` (a frames export of the same latent size), the latents are rendered by it.
    With `rejection_acceptance` > 0 the trajectories are kept by clip rejection sampling
    (`clip_rejection_sampler`, judged on the export's own renders) before any swap.
    """
    if rejection_acceptance > 0:
        latents = clip_rejection_sampler(export_dir, num_frames, rejection_acceptance, seed).sample(
            num_samples, seed=seed).latents
    else:
        latents = sample_latents(export_dir, num_samples, num_frames, seed)
    render, _ = load_renderer(export_dir, frames_generator or "", latent_dim=latents.shape[-1])
    return render(latents), latents


def write_video_samples(videos: np.ndarray, output_dir: str, prefix: str = "video", fps: float = 8.0,
                        scale: int = 2) -> list[str]:
    """Writes each `[T, H, W, C]` video of `videos [N, T, H, W, C]` as `<prefix>_<i>.gif` and a PNG strip."""
    os.makedirs(output_dir, exist_ok=True)
    written = []
    for i, video in enumerate(videos):
        gif = os.path.join(output_dir, f"{prefix}_{i:03d}.gif")
        strip = os.path.join(output_dir, f"{prefix}_{i:03d}_strip.png")
        save_gif(video, gif, fps=fps, scale=scale)
        save_strip_png(video, strip, scale=scale)
        written += [gif, strip]
    return written
