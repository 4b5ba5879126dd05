"""DCGAN frames generator FG: latent z → one frame.

Architecture (Radford et al. 2016): a dense layer to a 4×4×F₀ map, then 4×4 stride-2 transposed
convolutions, each followed by normalization and ReLU and halving the filter count, and a last
4×4 stride-2 transposed convolution to C channels with tanh.

| image_size | upsamplings | filters (base_filters = b) | output |
| --- | --- | --- | --- |
| 64 | 4 (4→8→16→32→64) | 8b, 4b, 2b, b, then C | 64×64×C |
| 32 | 3 (4→8→16→32) | 4b, 2b, b, then C | 32×32×C |
| 30 | as 32, then a 1-pixel center crop on every side | 4b, 2b, b, then C | 30×30×C |

Size 30 is generated at 32×32 and center-cropped (rows/columns 1..30 kept), so the crop discards
the outermost ring of pixels; every output pixel is still a tanh value.
"""

from __future__ import annotations

import numbers
from typing import Callable

import keras
import tensorflow as tf

from tfvidgan.errors import ConfigError

SUPPORTED_IMAGE_SIZES = (30, 32, 64)
GENERATOR_NORMALIZATIONS = ("batch", "sync_batch", "none")
# Defaults shared with FramesGanConfig (and hence the trainers' flags): 64 filters in the last hidden layer;
# synchronised batch norm, so N replicas compute what one replica computes (the shipped configs use it).
DEFAULT_GENERATOR_FILTERS = 64
DEFAULT_GENERATOR_NORMALIZATION = "sync_batch"


def _weights_init():
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def _normalization_layer(normalization: str, name: str):
    if normalization == "batch":
        return keras.layers.BatchNormalization(name=name)
    if normalization == "sync_batch":
        return keras.layers.BatchNormalization(synchronized=True, name=name)
    return None


def build_frames_generator(
    image_size: int,
    channels: int,
    latent_dim: int,
    base_filters: int = DEFAULT_GENERATOR_FILTERS,
    normalization: str = DEFAULT_GENERATOR_NORMALIZATION,
) -> keras.Model:
    """Builds the DCGAN frames generator.

    Args:
      image_size: output height = width, one of 30, 32, 64.
      channels: output channels C ≥ 1 (1 for bouncing balls).
      latent_dim: Z ≥ 1.
      base_filters: filters of the last hidden layer; earlier layers have 2×, 4×, (8×).
      normalization: "sync_batch" (default: BatchNormalization with
        `synchronized=True`, statistics over the global batch under a tf.distribute strategy), "batch"
        (per-replica BatchNormalization) or
        "none" (dense/conv layers then carry a bias instead).

    Returns:
      `keras.Model` named "frames_generator": input "z" `[B, Z]` float32 (prior N(0, I)) →
      `[B, image_size, image_size, C]` float32 in [-1, 1] (tanh). Weights are initialised
      N(0, 0.02) as in DCGAN. Call with `training=True` while training (batch statistics).

    Raises:
      ConfigError: naming the field for an unsupported `image_size`, `normalization`, or a
        non-positive `channels` / `latent_dim` / `base_filters`.
    """
    if image_size not in SUPPORTED_IMAGE_SIZES:
        raise ConfigError(f"build_frames_generator: `image_size` must be one of {SUPPORTED_IMAGE_SIZES}, got {image_size!r}")
    if normalization not in GENERATOR_NORMALIZATIONS:
        raise ConfigError(
            f"build_frames_generator: `normalization` must be one of {GENERATOR_NORMALIZATIONS}, got {normalization!r}"
        )
    for field, value in (("channels", channels), ("latent_dim", latent_dim), ("base_filters", base_filters)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"build_frames_generator: `{field}` must be a positive integer, got {value!r}")

    channels, latent_dim, base_filters = int(channels), int(latent_dim), int(base_filters)
    generated_size = 64 if image_size == 64 else 32
    num_upsamplings = {64: 4, 32: 3}[generated_size]
    filters = [base_filters * 2 ** (num_upsamplings - 1 - i) for i in range(num_upsamplings)]
    use_bias = normalization == "none"

    z = keras.Input(shape=(latent_dim,), name="z", dtype="float32")
    x = keras.layers.Dense(4 * 4 * filters[0], use_bias=use_bias, kernel_initializer=_weights_init(), name="project")(z)
    x = keras.layers.Reshape((4, 4, filters[0]), name="to_4x4")(x)
    norm = _normalization_layer(normalization, "norm_0")
    if norm is not None:
        x = norm(x)
    x = keras.layers.ReLU(name="relu_0")(x)
    for i, f in enumerate(filters[1:], start=1):
        x = keras.layers.Conv2DTranspose(
            f, 4, strides=2, padding="same", use_bias=use_bias, kernel_initializer=_weights_init(), name=f"deconv_{i}"
        )(x)
        norm = _normalization_layer(normalization, f"norm_{i}")
        if norm is not None:
            x = norm(x)
        x = keras.layers.ReLU(name=f"relu_{i}")(x)
    x = keras.layers.Conv2DTranspose(
        channels, 4, strides=2, padding="same", kernel_initializer=_weights_init(), name="to_image"
    )(x)
    if image_size != generated_size:
        crop = (generated_size - image_size) // 2
        x = keras.layers.Cropping2D(crop, name="center_crop")(x)
    image = keras.layers.Activation("tanh", dtype="float32", name="image")(x)
    return keras.Model(z, image, name="frames_generator")


def render_paths(render_frames: Callable[[tf.Tensor], tf.Tensor], latents) -> tf.Tensor:
    """Renders latent paths `[B, T, Z]` frame by frame with `render_frames([n, Z]) -> [n, H, W, C]` into
    `[B, T, H, W, C]` (differentiable when `render_frames` is). A tensor is rendered in its own dtype (the
    trainer's, bfloat16 included); anything else (NumPy, lists) is converted to float32.

    The reshape folds time into the batch sample-major and unfolds it the same way, so clip b is made
    only from latents[b].
    """
    if not tf.is_tensor(latents):
        latents = tf.convert_to_tensor(latents, tf.float32)
    frames = render_frames(tf.reshape(latents, [-1, latents.shape[-1]]))
    return tf.reshape(frames, tf.concat([tf.shape(latents)[:2], tf.shape(frames)[1:]], axis=0))


def render(frames_generator: keras.Model, latents: tf.Tensor) -> tf.Tensor:
    """Renders latents `[B, T, Z]` into float32 clips `[B, T, H, W, C]` in [-1, 1] (FG in inference mode;
    `render_paths`, so clip b is made only from latents[b])."""
    return render_paths(lambda z: tf.cast(frames_generator(z, training=False), tf.float32), latents)
