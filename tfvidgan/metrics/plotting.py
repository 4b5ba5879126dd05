"""PNG and GIF output drawn with Pillow only (matplotlib is not a dependency).

* `save_image_grid_png`: a grid of images; `save_strip_png`: a clip's frames in one row.
* `gif_bytes` / `save_gif`: a looping animated GIF of a clip (grayscale or RGB).
* `plot_trajectories_png`: 2-D embedded latent trajectories as polylines, optionally next to a baseline
  (e.g. the linear interpolation between the same ends) drawn in the same coordinates.

All image inputs are float in [-1, 1] (values outside are clipped) and are mapped to uint8 by
`round((x + 1) * 127.5)`.
"""

from __future__ import annotations

import io
import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tfvidgan.errors import ConfigError, DatasetError

__all__ = [
    "to_uint8",
    "image_grid",
    "save_image_grid_png",
    "save_strip_png",
    "gif_bytes",
    "save_gif",
    "plot_trajectories_png",
]

# Distinguishable colours for trajectories (RGB).
_PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


def to_uint8(images) -> np.ndarray:
    """Float images in [-1, 1] (any shape) -> uint8 in [0, 255]; values outside [-1, 1] are clipped."""
    x = np.asarray(images, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise DatasetError("images contain NaN or infinite values")
    return np.rint((np.clip(x, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def _check_images(images, name: str, rank: int) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim != rank or x.shape[-1] not in (1, 3) or 0 in x.shape:
        raise DatasetError(f"{name} must have rank {rank} with 1 or 3 channels, got shape {x.shape}")
    return x


def _pil(image_u8: np.ndarray) -> Image.Image:
    """`[H, W, 1|3] uint8` -> PIL image in mode L or RGB."""
    if image_u8.shape[-1] == 1:
        return Image.fromarray(image_u8[..., 0], mode="L")
    return Image.fromarray(image_u8, mode="RGB")


def image_grid(images, rows: int | None = None, pad: int = 1, pad_value: int = 255) -> np.ndarray:
    """Tiles images into one uint8 picture.

    Args:
      images: `[N, H, W, C]` float in [-1, 1], C in {1, 3}.
      rows: number of rows; default `ceil(sqrt(N))`. Columns = `ceil(N / rows)`; empty cells are padded.
      pad: pixels of `pad_value` between (not around) tiles.

    Returns:
      `[rows*H + (rows-1)*pad, cols*W + (cols-1)*pad, C] uint8`.
    """
    x = to_uint8(_check_images(images, "images", 4))
    n, h, w, c = x.shape
    if rows is None:
        rows = max(1, math.ceil(math.sqrt(n)))
    if rows < 1 or pad < 0:
        raise ConfigError(f"rows must be >= 1 and pad >= 0, got rows={rows!r}, pad={pad!r}")
    cols = math.ceil(n / rows)
    grid = np.full((rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad, c), pad_value, np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[r * (h + pad) : r * (h + pad) + h, k * (w + pad) : k * (w + pad) + w] = x[i]
    return grid


def _scaled(img: Image.Image, scale: int) -> Image.Image:
    if scale < 1:
        raise ConfigError(f"scale must be an integer >= 1, got {scale!r}")
    if scale == 1:
        return img
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def _makedirs_for(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)


def save_image_grid_png(images, path: str, rows: int | None = None, pad: int = 1, scale: int = 1) -> None:
    """Writes `images [N, H, W, C]` (float in [-1, 1], C in {1, 3}) as a PNG grid (see `image_grid`),
    each pixel enlarged to `scale x scale` (nearest neighbour)."""
    _makedirs_for(path)
    _scaled(_pil(image_grid(images, rows, pad)), scale).save(path, format="PNG")


def save_strip_png(clip, path: str, pad: int = 1, scale: int = 1) -> None:
    """Writes a clip `[T, H, W, C]` (float in [-1, 1]) as one PNG row of its T frames, left to right."""
    clip = _check_images(clip, "clip", 4)
    save_image_grid_png(clip, path, rows=1, pad=pad, scale=scale)


def gif_bytes(clip, fps: float = 8.0, scale: int = 1) -> bytes:
    """Encodes a clip as a looping animated GIF.

    Args:
      clip: `[T, H, W, C]` float in [-1, 1], C = 1 (grayscale, exact 256 levels) or 3 (RGB, quantised
        to a 256-colour palette per frame).
      fps: frames per second; GIF stores delays in 1/100 s, so the per-frame delay is
        `round(100 / fps) * 10` ms.
      scale: integer nearest-neighbour enlargement.

    Returns:
      The GIF file's bytes (Pillow merges identical consecutive frames into one longer frame).
    """
    clip = _check_images(clip, "clip", 4)
    if not fps > 0:
        raise ConfigError(f"fps must be > 0, got {fps!r}")
    frames = [_scaled(_pil(f), scale) for f in to_uint8(clip)]
    duration = max(1, round(100.0 / fps)) * 10
    buffer = io.BytesIO()
    frames[0].save(
        buffer, format="GIF", save_all=True, append_images=frames[1:], duration=duration, loop=0, optimize=False
    )
    return buffer.getvalue()


def save_gif(clip, path: str, fps: float = 8.0, scale: int = 1) -> None:
    """Writes `gif_bytes(clip, fps, scale)` to `path`."""
    data = gif_bytes(clip, fps, scale)
    _makedirs_for(path)
    with open(path, "wb") as f:
        f.write(data)


def _format_tick(v: float) -> str:
    return f"{v:.3g}"


def plot_trajectories_png(
    embedded,
    path: str,
    baseline=None,
    title: str = "latent trajectories (Isomap)",
    panel_size: int = 400,
    max_trajectories: int = 10,
) -> None:
    """Draws 2-D trajectories as polylines with a marker at every step.

    Each trajectory has its own colour; its start is a filled square, its end a filled triangle, and
    the steps in between small circles. With a `baseline` (e.g. the linear interpolation of the same
    trajectories, embedded in the same coordinates with `joint_isomap_embedding`) two panels are drawn
    side by side with the same axis limits: "generated" on the left and "baseline" on the right, and
    trajectory b has the same colour in both. Each panel has an axis box with its min/max values.

    Args:
      embedded: `[B, T, 2]` float coordinates.
      path: output PNG path.
      baseline: optional `[B', T', 2]` float coordinates.
      title: text drawn above the panels (PIL default font).
      panel_size: side of each square panel in pixels.
      max_trajectories: only the first this many trajectories of each set are drawn.
    """
    sets = [("generated", np.asarray(embedded, dtype=np.float64))]
    if baseline is not None:
        sets.append(("baseline", np.asarray(baseline, dtype=np.float64)))
    for name, s in sets:
        if s.ndim != 3 or s.shape[-1] != 2 or s.shape[0] < 1 or s.shape[1] < 1:
            raise DatasetError(f"{'embedded' if name == 'generated' else 'baseline'} must have shape [B, T, 2], "
                               f"got shape {s.shape}")
        if not np.all(np.isfinite(s)):
            raise DatasetError(f"{'embedded' if name == 'generated' else 'baseline'} contains NaN or infinite values")
    if panel_size < 100 or max_trajectories < 1:
        raise ConfigError(f"panel_size must be >= 100 and max_trajectories >= 1, got {panel_size!r}, "
                          f"{max_trajectories!r}")
    sets = [(name, s[:max_trajectories]) for name, s in sets]
    all_points = np.concatenate([s.reshape(-1, 2) for _, s in sets])
    lo, hi = all_points.min(axis=0), all_points.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    lo, hi = lo - 0.05 * span, hi + 0.05 * span
    span = hi - lo

    font = ImageFont.load_default()
    margin, title_h = 40, 24
    width = len(sets) * panel_size + (len(sets) + 1) * margin
    height = panel_size + title_h + 2 * margin
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    draw.text((margin, 6), title, fill=(0, 0, 0), font=font)
    draw.text(
        (margin, 6 + 12), "square = start, triangle = end, one colour per trajectory", fill=(90, 90, 90), font=font
    )
    for p, (name, s) in enumerate(sets):
        x0 = margin + p * (panel_size + margin)
        y0 = title_h + margin
        box = (x0, y0, x0 + panel_size, y0 + panel_size)
        draw.rectangle(box, outline=(0, 0, 0), width=1)
        draw.text((x0 + 4, y0 - 14), name, fill=(0, 0, 0), font=font)
        draw.text((x0, y0 + panel_size + 3), _format_tick(lo[0]), fill=(60, 60, 60), font=font)
        right = _format_tick(hi[0])
        draw.text((x0 + panel_size - 6 * len(right), y0 + panel_size + 3), right, fill=(60, 60, 60), font=font)
        draw.text((x0 - 6 * len(_format_tick(lo[1])) - 2, y0 + panel_size - 10), _format_tick(lo[1]),
                  fill=(60, 60, 60), font=font)
        draw.text((x0 - 6 * len(_format_tick(hi[1])) - 2, y0), _format_tick(hi[1]), fill=(60, 60, 60), font=font)

        def to_px(pt, x0=x0, y0=y0):
            u = (pt[0] - lo[0]) / span[0]
            v = (pt[1] - lo[1]) / span[1]
            return (x0 + 6 + u * (panel_size - 12), y0 + panel_size - 6 - v * (panel_size - 12))

        for b, traj in enumerate(s):
            colour = _PALETTE[b % len(_PALETTE)]
            pts = [to_px(pt) for pt in traj]
            if len(pts) > 1:
                draw.line(pts, fill=colour, width=2)
            for x, y in pts[1:-1]:
                draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
            sx, sy = pts[0]
            draw.rectangle((sx - 5, sy - 5, sx + 5, sy + 5), fill=colour, outline=(0, 0, 0))
            if len(pts) > 1:
                ex, ey = pts[-1]
                draw.polygon([(ex, ey - 6), (ex - 6, ey + 5), (ex + 6, ey + 5)], fill=colour, outline=(0, 0, 0))
    _makedirs_for(path)
    img.save(path, format="PNG")
