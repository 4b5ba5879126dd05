"""TensorBoard summaries: scalars, image grids, animated GIFs and the run's flags as text.

All functions write to the current default summary writer (`with writer.as_default():`).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorboard.plugins.image import metadata as image_metadata

from tfvidgan.metrics.plotting import image_grid


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
