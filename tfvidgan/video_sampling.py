"""Sampling videos from a video export, optionally rendered by a DIFFERENT frames generator.

Swapping the frames generator (e.g. one trained on 1 ball under a sequence model trained with a 3-ball
FG) takes the exported latent trajectories (`sample_latents` signature) and renders them with the other
FG's `generate` signature; both exports are plain SavedModels.
"""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tfvidgan.errors import ConfigError
from tfvidgan.export import load_signature
from tfvidgan.metrics.plotting import save_gif, save_strip_png

def sample_videos(export_dir: str, num_samples: int, num_frames: int, seed: int,
                  frames_generator: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`(videos [N, T, H, W, C] in [-1, 1], latents [N, T, Z])` from a video export.

    With `frames_generator` (a frames export of the same latent size), the latents are rendered by it.
    """
    args = dict(num_samples=tf.constant(num_samples, tf.int32), num_frames=tf.constant(num_frames, tf.int32),
                seed=tf.constant(seed, tf.int32))
    if not frames_generator:
        out = load_signature(export_dir, "sample", "export_dir", inputs=set(args))(**args)
        return out["videos"].numpy(), out["latents"].numpy()
    latents = load_signature(export_dir, "sample_latents", "export_dir", inputs=set(args))(**args)["latents"]
    generate = load_signature(frames_generator, "generate", "frames_generator", inputs={"z"})
    expected = generate.structured_input_signature[1]["z"].shape[-1]
    if expected != latents.shape[-1]:
        raise ConfigError(f"--frames_generator={frames_generator!r} takes latents of size {expected}, but the "
                          f"sequence model emits {latents.shape[-1]}; swap only FGs of the same latent size")
    frames = generate(z=tf.reshape(latents, [-1, latents.shape[-1]]))["frames"]
    videos = tf.reshape(frames, [num_samples, num_frames, *frames.shape[1:]])
    return videos.numpy(), latents.numpy()


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
