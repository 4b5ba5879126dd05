"""Per-frame PSNR and SSIM for reconstructed scenes.

Inputs are scenes ``[B, T, H, W, 1]`` (or ``[B, T, H, W]``) float32 in ``[0, 1]``; every frame is
scored separately against the matching reference frame with ``max_val = 1``.

SSIM uses `tf.image.ssim`'s Gaussian window (11×11, σ = 1.5) when frames are at least 11×11. For
smaller frames the window is shrunk to ``filter_size = min(H, W)`` and σ scaled with it
(``σ = 1.5 · filter_size / 11``), because `tf.image.ssim` only computes SSIM on "valid" window
positions and would otherwise fail. SSIM values of frames smaller than 11 pixels are therefore
NOT directly comparable with the usual 11×11 numbers; report the frame size with them.
PSNR of identical frames is ``+inf`` (MSE 0); the means then are ``+inf`` as well.
"""

from __future__ import annotations

import tensorflow as tf

from tfvidgan.errors import ConfigError

__all__ = ["psnr_per_frame", "ssim_per_frame", "mean_psnr", "mean_ssim", "ssim_window"]

_DEFAULT_FILTER = 11
_DEFAULT_SIGMA = 1.5


def ssim_window(height: int, width: int) -> tuple[int, float]:
    """The ``(filter_size, filter_sigma)`` used for ``H × W`` frames (see the module docstring)."""
    size = min(_DEFAULT_FILTER, int(height), int(width))
    return size, _DEFAULT_SIGMA * size / _DEFAULT_FILTER


def _as_frames(x, y, name: str) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    x = tf.convert_to_tensor(x, tf.float32)
    y = tf.convert_to_tensor(y, tf.float32)
    if x.shape.rank == 4:
        x = x[..., None]
    if y.shape.rank == 4:
        y = y[..., None]
    if x.shape.rank != 5 or x.shape[-1] != 1 or x.shape != y.shape:
        raise ConfigError(f"{name}: expected two [B, T, H, W, 1] scenes of equal shape, got {x.shape} and {y.shape}")
    batch_time = tf.shape(x)[:2]
    height, width = x.shape[2], x.shape[3]
    return tf.reshape(x, [-1, height, width, 1]), tf.reshape(y, [-1, height, width, 1]), batch_time


def psnr_per_frame(x, y) -> tf.Tensor:
    """PSNR in dB of every frame: ``10 log10(1 / MSE)``.

    Args:
      x, y: ``[B, T, H, W, 1]`` (or ``[B, T, H, W]``) float32 in ``[0, 1]``.

    Returns:
      ``[B, T]`` float32 (``+inf`` for identical frames).
    """
    xf, yf, batch_time = _as_frames(x, y, "psnr_per_frame")
    return tf.reshape(tf.image.psnr(xf, yf, max_val=1.0), batch_time)


def ssim_per_frame(x, y) -> tf.Tensor:
    """SSIM of every frame (Gaussian window, see the module docstring for frames below 11×11).

    Args:
      x, y: ``[B, T, H, W, 1]`` (or ``[B, T, H, W]``) float32 in ``[0, 1]``.

    Returns:
      ``[B, T]`` float32 in ``[-1, 1]``.
    """
    xf, yf, batch_time = _as_frames(x, y, "ssim_per_frame")
    size, sigma = ssim_window(xf.shape[1], xf.shape[2])
    ssim = tf.image.ssim(xf, yf, max_val=1.0, filter_size=size, filter_sigma=sigma)
    return tf.reshape(ssim, batch_time)


def mean_psnr(x, y) -> tf.Tensor:
    """Mean over samples and frames of `psnr_per_frame`: scalar float32 dB."""
    return tf.reduce_mean(psnr_per_frame(x, y))


def mean_ssim(x, y) -> tf.Tensor:
    """Mean over samples and frames of `ssim_per_frame`: scalar float32."""
    return tf.reduce_mean(ssim_per_frame(x, y))
