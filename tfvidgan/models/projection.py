"""Fixed random projections: the input transform of every projected discriminator.

Each of the K discriminators of Neyshabur et al. (2017) sees the image through its own fixed,
random, low-dimensional projection: one Gaussian `kernel_size`×`kernel_size` filter from C
channels to 1, scaled to unit L2 norm over all `kernel_size·kernel_size·C` taps, applied with
stride `stride` after explicit zero padding `padding` on every side. With the defaults
(8, 2, 3) a 64×64×C image becomes 32×32×1 per projection (32→16, 30→15).

`RandomProjection` evaluates all K projections as one convolution with K output channels.
The kernel is a NON-trainable weight created in `build()` from `numpy.random.default_rng(seed)`,
so it is reproducible from `seed` alone (independent of TensorFlow's global seed, and identical
on every replica of a `tf.distribute` strategy) and is saved and restored by checkpoints like any
other layer weight.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from tfvidgan.errors import ConfigError


def random_projection_kernel(
    num_projections: int, channels: int, kernel_size: int = 8, seed: int = 0
) -> np.ndarray:
    """The projection filters as a numpy array.

    Returns:
      `[kernel_size, kernel_size, channels, num_projections]` float32; every slice `[..., k]` is
      i.i.d. standard Gaussian scaled to unit L2 norm. Deterministic in `seed`.
    """
    rng = np.random.default_rng(seed)
    kernel = rng.standard_normal((kernel_size, kernel_size, channels, num_projections))
    norms = np.sqrt(np.sum(kernel**2, axis=(0, 1, 2), keepdims=True))
    return (kernel / norms).astype(np.float32)


def projected_size(size: int, kernel_size: int = 8, stride: int = 2, padding: int = 3) -> int:
    """Spatial size after the projection: `(size + 2·padding − kernel_size) // stride + 1`."""
    return (size + 2 * padding - kernel_size) // stride + 1


@keras.saving.register_keras_serializable(package="tfvidgan")
class RandomProjection(keras.layers.Layer):
    """K fixed random projections of images (or of every frame of clips) as one convolution.

    Args:
      num_projections: K ≥ 1, the number of projections (= output channels).
      kernel_size: spatial size of each square filter (default 8).
      stride: spatial stride (default 2).
      padding: explicit zero padding added on each spatial side before a VALID convolution
        (default 3).
      seed: seed of the numpy generator that draws the filters.

    Call:
      `[B, H, W, C]` float32 (images in [-1, 1]) → `[B, H', W', K]` float32, or
      `[B, T, H, W, C]` → `[B, T, H', W', K]`: frames are folded into the batch for the
      convolution and unfolded afterwards, so sample b's output depends only on sample b.
      `H' = (H + 2·padding − kernel_size) // stride + 1` (64→32, 32→16, 30→15 with defaults).
      Each output value is a unit-norm linear functional of a patch, so it is bounded by the
      patch's L2 norm; no bias, no non-linearity.

    The kernel (`[kernel_size, kernel_size, C, K]`, non-trainable) is reachable as `.kernel`.
    """

    def __init__(self, num_projections, kernel_size=8, stride=2, padding=3, seed=0, **kwargs):
        super().__init__(**kwargs)
        for field, value, minimum in (
            ("num_projections", num_projections, 1),
            ("kernel_size", kernel_size, 1),
            ("stride", stride, 1),
            ("padding", padding, 0),
        ):
            if not isinstance(value, (int, np.integer)) or value < minimum:
                raise ConfigError(f"RandomProjection: `{field}` must be an integer >= {minimum}, got {value!r}")
        self.num_projections = int(num_projections)
        self.kernel_size = int(kernel_size)
        self.stride = int(stride)
        self.padding = int(padding)
        self.seed = int(seed)
        self.trainable = False

    def build(self, input_shape):
        if len(input_shape) not in (4, 5) or input_shape[-1] is None:
            raise ConfigError(
                "RandomProjection: input must be [B,H,W,C] or [B,T,H,W,C] with a known channel "
                f"count, got shape {tuple(input_shape)}"
            )
        channels = int(input_shape[-1])
        initial = random_projection_kernel(self.num_projections, channels, self.kernel_size, self.seed)
        self.kernel = self.add_weight(
            name="kernel",
            shape=initial.shape,
            initializer=keras.initializers.Constant(initial),
            trainable=False,
            dtype="float32",
        )

    def _project_images(self, images):
        p = self.padding
        padded = ops.pad(images, [[0, 0], [p, p], [p, p], [0, 0]])
        kernel = ops.cast(self.kernel, images.dtype)
        return ops.conv(padded, kernel, strides=self.stride, padding="valid")

    def call(self, inputs):
        if len(inputs.shape) == 4:
            return self._project_images(inputs)
        frames = inputs.shape[1] if inputs.shape[1] is not None else ops.shape(inputs)[1]
        height, width, channels = inputs.shape[2], inputs.shape[3], inputs.shape[4]
        # Row-major fold: row b*T + t of `folded` is frame t of sample b, so samples never mix.
        folded = ops.reshape(inputs, (-1, height, width, channels))
        projected = self._project_images(folded)
        out_h, out_w = projected.shape[1], projected.shape[2]
        return ops.reshape(projected, (-1, frames, out_h, out_w, self.num_projections))

    def compute_output_shape(self, input_shape):
        *lead, height, width, _ = input_shape
        def size(s):
            return None if s is None else projected_size(s, self.kernel_size, self.stride, self.padding)
        return (*lead, size(height), size(width), self.num_projections)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_projections=self.num_projections,
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            seed=self.seed,
        )
        return config
