"""TensorBoard summaries: scalars, image grids, animated GIFs and the run's flags as text.

All functions write to the current default summary writer (`with writer.as_default():`).
"""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
from tensorboard.plugins.image import metadata as image_metadata


def to_uint8(images) -> np.ndarray:
    """`[..., H, W, C] float in [-1, 1]` → same shape uint8 in [0, 255] (values outside are clipped)."""
    images = np.asarray(images, dtype=np.float32)
    return np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def image_grid(images, rows: int | None = None) -> np.ndarray:
    """Tiles `[N, H, W, C] float32 in [-1, 1]` into one `[rows*H + rows-1, cols*W + cols-1, C]` uint8 image.

    Tiles are separated by 1-pixel mid-grey lines; `rows` defaults to ⌊√N⌋.
    """
    images = to_uint8(images)
    n, h, w, c = images.shape
    rows = rows or max(1, int(math.floor(math.sqrt(n))))
    cols = int(math.ceil(n / rows))
    grid = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1, c), 128, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        grid[r * (h + 1): r * (h + 1) + h, col * (w + 1): col * (w + 1) + w] = images[i]
    return grid


def write_scalars(values: dict, step: int) -> None:
    """Writes scalars; 1-D vectors (e.g. per-discriminator losses) become `name/000`, `name/001`, …"""
    for name, value in values.items():
        value = np.asarray(value)
        if value.ndim == 0:
            tf.summary.scalar(name, float(value), step=step)
        else:
            for k, v in enumerate(value.reshape(-1)):
                tf.summary.scalar(f"{name}/{k:03d}", float(v), step=step)


def write_image_grid(name: str, images, step: int, rows: int | None = None) -> None:
    """Writes `[N, H, W, C] float32 in [-1, 1]` as one tiled image."""
    tf.summary.image(name, image_grid(images, rows)[None], step=step)


def write_gif(name: str, gif_bytes: bytes, width: int, height: int, step: int, description: str = "") -> None:
    """Writes an encoded animated GIF that TensorBoard's image tab plays."""
    metadata = image_metadata.create_summary_metadata(
        display_name=name, description=description, converted_to_tensor=True)
    tensor = tf.constant([str(width), str(height), gif_bytes], dtype=tf.string)
    tf.summary.write(tag=name, tensor=tensor, step=step, metadata=metadata)


def write_flags_text(flags: dict, step: int = 0) -> None:
    """Writes the run's flags as a Markdown table under the `flags` tag."""
    lines = ["| flag | value |", "| --- | --- |"]
    lines += [f"| `{k}` | `{v}` |" for k, v in sorted(flags.items())]
    tf.summary.text("flags", "\n".join(lines), step=step)
