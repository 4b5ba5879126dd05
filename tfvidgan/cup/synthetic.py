"""Synthetic CUP test scenes: binary discs moving on straight lines.

Used by the tests, the reconstruction benchmark and anything else that needs a cheap, reproducible
dynamic scene without reading a dataset. Scenes are intensities in ``[0, 1]`` (the CUP convention,
see `tfvidgan.cup.operator`); for the bouncing-balls convention ``[-1, 1]`` use ``2 x − 1``.
"""

from __future__ import annotations

import numpy as np

from tfvidgan.errors import ConfigError

__all__ = ["moving_discs"]


def moving_discs(num: int, num_frames: int, height: int, width: int | None = None, seed: int = 0, *,
                 discs: int = 2, max_speed: float = 1.0) -> np.ndarray:
    """Scenes of ``discs`` bright discs each moving on a straight line at constant velocity.

    Every disc has a radius drawn uniformly in ``[m/8, m/5]`` (``m = min(height, width)``), a centre
    drawn uniformly so that the disc starts inside the frame, and a velocity whose row and column
    components are drawn uniformly in ``[−max_speed, max_speed]`` pixels per frame (discs may leave
    the frame). A pixel is 1 if its centre lies in any disc, else 0. Deterministic given ``seed``
    (`numpy.random.default_rng`).

    Args:
      num: number of scenes ``N`` (>= 1).
      num_frames: frames per scene ``T`` (>= 1).
      height, width: frame size ``H, W`` (>= 1); ``width`` defaults to ``height``.
      seed: random seed.
      discs: discs per scene (>= 1).
      max_speed: largest speed per axis in pixels per frame (>= 0).

    Returns:
      ``[N, T, H, W, 1] float32`` with values in ``{0, 1}``.

    Raises:
      ConfigError: a size or count is out of range (naming the argument).
    """
    width = height if width is None else width
    for name, value in (("num", num), ("num_frames", num_frames), ("height", height), ("width", width),
                        ("discs", discs)):
        if int(value) < 1:
            raise ConfigError(f"moving_discs: {name} must be >= 1, got {value}")
    if max_speed < 0:
        raise ConfigError(f"moving_discs: max_speed must be >= 0, got {max_speed}")
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:height, :width]
    size = min(height, width)
    out = np.zeros((num, num_frames, height, width), np.float32)
    for n in range(num):
        for _ in range(discs):
            radius = rng.uniform(size / 8, size / 5)
            start = rng.uniform([radius, radius], [height - radius, width - radius])
            velocity = rng.uniform(-max_speed, max_speed, 2)
            for t in range(num_frames):
                r, c = start + velocity * t
                out[n, t] = np.maximum(out[n, t], (rows - r) ** 2 + (cols - c) ** 2 <= radius**2)
    return out[..., None]
